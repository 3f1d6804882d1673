"""The options of ``solve``: the methods, each method's defaults (documented in ``solve``),
the options common to all, and their resolution (caller > the prior's tuned settings > these
defaults) and validation. Noise levels and couplings are stds on the [0, 1] pixel scale.
"""
from __future__ import annotations

import math

import numpy as np

from em_inverse.errors import UserError
from em_inverse.priors.symmetry import check_group

METHODS = ("map", "hqs", "posterior", "anneal", "em")
#: The methods that run chains (and so give a posterior std and samples).
SAMPLERS = ("posterior", "anneal", "em")

#: Defaults per method (documented in ``solve``).
DEFAULTS = {
    "map": {"steps": 200, "history": 10, "gtol": 1e-5, "ftol": 1e-8, "first_step": 0.05},
    "hqs": {"steps": 40, "sigma_start": 0.1, "sigma_end": 0.01, "end_level": None,
            "cg_steps": 20, "step_cap": 1.5},
    "posterior": {"steps": 1000, "burn_in": None, "thin": 1, "chains": 4, "mala": False,
                  "step": None, "step_factor": None, "adapt": True, "precondition": True,
                  "lipschitz_iterations": 10,
                  "interaction_sigma": None, "interaction_region": None},
    "anneal": {"steps": 200, "chains": 16, "levels": 20, "sigma_start": 0.25,
               "sigma_end": 0.01, "step_factor": 0.2, "box_margin": 3.0},
    "em": {"steps": 150, "chains": 4, "dt": 0.01, "tau_star": 0.9, "eps_max": None,
           "data_weight": None, "t_start": 0.0, "interaction_sigma": None,
           "interaction_region": None},
}
#: HQS's rules for its last coupling level given the noise sigma (``solvers.api.last_level``):
#: ``fixed`` keeps ``sigma_end``, ``noise`` raises it to the noise, ``below-noise`` lowers it
#: to at most noise / ``LEVELS_BELOW_NOISE``. Unset (None), denoising takes ``noise`` (one
#: level is then Tweedie's denoiser at the noise) and every other task ``fixed``.
END_LEVELS = ("fixed", "noise", "below-noise")
COMMON = {"prior_weight": 1.0, "sigma": None, "samples": None, "init": None, "seed": 0,
          "profile": False, "symmetry": "none", "keep_observed": True, "stabilise": True}


def resolve_options(method: str, tuned: dict, options: dict, task: str = "generic") -> dict:
    """The method's settings for a ``task`` (``denoise``, ``inpaint``...): the caller's
    ``options`` > the prior's ``tuned[method]`` > ``DEFAULTS[method]`` (validated)."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    options = _current(options)
    unknown = set(options) - set(COMMON) - set(DEFAULTS[method])
    if unknown:
        raise TypeError(f"unknown option(s) for method {method!r}: {', '.join(sorted(unknown))}")
    settings = {**COMMON, **DEFAULTS[method]}
    settings.update({k: v for k, v in _current(tuned.get(method, {})).items() if k in settings})
    settings.update({k: v for k, v in options.items() if v is not None})
    if method == "hqs" and settings["end_level"] is None:
        settings["end_level"] = "noise" if task == "denoise" else "fixed"
    validate_options(settings, method)
    if settings.get("step_cap") == math.inf:
        settings["step_cap"] = None  # an infinite cap is no cap (and None stays valid JSON)
    return settings


def _current(entry: dict) -> dict:
    """Settings (tuned or the caller's) with an ``end_at_noise`` flag, HQS's option before
    ``end_level`` (priors tuned then still hold it), read as the ``end_level`` it meant."""
    if "end_at_noise" not in entry:
        return entry
    current = {k: v for k, v in entry.items() if k != "end_at_noise"}
    current.setdefault("end_level", "noise" if entry["end_at_noise"] else "below-noise")
    return current


def _is_number(value) -> bool:
    """A real number (Python or numpy; not a bool), possibly infinite."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and not math.isnan(value))


def validate_options(s: dict, method: str) -> None:
    """Raise a ``UserError`` for a setting out of its range (``s``: the resolved settings);
    a ``samples`` count above ``chains`` raises ``chains`` to it."""
    def positive_int(name):
        value = s[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"{name} must be an integer >= 1, got {value!r}")

    def positive(name):
        value = s[name]
        if value is not None and not (_is_number(value) and 0 < value < math.inf):
            raise UserError(f"{name} must be a positive number, got {value!r}")

    positive_int("steps")
    positive("prior_weight")
    try:
        check_group(s["symmetry"])
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if s["samples"] is not None:
        positive_int("samples")
    for flag in ("keep_observed", "stabilise"):
        if not isinstance(s[flag], bool):
            raise UserError(f"{flag} must be True or False, got {s[flag]!r}")
    if method == "map":
        positive_int("history")
        first = s["first_step"]
        if not (_is_number(first) and 0 < first <= 1):
            raise UserError(f"first_step must be in (0, 1] (the first move, in [0, 1] pixel "
                            f"units), got {first!r}")
        for tolerance in ("gtol", "ftol"):  # 0: run every step
            if not (_is_number(s[tolerance]) and 0 <= s[tolerance] < math.inf):
                raise UserError(f"{tolerance} must be a number >= 0, got {s[tolerance]!r}")
    if method == "hqs":
        positive("sigma_start")
        positive("sigma_end")
        positive_int("cg_steps")
        cap = s["step_cap"]
        if cap is not None and not (_is_number(cap) and cap > 0):
            raise UserError(f"step_cap must be a positive number (inf: no cap), got {cap!r}")
        if s["end_level"] not in END_LEVELS:
            raise UserError(f"end_level must be one of {', '.join(END_LEVELS)}, "
                            f"got {s['end_level']!r}")
    if method not in SAMPLERS:
        return
    positive_int("chains")
    if s["samples"] is not None and s["samples"] > s["chains"]:
        s["chains"] = s["samples"]  # one independent chain per returned sample
    if method == "anneal":
        positive_int("levels")
        positive("sigma_start")
        positive("sigma_end")
        positive("step_factor")
        margin = s["box_margin"]
        if not (_is_number(margin) and margin >= 0):
            raise UserError(f"box_margin must be a number >= 0, got {margin!r}")
        return
    positive("interaction_sigma")
    if method == "posterior":
        if not isinstance(s["precondition"], bool):
            raise UserError(f"precondition must be True or False, got {s['precondition']!r}")
        for flag in ("mala", "adapt"):
            if not isinstance(s[flag], bool):
                raise UserError(f"{flag} must be True or False, got {s[flag]!r}")
        positive_int("thin")
        positive_int("lipschitz_iterations")
        positive("step")
        positive("step_factor")
        burn_in = s["burn_in"]
        if burn_in is not None and (isinstance(burn_in, bool)
                                    or not isinstance(burn_in, (int, np.integer))
                                    or not 0 <= burn_in < s["steps"]):
            raise UserError(f"burn_in must be an integer in [0, steps), got {burn_in!r}")
        after_burn_in = s["steps"] - (burn_in if burn_in is not None else s["steps"] // 4)
        if s["thin"] > after_burn_in:
            raise UserError(f"thin ({s['thin']}) keeps no state of the {after_burn_in} steps "
                            f"after burn-in: use thin <= {after_burn_in}")
    else:
        positive("dt")
        positive("eps_max")
        positive("data_weight")
        t_start, tau_star = s["t_start"], s["tau_star"]
        if not (_is_number(t_start) and 0 <= t_start < 1
                and _is_number(tau_star) and 0 <= tau_star <= 1):
            raise UserError(f"em needs 0 <= t_start < 1 and 0 <= tau_star <= 1, got t_start="
                            f"{t_start!r} and tau_star={tau_star!r}")

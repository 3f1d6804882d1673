"""Choose a prior's default solver settings on TRAINING images (never test images).

For each task family (denoise, inpaint, deblur, superres) this simulates its tasks
(``bench.validation_set``: ``TUNING_TASKS``; inpainting: 50% random pixels and a centred box)
on validation crops carved from the SPEC 6 training images (Fashion-MNIST training images for
fixed-size priors) and tries

- ``map``: a log grid of prior weights w (U = fidelity + w V/eps);
- ``hqs``: annealed half-quadratic splitting (for denoising, one iteration: Tweedie's denoiser
  with w near the calibrated value 1, or two, the second at a fine level below the noise
  (``REFINEMENT_LEVELS``); for fully convolutional priors also with V averaged over the image's
  flips and over the 8 symmetries of the square (``priors.symmetry``: the denoiser's
  self-ensemble, cheap for one or two iterations); otherwise a grid of first coupling levels
  and weights);
- ``anneal`` (fixed-size priors only, whose images are small enough to sample on a CPU within
  the tuning budget): the annealed Langevin sampler's posterior mean with solve()'s 16 chains,
  over a grid of step factors (its step at level s is step_factor * s^2) and of step budgets,
  then with twice the chains of the best setting while the chains' own spread predicts a
  gain of at least 0.1 dB;

keeping, per method, the settings with the best mean PSNR over the family's tasks, and as the
family's default method the best of those tried. For fully convolutional priors the two
inpainting tasks are tuned apart: scattered pixels for the ``inpaint`` entry, the box for
``inpaint-hole``, which ``solve`` takes for masks with solid holes (``defaults_key_of``; on the
crops the best plain MAP prior weight for the box was 8 to 64 times that for scattered
pixels). Deblurring and super-resolution are tuned at noise 0.01 and again without noise, for
the ``deblur-clean`` / ``superres-clean`` entries ``solve`` takes for (nearly) noiseless
measurements; at 0.01, fully convolutional priors' deblurring is scored on a Gaussian and a
motion kernel together. A grid whose best value lies on its edge (a weight, a first coupling
level) is continued beyond that edge until the best is inside it (``beyond_edges``). For fully
convolutional priors each entry's best setting is then retried with V averaged over the image's
flips and over the 8 symmetries of the square, each kept only if it gains ``SYMMETRY_GAIN_DB``
for its cost (the symmetry stage). Then the iteration budget of a MAP default is halved while
that scores as well (the budget stage). Last, where a family has both entries, the noise level
up to which ``solve`` takes the clean one is measured where they cross, each entry charged for
its cost at the symmetry stage's rate (the switch stage, ``bench.clean_switch``; its table is
kept under ``card.tuning.switches``). The table also holds a
``start`` row per task: the PSNR of the solvers' starting point (the measurement, bicubic
upsampling or the biharmonic fill), so one can see what the prior adds. The result is written
into the prior folder's ``config.json`` as ``solve_defaults`` (which ``solve`` reads), together
with the table of every trial under ``card.tuning``, so the choice can be audited and rerun:

    em-inverse tune PRIOR_FOLDER [--families inpaint] [--skip-grid]

(``--families``: re-tune some families (``superres``) or entries (``superres-clean``) only; the
others keep their settings and trial rows.
``--skip-grid``: start from the tuned settings and run the symmetry and budget stages alone.)

This module runs the stages in order; the grid lives in ``bench.tuning_grid``, the chain count
in ``bench.chain_budget``, the symmetry and budget stages in ``bench.tuning_stages``, the switch
stage in ``bench.clean_switch``, and the config.json record in ``bench.tuning_record``.
"""
from __future__ import annotations

import json
import math

import numpy as np

from em_inverse.bench.anscombe_choice import ANSCOMBE_TABLE, anscombe_stage
from em_inverse.bench.chain_budget import chains_worth_running, predicted_gain
from em_inverse.bench.clean_switch import switch_stage
from em_inverse.bench.map_switch import MAP_SWITCH_SUFFIX, map_switch_stage
from em_inverse.bench.metrics import mean_square, psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.tuning_grid import (ANNEAL_STEP_FACTORS, ANNEAL_STEPS, MAX_REFINEMENTS,
                                          REFINED_OPTIONS, WEIGHTS, beyond_edges, candidates)
from em_inverse.bench.tuning_record import SWITCHED_FIELDS, latest_rows, write_tuning
from em_inverse.bench.tuning_stages import (BUDGETED_METHODS, SYMMETRY_GAIN_DB, shorten,
                                            symmetrise)
from em_inverse.bench.validation_set import (FAMILIES, TUNING_TASKS, defaults_key_of,
                                             fashion_training_images, tasks_for, validation_crops)
from em_inverse.priors.symmetry import GROUPS
from em_inverse.solvers.tuned_entries import (ANSCOMBE_METHOD_KEY, CLEAN_FAMILIES, CLEAN_SUFFIX,
                                              MAP_ABOVE_KEY, SWITCH_KEY)

__all__ = ["tune_prior", "write_tuning"]


#: Pixels ignored on each side of a tuning crop when it is scored (fully convolutional priors),
#: and the smallest crop that leaves a scored centre as wide as both borders together.
CROP_BORDER = 8
MIN_CROP_SIZE = 4 * CROP_BORDER

def tune_prior(prior, *, size: int = 128, count: int = 6, weights=WEIGHTS, steps: int = 100,
               anneal_steps: tuple[int, ...] = ANNEAL_STEPS, tasks=TUNING_TASKS,
               families: tuple[str, ...] = FAMILIES, skip_grid: bool = False,
               map_switch_only: bool = False, anscombe_only: bool = False,
               progress=None) -> dict:
    """``{"solve_defaults": {key: {"method": m, "map": {...}, "hqs": {...}}}, "trials": [...],
    "validation": {...}, "switches": {key: {...}}}`` for ``prior`` (``switches``: the
    switch stage's table per ``FAMILY-clean`` entry, ``bench.clean_switch.switch_stage``, and
    the MAP switch's per HQS entry of deblurring and super-resolution, keyed ``FAMILY-map``,
    ``bench.map_switch.map_switch_stage``), one
    ``solve_defaults`` entry per key of
    :func:`defaults_key_of` (the task families, with ``inpaint-hole`` and the ``-clean`` entries
    apart); ``steps`` is the MAP iteration budget per trial (and so the default's),
    ``anneal_steps`` the annealed sampler's budgets tried (fixed-size priors only); only the
    tasks of the ``families`` (or entries, ``validation_set.ENTRIES``) named are tuned (see
    :func:`write_tuning` for merging a partial tuning). ``skip_grid``: no grid search; each
    entry starts from the prior's tuned method and settings (rescored) and runs the symmetry
    and budget stages alone, and its earlier trial rows are kept in the table (an entry that a
    family name implies but that was never tuned is skipped). ``map_switch_only``: the tuned
    deblurring and super-resolution entries of ``families`` are kept as they are, rows and
    clean switches included, and only their MAP switch is measured (``bench.map_switch``).
    ``anscombe_only``: the same for the ``denoise`` entry and its Anscombe stage (which of its
    methods runs on a Poisson measurement's Anscombe transform, ``bench.anscombe_choice``),
    which also runs whenever denoising is tuned.

    Fixed-size priors (Fashion-MNIST) are tuned on their own training images (garments have an
    orientation: no symmetry trials), fully convolutional ones on crops of the natural training
    images.
    """
    from em_inverse.errors import UserError
    from em_inverse.solvers import solve
    from em_inverse.solvers.init import initial_estimate

    fixed = prior.image_size is not None
    tasks = [t for t in tasks_for(fixed, tasks)
             if t.family in families or defaults_key_of(t, fixed) in families]
    groups: dict[str, list[Task]] = {}  # solve_defaults entry -> the tasks that tune it
    for task in tasks:
        groups.setdefault(defaults_key_of(task, fixed), []).append(task)
    earlier, earlier_rows = prior.solve_defaults, prior.card.get("tuning", {}).get("trials", [])
    skip_grid = skip_grid or map_switch_only or anscombe_only
    if map_switch_only or anscombe_only:
        staged = CLEAN_FAMILIES if map_switch_only else ("denoise",)
        groups = {key: group for key, group in groups.items() if key in staged}
    if skip_grid:
        # an entry that a family name implies but that was never tuned is left alone
        groups = {key: group for key, group in groups.items()
                  if key in families or "method" in earlier.get(key, {})}
        untuned = [key for key in groups if "method" not in earlier.get(key, {})]
        if untuned:
            raise UserError(f"no tuned settings to start from for {', '.join(untuned)}: "
                            f"run a full tuning of these families first")
    key_of_task = {task.name: key for key, group in groups.items() for task in group}
    # Every trial runs its own options on solve()'s defaults: settings from an earlier tuning
    # must not fill in the options a trial leaves out (a plain one-step denoiser trial would
    # otherwise inherit a tuned ``symmetry``).
    prior = prior.copy_with(solve_defaults={})
    crops = [] if fixed else validation_crops(prior.channels, size, count)
    images = fashion_training_images(count) if fixed else [crop for _, crop in crops]
    images = [x.to(prior.device) for x in images]
    symmetries = ("none",) if fixed else GROUPS  # garments have an orientation
    anneal_factors = ANNEAL_STEP_FACTORS if fixed else ()
    border = 0 if fixed else CROP_BORDER
    # skip_grid: the tuned entries' earlier rows stay, but a setting scored again (the start
    # rows, the tuned setting, a stage's trials on a rerun) keeps only its new row
    trials = [row for row in earlier_rows if skip_grid and row["task"] in key_of_task]
    defaults = {}
    for key, key_tasks in groups.items():
        if map_switch_only or anscombe_only:
            defaults[key] = {k: v for k, v in earlier[key].items() if k not in SWITCHED_FIELDS}
            continue
        family = key_tasks[0].family
        cases = [(task, [task.simulate(x, seed=100 + k) for k, x in enumerate(images)])
                 for task in key_tasks]
        for task, simulated in cases:  # a reference row: what the solvers start from
            start = [psnr(initial_estimate(y, physics, x.shape).clamp(0, 1), x, border=border)
                     for x, (physics, y) in zip(images, simulated)]
            trials.append({"task": task.name, "method": "start",
                           "psnr": round(float(np.mean(start)), 3)})

        spreads: dict[str, list[tuple[float, float]]] = {}  # see chain_errors

        def score(method: str, options: dict, predicted: float | None = None) -> float:
            """Mean PSNR of one setting over the entry's tasks (one trial row per task, with
            the ``predicted`` gain in dB if given)."""
            means, errors = [], []
            spreads[_key(method, options)] = errors
            for task, simulated in cases:
                values = []
                for x, (physics, y) in zip(images, simulated):
                    solution = solve(y, physics, prior, method=method, progress=False,
                                     **options)
                    values.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                    if getattr(solution, "std", None) is not None:
                        errors.append((10 ** (-values[-1] / 10),
                                       mean_square(solution.std, border=border)))
                means.append(float(np.mean(values)))
                trials.append({"task": task.name, "method": method, **options,
                               "psnr": round(means[-1], 3)}
                              | ({} if predicted is None else
                                 {"predicted_gain_db": round(predicted, 3)}))
                if progress:
                    note = "" if predicted is None else f" (predicted gain {predicted:.2f} dB)"
                    progress(f"{task.name}: {method} {options} -> {means[-1]:.2f} dB{note}")
            return float(np.mean(means))

        def chain_errors(method: str, options: dict) -> list[tuple[float, float]]:
            """(squared error of the posterior mean, mean chain variance) per image of the
            last scoring of a sampler setting."""
            return spreads[_key(method, options)]

        if skip_grid:
            leader = earlier[key]["method"]
            options = dict(earlier[key].get(leader, {}))
            best = {leader: (score(leader, options), options)}
        else:
            best = _search(score, candidates(family, weights, steps, symmetries, anneal_factors,
                                             anneal_steps), chain_errors)
            leader = max(best, key=lambda m: best[m][0])
        if not fixed and "symmetry" not in best[leader][1]:
            best[leader] = symmetrise(score, leader, *best[leader])
        if leader in BUDGETED_METHODS:
            best[leader] = shorten(score, leader, *best[leader])
        # Every option of the best trial becomes a default, budgets included: MAP stopped
        # early is a different estimate (the 20000-step natural-gray, inpainting crops,
        # w = 1/2: 35.51 and 30.94 dB after 100 L-BFGS iterations, 35.32 and 30.85 after
        # solve()'s 200: benchmarks/map_budget_check.py at commit d502a14).
        carried = ({k: v for k, v in earlier[key].items() if k not in SWITCHED_FIELDS}
                   if skip_grid else {})
        defaults[key] = {**carried, "method": leader,
                         **{m: dict(options) for m, (_, options) in best.items()}}
    switches = {}
    merged = {**earlier, **defaults}
    for family in CLEAN_FAMILIES if not (map_switch_only or anscombe_only) else ():
        pair = (family, family + CLEAN_SUFFIX)
        if all("method" in merged.get(k, {}) for k in pair) and any(k in defaults for k in pair):
            switches[family + CLEAN_SUFFIX] = switch_stage(
                prior, family, merged, images, tasks_for(fixed), border,
                db_per_doubling=SYMMETRY_GAIN_DB, progress=progress)
    for key, switch in switches.items():  # the switch measured now, not one carried over
        if key in defaults:
            defaults[key][SWITCH_KEY] = switch[SWITCH_KEY]
    for family in CLEAN_FAMILIES:  # an HQS tuned at 0.01: up to which noise does it serve?
        entry = defaults.get(family, {})
        if entry.get("method") == "hqs" and "map" in entry:
            switch = map_switch_stage(prior, family, entry, images, tasks_for(fixed), border,
                                      db_per_doubling=SYMMETRY_GAIN_DB, progress=progress)
            switches[family + MAP_SWITCH_SUFFIX] = switch
            if switch[MAP_ABOVE_KEY] is not None:
                entry[MAP_ABOVE_KEY] = switch[MAP_ABOVE_KEY]
    denoise = defaults.get("denoise", {})  # which of its methods denoises Poisson measurements
    if "hqs" in denoise and "map" in denoise:
        switches[ANSCOMBE_TABLE] = anscombe_stage(prior, denoise, images, border,
                                                  db_per_doubling=SYMMETRY_GAIN_DB,
                                                  progress=progress)
        denoise[ANSCOMBE_METHOD_KEY] = switches[ANSCOMBE_TABLE][ANSCOMBE_METHOD_KEY]
    source = (f"first {count} Fashion-MNIST training images" if fixed else
              f"{size}x{size} crops of " + ", ".join(name for name, _ in crops))
    return {"solve_defaults": defaults, "trials": latest_rows(trials),
            "validation": {"images": source, "map_steps": steps}, "switches": switches}


def _search(score, grid: list[tuple[str, dict]], chain_errors
            ) -> dict[str, tuple[float, dict]]:
    """The best (mean PSNR, options) per method: ``score(method, options)`` over the ``grid``,
    then past the edges of the grid (``REFINED_OPTIONS``), then, for the annealed sampler, with
    the chain count of :func:`chains_worth_running` on its ``chain_errors(method, options)``."""
    best: dict[str, tuple[float, dict]] = {}
    tried: dict[str, list[dict]] = {}

    def consider(method: str, options: dict) -> None:
        mean = score(method, options)
        tried.setdefault(method, []).append(options)
        if mean > best.get(method, (-math.inf, None))[0]:
            best[method] = (mean, options)

    for method, options in grid:
        consider(method, options)
    for method, axes in REFINED_OPTIONS.items():
        if method not in best:
            continue
        for _ in range(MAX_REFINEMENTS):
            beyond = beyond_edges(best[method][1], tried[method], axes)
            if not beyond:
                break
            for options in beyond:
                consider(method, options)
    if "anneal" in best:
        _, options = best["anneal"]
        squared_error, variance = np.array(chain_errors("anneal", options)).T
        chains = chains_worth_running(squared_error, variance, options["chains"])
        if chains != options["chains"]:
            predicted = predicted_gain(squared_error, variance, options["chains"], chains)
            more = {**options, "chains": chains}
            best["anneal"] = (score("anneal", more, predicted=predicted), more)
    return best


def _key(method: str, options: dict) -> str:
    return json.dumps([method, options], sort_keys=True)

"""Which of a prior's tuned settings (its ``solve_defaults`` entries, written by ``em-inverse
tune``) a measurement takes, and when its tuned HQS gives way to its tuned MAP.

An entry is keyed by the operator's task family (``denoise``, ``inpaint``, ``deblur``,
``superres``), except that an inpainting mask with solid holes takes ``inpaint-hole`` and a
deblurring or super-resolution below the clean entry's ``below_noise`` level takes
``deblur-clean`` / ``superres-clean`` (``tuned_defaults``). Noise stds are on the [0, 1] scale.
"""
from __future__ import annotations

import math

from deepinv.physics import Inpainting

from em_inverse.operators.masks import has_holes
from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.operators.physics import task_of

#: The ``solve_defaults`` entry for inpainting masks with solid holes.
HOLE_KEY = "inpaint-hole"
#: Deblurring and super-resolution have two entries: ``deblur`` / ``superres``, tuned at the
#: benchmark's noise 0.01 (``bench.validation_set.TUNING_TASKS``), and ``deblur-clean`` /
#: ``superres-clean``, tuned without noise (the data term's floor, ``MIN_SIGMA``): without noise
#: the best prior step is weaker (natural-gray's tuning crops, noiseless x2 super-resolution:
#: 33.47 dB with the noisy entry's HQS, 34.67 with the clean one's, whose prior weight is half
#: as large and whose first level is 0.05 instead of 0.1; its card's tuning table and
#: ``benchmarks/hqs_vs_map_noise_check.py``). A measurement takes the clean entry below its
#: ``SWITCH_KEY`` level, which the tuner's switch stage measures where the two entries cross,
#: the clean one charged for its cost (``bench.clean_switch``; at ``MIN_SIGMA`` it is never
#: taken); an entry without one switches at ``CLEAN_BELOW``, the geometric mean of the two
#: tuning levels (0.0063).
CLEAN_SUFFIX = "-clean"
CLEAN_FAMILIES = ("deblur", "superres")
TUNED_NOISE = 0.01
CLEAN_BELOW = math.sqrt(MIN_SIGMA * TUNED_NOISE)
SWITCH_KEY = "below_noise"
#: The share of the highest trained noise level (``EnergyPrior.denoising_levels``) up to which
#: a prior's tuned HQS is trusted; above, ``solve`` runs the prior's tuned MAP
#: (``hqs_fallback``). The top of the trained range is shared with the flow term, and
#: Tweedie's step collapses before it: on the tuning crops natural-gray's tuned HQS beats its
#: MAP up to 54/255 (0.85 of its 0.25) and falls to 19.40 dB at 60/255 (MAP 24.26);
#: natural-rgb's holds at 90/255 (22.84) and gives 14.46 at 93/255 (0.84 of its 0.433; MAP
#: 23.17). Switching at 0.8 costs about 1 dB in the band below the collapse (gray at 52/255: MAP
#: 25.17, two-level HQS 26.42), a switch past the collapse up to 8.7 (natural-rgb at 93/255)
#: (``python benchmarks/denoiser_refinement_check.py PRIOR --levels L``, one thread).
TRUSTED_SHARE = 0.8


def defaults_key(operator, sigma: float | None = None, clean_below: float = CLEAN_BELOW) -> str:
    """Which ``solve_defaults`` entry fits ``operator`` at noise std ``sigma`` ([0, 1] scale;
    None: unknown): its task family (``generic`` if unknown); ``HOLE_KEY`` for an inpainting
    mask with solid holes: large holes are filled from context further away than scattered
    missing pixels, and the bundled priors' best settings differ (a larger prior weight); and
    ``FAMILY-clean`` for deblurring and super-resolution below ``clean_below``."""
    task = task_of(operator) or "generic"
    if task == "inpaint" and isinstance(operator, Inpainting) and has_holes(operator.mask):
        return HOLE_KEY
    if task in CLEAN_FAMILIES and sigma is not None and sigma < clean_below:
        return task + CLEAN_SUFFIX
    return task


def clean_below(prior, family: str | None) -> float:
    """The noise std below which ``solve`` takes the prior's ``family-clean`` entry: its
    ``SWITCH_KEY`` level, else ``CLEAN_BELOW``."""
    entry = (getattr(prior, "solve_defaults", {}) or {}).get(f"{family}{CLEAN_SUFFIX}", {})
    return float(entry.get(SWITCH_KEY, CLEAN_BELOW))


def tuned_defaults(prior, operator, sigma: float | None = None) -> tuple[str | None, dict]:
    """(entry, settings): the prior's tuned settings for ``defaults_key(operator, sigma)``; a
    prior tuned without a ``HOLE_KEY`` or ``FAMILY-clean`` entry uses its ``inpaint`` or
    ``FAMILY`` settings instead; a ``FAMILY-clean`` entry serves below its ``SWITCH_KEY``
    level (else ``CLEAN_BELOW``). (None, {}) if the prior has none for the operator."""
    tuned = dict(getattr(prior, "solve_defaults", {}) or {})
    key = defaults_key(operator, sigma, clean_below(prior, task_of(operator)))
    if key not in tuned:
        key = "inpaint" if key == HOLE_KEY else key.removesuffix(CLEAN_SUFFIX)
    return (key, tuned[key]) if key in tuned else (None, {})


#: The families whose tuned HQS gives way to the tuned MAP under Poisson noise, whose level
#: varies per pixel: denoising, whose tuned HQS is Tweedie's denoiser at one level per image.
#: ``solve`` reaches this only with ``stabilise=False``: by default it denoises the Anscombe
#: transform of y, whose noise has one level (``solvers.stabilised``).
#: On natural-gray's six tuning crops at 20 / 100 photons per unit intensity (root-mean noise
#: std about 0.14 / 0.06), both with the per-pixel data term: 27.08 / 32.61 dB against the
#: tuned MAP's 27.42 / 33.13 (``python benchmarks/poisson_check.py natural-gray``).
#: Inpainting, deblurring and super-resolution keep their HQS, whose levels descend below the
#: noise (``end_level``; HQS / MAP: 27.21 / 31.47 against 23.20 / 28.18, 26.07 / 28.76 against
#: 25.64 / 28.32, and 24.78 / 29.74 against 23.50 / 29.12), up to a MAP switch if they have one.
POISSON_MAP_FAMILIES = ("denoise",)


#: The ``denoise`` entry's method (``hqs`` or ``map``) for a Poisson denoising, which ``solve``
#: runs on the measurement's Anscombe transform (``solvers.stabilised``; the tuner's Anscombe
#: stage, ``bench.anscombe_choice``; absent: the entry's method).
ANSCOMBE_METHOD_KEY = "anscombe_method"


#: A deblurring or super-resolution entry's noise std above which ``solve`` runs its tuned MAP
#: instead of its tuned HQS (the tuner's MAP switch, ``bench.map_switch``; absent: never).
MAP_ABOVE_KEY = "map_above"


def hqs_fallback(method: str, prior, noise: float, family: str | None = None,
                 poisson: bool = False, entry: dict | None = None) -> str | None:
    """Why the prior's tuned ``method`` gives way to its tuned MAP at noise std ``noise``, or
    None where it serves (``solve`` switches only when the caller named no method).

    The tuned HQS gives way under Poisson noise (``poisson``: a noise variance per pixel) for
    the ``POISSON_MAP_FAMILIES`` (``family``); above its tuned ``entry``'s ``MAP_ABOVE_KEY``
    level (``bench.map_switch``); and for any family beyond the prior's trained levels: its
    first prior step is Tweedie's denoiser at the noise sigma, which the prior learned only up
    to the top of its ``denoising_levels`` (and which holds to ``TRUSTED_SHARE`` of it):
    beyond, grad V is no noisy-data score and the step makes the image worse than the
    measurement
    (natural-gray's tuning crops at 75/255: 9.85 dB from a 12.30 dB input; its tuned MAP 22.30:
    ``python benchmarks/denoiser_refinement_check.py --levels 75,100``). MAP only evaluates
    grad V near its estimate, which stays image-like."""
    if method != "hqs":
        return None
    if poisson and family in POISSON_MAP_FAMILIES:
        return ("Poisson noise varies per pixel, and the tuned HQS assumes one Gaussian level: "
                "MAP instead")
    above = (entry or {}).get(MAP_ABOVE_KEY)
    if above is not None and noise > above:
        return (f"noise sigma {noise:.3g} is above {above:.3g}, where the tuned HQS loses to "
                f"the tuned MAP on the tuning crops: MAP instead")
    levels = getattr(prior, "denoising_levels", None)
    if levels is None or noise <= TRUSTED_SHARE * levels[1]:
        return None
    return (f"noise sigma {noise:.3g} is near or above the highest level the prior's denoiser "
            f"was trained at ({levels[1]:.3g}): MAP instead of the tuned HQS")

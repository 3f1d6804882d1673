"""The tuner's stages after its grid search, on the best setting of one entry: the symmetry
stage (``symmetrise``: V averaged over the image's flips or the 8 symmetries of the square, kept
only for a gain worth its cost) and the budget stage (``shorten``: MAP's iterations halved while
that scores as well). ``score(method, options)`` is the tuner's scoring function: the mean PSNR
(dB) of one setting over the entry's tasks.
"""
from __future__ import annotations

from em_inverse.bench.tuning_grid import MAX_REFINEMENTS, REFINED_OPTIONS
from em_inverse.priors.symmetry import GROUPS

#: The symmetry stage: for fully convolutional priors, the entry's best setting is retried with
#: V averaged over the image's flips, then over the 8 symmetries of the square (the one-step
#: denoiser tries the groups on its whole grid instead: there they are cheap). Each group costs
#: 4x / 8x the plain solve, so one is kept only if it gains at least SYMMETRY_GAIN_DB over the
#: best smaller one, and the next is tried only then. Averaging makes V smoother, so the prior
#: weight of a kept group is then moved (x2 or /2) while that gains. The switch stage charges
#: the clean entries' cost at the same rate: SYMMETRY_GAIN_DB per doubling.
SYMMETRY_GAIN_DB = 0.1
#: The budget stage: MAP's iteration budget (L-BFGS iterations, one grad V each; the grid runs
#: 100) is halved while the shorter run scores at least as well, down to MIN_BUDGET. HQS's
#: levels are not: fewer levels from the same first level descend in larger ratios, a schedule
#: that can tie at the tuning noise and break elsewhere. On natural-gray's crops 20 levels tied
#: 40 for super-resolution at noise 0.01 (33.72 against 33.68 dB) but lost 0.90 dB at 0.0075 and
#: 3.37 at 0.005 (``python benchmarks/hqs_vs_map_noise_check.py natural-gray`` at commit
#: 23cf985, which ran 20 levels), and natural-rgb's deblurring fell from 29.97 to 17.77 dB
#: (benchmarks/experiments.md, "The budget stage").
BUDGETED_METHODS = ("map",)
MIN_BUDGET = 10


def shorten(score, method: str, mean: float, options: dict) -> tuple[float, dict]:
    """(mean PSNR, options) of ``method`` after the budget stage: its ``steps`` halved while
    the shorter run scores at least ``mean``, down to ``MIN_BUDGET``."""
    while options.get("steps", 0) // 2 >= MIN_BUDGET:
        trial = {**options, "steps": options["steps"] // 2}
        value = score(method, trial)
        if value < mean:
            break
        mean, options = value, trial
    return mean, options


def symmetrise(score, method: str, mean: float, options: dict) -> tuple[float, dict]:
    """(mean PSNR, options) of ``method`` after the symmetry stage (``SYMMETRY_GAIN_DB``):
    the groups in order of size while each gains enough, then the weight of a kept group moved
    by factors of 2 while that gains (within ``REFINED_OPTIONS``' bounds)."""
    for group in GROUPS[1:]:
        trial = {**options, "symmetry": group}
        gained = score(method, trial) - mean
        if gained < SYMMETRY_GAIN_DB:
            break
        mean, options = mean + gained, trial
    if "symmetry" not in options or "prior_weight" not in options:
        return mean, options
    lowest, highest = REFINED_OPTIONS.get(method, {}).get("prior_weight", (1 / 64, 64.0))
    for factor in (2.0, 0.5):
        moved = False
        for _ in range(MAX_REFINEMENTS):
            weight = options["prior_weight"] * factor
            if not lowest <= weight <= highest:
                break
            trial = {**options, "prior_weight": weight}
            value = score(method, trial)
            if value <= mean:
                break
            mean, options, moved = value, trial, True
        if moved:
            break
    return mean, options

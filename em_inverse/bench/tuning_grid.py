"""The grid of solver settings ``em-inverse tune`` tries per task family, and its continuation
past the grid's edges (``beyond_edges``). Noise levels and couplings are stds on the [0, 1] scale;
prior weights w multiply V/eps in U = fidelity + w V/eps.
"""
from __future__ import annotations

from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.solvers.options import DEFAULTS as SOLVE_DEFAULTS

#: MAP's prior weights.
WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: HQS's first coupling level and prior weight. Small couplings and weights keep the solve close
#: to its starting point (biharmonic fill, bicubic upsampling): on 50% random pixels the bundled
#: priors did not improve on the biharmonic fill with the coarser settings alone.
HQS_SIGMA_STARTS = (0.02, 0.05, 0.1)
HQS_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
#: The annealed sampler's trials: its budget and step factors. Larger factors mix faster
#: within the same steps (Fashion-MNIST box hole, first 20 training images, 300 steps: 21.4 dB
#: at 0.2, 23.7 at 0.7; see the prior's tuning table). The grid stops at 0.7: the step at level
#: s is then 0.7 s^2, close to the 1 / curvature = s^2 of the level-s noise itself.
#: Longer chains anneal more slowly through the levels; the budgets stop at 600 steps (16 chains
#: x 600 steps: about 10 s per 28x28 image on one CPU core).
#: The trials run solve()'s own chain count: the best step settings depend on it (box hole, the
#: same 20 images: with 4 chains 600 steps at 0.5 led, 23.37 vs 23.14 dB for 300 at 0.7, the
#: card's tuning table at commit 6336996; with 16 chains 300 at 0.7 led, 23.65 vs 23.29, the
#: table now: a faster-mixing sampler gains more from more chains).
ANNEAL_CHAINS = SOLVE_DEFAULTS["anneal"]["chains"]
ANNEAL_STEPS = (300, 600)
ANNEAL_STEP_FACTORS = (0.2, 0.5, 0.7)
#: The one-step denoiser's weights: Tweedie's formula is exact at w = 1 for a perfectly
#: calibrated V, and PSNR falls steeply away from the best w (bundled natural-gray, dihedral
#: average: 29.09 / 31.16 / 27.93 dB at 0.75 / 1 / 1.25: its card's tuning table), so the grid
#: is fine around 1.
DENOISER_WEIGHTS = (0.75, 0.9, 1.0, 1.1, 1.25)
#: The denoiser is also tried with a second HQS level below the noise (``end_level="below-noise"``:
#: the noise sigma, then min(level, noise / 4)), at these levels. The second prior step refines the
#: learned, inexact Tweedie estimate; it works at the finest levels the priors were trained on
#: (their denoising-score term stops at 0.01 in pixel units): on natural-gray's tuning crops at
#: 25/255, +0.31 dB at 0.01, +0.14 at 0.005, -1.64 at 0.02 (a coarse step smooths an image that is
#: already denoised), and three levels down to 0.01 lose 6.42 (``python
#: benchmarks/denoiser_refinement_check.py natural-gray --sigma-end L [--steps 3]``).
REFINEMENT_LEVELS = (0.005, 0.01)
#: Options whose grid is continued when the best setting lies on its edge: the value beyond
#: the edge (the grid's own ratio between its two outermost values) is tried, up to
#: MAX_REFINEMENTS times per method and within (lowest, highest). A best value on the edge of
#: a grid says the optimum lies outside it: the bundled natural priors' first tuning chose the
#: smallest HQS weight on the grid (0.25) for every family but denoising.
REFINED_OPTIONS = {"map": {"prior_weight": (1 / 64, 64.0)},
                   "hqs": {"prior_weight": (1 / 64, 64.0), "sigma_start": (0.01, 0.5)}}
MAX_REFINEMENTS = 4


def candidates(family: str, weights=WEIGHTS, map_steps: int = 100,
               symmetries: tuple[str, ...] = ("none",),
               anneal_factors: tuple[float, ...] = (),
               anneal_steps: tuple[int, ...] = ANNEAL_STEPS) -> list[tuple[str, dict]]:
    """(method, options) pairs tried for one task family; ``symmetries``: the groups tried for
    the one-step denoiser (``none`` means the plain prior); ``anneal_factors`` x
    ``anneal_steps``: the annealed sampler's step factors and steps per chain (no factors: the
    sampler is not tried)."""
    trials = [("map", {"prior_weight": w, "steps": map_steps}) for w in weights]
    if family == "denoise":
        schedules = [{"steps": 1}] + [
            {"steps": 2, "sigma_start": MIN_SIGMA, "sigma_end": level,
             "end_level": "below-noise"}
            for level in REFINEMENT_LEVELS]
        trials += [("hqs", schedule | {"prior_weight": w} |
                    ({} if g == "none" else {"symmetry": g}))
                   for g in symmetries for schedule in schedules for w in DENOISER_WEIGHTS]
    else:
        trials += [("hqs", {"steps": 40, "sigma_start": s, "prior_weight": w})
                   for s in HQS_SIGMA_STARTS for w in HQS_WEIGHTS]
    trials += [("anneal", {"chains": ANNEAL_CHAINS, "steps": n, "step_factor": f})
               for n in anneal_steps for f in anneal_factors]
    return trials


def beyond_edges(best: dict, tried: list[dict], axes: dict[str, tuple[float, float]]
                 ) -> list[dict]:
    """Settings one grid step beyond ``best`` along each option in ``axes`` on which ``best``
    holds the smallest or largest value among the ``tried`` settings that agree with it on
    every other option; the step continues the grid's spacing (value * value / its inner
    neighbour). Values outside the option's (lowest, highest) are not proposed."""
    beyond = []
    for key, (lowest, highest) in axes.items():
        if key not in best:
            continue
        rest = {k: v for k, v in best.items() if k != key}
        line = sorted({o[key] for o in tried
                       if key in o and {k: v for k, v in o.items() if k != key} == rest})
        value = best[key]
        if len(line) < 2 or line[0] < value < line[-1]:
            continue
        inner = line[1] if value == line[0] else line[-2]
        step = round(value * value / inner, 6)
        if lowest <= step <= highest:
            beyond.append({**best, key: step})
    return beyond

"""The Anscombe stage of ``em-inverse tune``: which of a prior's tuned denoisers, its HQS or
its MAP, ``solve`` runs on the Anscombe transform of a Poisson measurement
(``solvers.stabilised``).

The transform's noise is Gaussian of one level only where a pixel holds several photons: on
a dark background (Fashion-MNIST's, a night sky) most values count 0 or 1 photons, and
Tweedie's one-step denoiser, calibrated for Gaussian noise, did worst on such images in our
checks. Priors differ in how much of their images is dark: on its first 20 training images
fashion-mnist's tuned HQS on
the transform scores 18.96 / 21.17 dB at 10 / 20 photons, its tuned MAP 20.18 / 23.70, while
natural-gray's HQS beats its MAP by 1.7 dB on its crops at 10 to 30 photons (``python
benchmarks/poisson_check.py PRIOR --tasks denoise``). So the choice is measured per prior:
both settings of the tuned ``denoise`` entry are scored on the tuning images at
``POISSON_PHOTONS``, and the best mean PSNR, less ``db_per_doubling`` per doubling of its cost
over the cheaper one's (as the tuner's other stages charge), becomes the entry's
``ANSCOMBE_METHOD_KEY``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from em_inverse.bench.clean_switch import grad_v_cost
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.solvers.objective import SolverError
from em_inverse.solvers.tuned_entries import ANSCOMBE_METHOD_KEY

#: Photons per unit intensity of the Poisson denoisings scored (root-mean noise std about
#: 0.2, 0.11 and 0.06 on natural-gray's tuning crops).
POISSON_PHOTONS = (10, 30, 100)
#: The key of the stage's table in the card's ``tuning.switches``.
ANSCOMBE_TABLE = "denoise-anscombe"
#: The score of a solve that diverged (``SolverError``).
DIVERGED_PSNR = 0.0


def anscombe_stage(prior, entry: dict, images: list[torch.Tensor], border: int,
                   db_per_doubling: float, progress=None) -> dict:
    """``{ANSCOMBE_METHOD_KEY: "hqs" or "map", "photons": [...], "hqs": [...], "map": [...],
    "hqs_cost": ..., "map_cost": ..., "hqs_diverged": n, "map_diverged": n,
    "score": {method: dB}}`` for the tuned ``denoise`` ``entry`` (a ``solve_defaults`` entry
    with HQS and MAP settings) on ``images`` (each (1, C, H, W) in [0, 1]): mean PSNR per
    photon level, mean grad V per finished solve, solves that diverged (each scored
    ``DIVERGED_PSNR``), and each method's mean over the levels less its cost charge.
    ``prior`` carries no tuned settings (each method runs the entry's options on solve's
    defaults, as in the tuner's trials)."""
    from em_inverse.solvers import solve

    scores = {"hqs": [], "map": []}
    costs = {"hqs": [], "map": []}
    diverged = {"hqs": 0, "map": 0}
    for photons in POISSON_PHOTONS:
        task = Task(f"denoise-poisson-{photons}", "denoise", 0.0, photons=photons)
        cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        for method in scores:
            row = []
            for x, (physics, y) in zip(images, cases):
                try:
                    solution = solve(y, physics, prior, method=method, progress=False,
                                     **entry.get(method, {}))
                except SolverError:
                    row.append(DIVERGED_PSNR)
                    diverged[method] += 1
                    continue
                row.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                costs[method].append(grad_v_cost(solution))
            scores[method].append(float(np.mean(row)))
            if progress:
                progress(f"denoise on the Anscombe transform: {photons} photons, {method} -> "
                         f"{scores[method][-1]:.2f} dB")
    cost = {method: float(np.mean(c)) if c else math.inf for method, c in costs.items()}
    charged = charged_scores(scores, cost, db_per_doubling)
    return {ANSCOMBE_METHOD_KEY: max(charged, key=charged.get),
            "photons": list(POISSON_PHOTONS),
            "hqs": [round(s, 3) for s in scores["hqs"]],
            "map": [round(s, 3) for s in scores["map"]],
            "hqs_cost": round(cost["hqs"], 1), "map_cost": round(cost["map"], 1),
            "hqs_diverged": diverged["hqs"], "map_diverged": diverged["map"],
            "db_per_doubling": db_per_doubling,
            "score": {method: round(value, 3) for method, value in charged.items()}}


def charged_scores(scores: dict[str, list[float]], cost: dict[str, float],
                   db_per_doubling: float) -> dict[str, float]:
    """Each method's mean PSNR (dB) over ``scores`` less ``db_per_doubling`` per doubling of its
    ``cost`` (grad V per solve; ``inf`` for a method that never finished) over the cheapest."""
    cheapest = min(cost.values())
    return {method: float(np.mean(values)) - db_per_doubling * math.log2(cost[method] / cheapest)
            for method, values in scores.items()}

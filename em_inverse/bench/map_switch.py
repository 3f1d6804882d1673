"""The MAP switch of ``em-inverse tune``: above which noise level ``solve`` runs a prior's
tuned MAP for deblurring and super-resolution instead of their tuned HQS.

Both families are tuned at noise 0.01 (``TUNED_NOISE``). While HQS's levels ended at the
noise (``end_level="noise"``, solve's rule before commit 586d205), its schedule did not carry
far above that level: at noise 0.05 a schedule from 0.1 spanned a factor of 2 instead of 10,
and its 40 prior steps over-smoothed (natural-gray's tuning crops at noise 0.02 / 0.05 / 0.1:
deblurring by its tuned HQS 30.41 / 27.24 / 22.85 dB, by its tuned MAP 30.05 / 28.56 / 26.58).
Ending at the tuned ``sigma_end`` instead, its HQS scores 30.49 / 29.12 / 27.37 and beats MAP
at every level (``python benchmarks/hqs_end_level_check.py natural-gray``); natural-rgb's
deblurring is the one bundled entry whose MAP still wins, at 0.1 (experiments.md, "HQS levels
below the noise"). So the crossing is measured per prior: the entry's HQS and its MAP settings
are scored on the tuning images at the noise levels ``ABOVE_NOISE``, and the switch is chosen
among the geometric means of consecutive levels, the top level, and never (``math.inf``), as
the clean entries' switch is (``bench.clean_switch.choose_switch``: by the true level and by
the level estimated from an 8-bit measurement, MAP charged for its extra cost at the tuner's
rate). The entry's ``MAP_ABOVE_KEY`` holds it (``None``: never).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from em_inverse.bench.clean_switch import (as_8_bit, choose_switch, grad_v_cost,
                                           switch_candidates)
from em_inverse.bench.metrics import psnr
from em_inverse.operators.noise_estimation import estimate_noise_sigma
from em_inverse.solvers.objective import SolverError
from em_inverse.solvers.tuned_entries import MAP_ABOVE_KEY, TUNED_NOISE

#: The noise stds ([0, 1] scale) at which an entry's HQS and its MAP are scored.
ABOVE_NOISE = (TUNED_NOISE, 0.02, 0.05, 0.1)
#: The key of a MAP switch's table in the card's ``tuning.switches``: ``FAMILY-map``.
MAP_SWITCH_SUFFIX = "-map"
#: The score of a solve that diverged (``SolverError``), costed at its ``steps`` budget.
DIVERGED_PSNR = 0.0


def map_switch_candidates(noise=ABOVE_NOISE) -> list[float]:
    """Switch levels tried, ascending: those of ``switch_candidates`` above the lowest level
    (where the tuner already chose HQS), and ``math.inf`` (MAP is never taken)."""
    return [level for level in switch_candidates(noise) if level > min(noise)] + [math.inf]


def map_switch_stage(prior, family: str, entry: dict, images: list[torch.Tensor], tasks,
                     border: int, db_per_doubling: float, progress=None) -> dict:
    """The MAP switch of ``family`` (``deblur`` or ``superres``) for its tuned ``entry`` (a
    ``solve_defaults`` entry whose method is HQS, with MAP settings too) on ``images`` (each
    (1, C, H, W) in [0, 1]), with the operator of ``family``'s tuning task at 0.01 in
    ``tasks``: ``{MAP_ABOVE_KEY: level or None, "noise": [...], "hqs": [...], "map": [...],
    "hqs_cost": [...], "map_cost": [...], "hqs_diverged": [...], "map_diverged": [...],
    "estimated": [...], "means": {level: dB}}`` (mean PSNRs, grad V per solve, solves that
    diverged (each scored ``DIVERGED_PSNR``) and estimated noise per level, rounded for the
    card). ``prior`` carries no tuned settings (the options run on solve's defaults, as in
    the tuner's trials)."""
    from em_inverse.solvers import solve

    template = next(t for t in tasks if t.family == family and t.sigma == TUNED_NOISE)
    scores = {"hqs": [], "map": []}
    costs = {"hqs": [], "map": []}
    diverged = {"hqs": [], "map": []}
    estimated = []
    for noise in ABOVE_NOISE:
        task = replace(template, name=f"{template.name}@{noise:g}", sigma=noise)
        cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        estimated.append([float(estimate_noise_sigma(as_8_bit(y))[0]) for _, y in cases])
        for method in ("hqs", "map"):
            options = entry.get(method, {})
            row, cost, failed = [], [], 0
            for x, (physics, y) in zip(images, cases):
                try:
                    solution = solve(y, physics, prior, method=method, progress=False,
                                     **options)
                except SolverError:  # e.g. fashion-mnist's deblurring HQS at noise 0.05
                    row.append(DIVERGED_PSNR)
                    cost.append(options.get("steps", 1))
                    failed += 1
                    continue
                row.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                cost.append(grad_v_cost(solution))
            scores[method].append(row)
            costs[method].append(cost)
            diverged[method].append(failed)
            if progress:
                progress(f"{family} MAP switch: noise {noise:g}, {method} -> "
                         f"{np.mean(row):.2f} dB, {np.mean(cost):.0f} grad V"
                         + (f", {failed} diverged" if failed else ""))
    above, means, _ = choose_switch(ABOVE_NOISE, scores["hqs"], scores["map"], estimated,
                                    costs["hqs"], costs["map"], db_per_doubling,
                                    candidates=map_switch_candidates())
    return {MAP_ABOVE_KEY: None if math.isinf(above) else above, "noise": list(ABOVE_NOISE),
            "hqs": [round(float(np.mean(r)), 3) for r in scores["hqs"]],
            "map": [round(float(np.mean(r)), 3) for r in scores["map"]],
            "hqs_cost": [round(float(np.mean(c)), 1) for c in costs["hqs"]],
            "map_cost": [round(float(np.mean(c)), 1) for c in costs["map"]],
            "hqs_diverged": diverged["hqs"], "map_diverged": diverged["map"],
            "estimated": [round(float(np.mean(r)), 5) for r in estimated],
            "db_per_doubling": db_per_doubling,
            "means": {("never" if math.isinf(b) else f"{b:.5f}"): round(m, 3)
                      for b, m in means.items()}}

"""The switch stage of ``em-inverse tune``: up to which noise level ``solve`` takes a prior's
``FAMILY-clean`` settings (tuned without noise) instead of its ``FAMILY`` ones (tuned at 0.01).

The two entries are tuned at the two ends of a range, and where they cross depends on the
prior and the family: natural-gray's ``deblur-clean`` (MAP at w = 1/32) beats its 0.01 entry
(HQS at w = 1/4) by 0.81 dB without noise but loses 3.02 dB at 0.005, while its
``superres-clean`` still wins by 0.70 dB at 0.0025 (the card's ``tuning.switches``;
``python benchmarks/hqs_vs_map_noise_check.py natural-gray`` runs the same comparison). The
geometric mean of the two tuning levels (``solvers.tuned_entries.CLEAN_BELOW``, 0.0063)
suited neither.

So the stage scores each entry's tuned method and settings on the tuning crops at the noise
levels ``SWITCH_NOISE`` (noise std, [0, 1] scale), and picks the switch level among the
candidates of ``switch_candidates``: the geometric means of consecutive levels as ``solve``
sees them (at least the data term's floor ``MIN_SIGMA``: without noise and at 0.0025 it sees
1/255), the floor itself (the clean entry is never taken) and 0.01. A measurement takes the
clean entry below the switch. Each candidate is scored twice per crop and level: choosing the entry
by the true level (the benchmark's and the Python API's case: the operator carries it) and by
the level ``estimate_noise_sigma`` reads from the measurement rounded to 8 bits (the CLI's
case: a PNG without ``--noise``; texture biases that estimate upwards, most after
downsampling). Both choices are scored with the PSNRs of the runs at the true level.

The entries can differ in cost: natural-rgb's ``superres-clean`` (MAP, 100 L-BFGS iterations:
108 grad V per solve with the line searches) switched at 0.0044 gains 0.019 dB on average over
never taking it (its 0.01 entry: HQS, 40 levels, 40 grad V), for a mean cost of 63.8 grad V
instead of 40 (its card's ``tuning.switches``). So each candidate is also charged for its cost,
at the tuner's rate for a costlier setting (the symmetry and chain stages':
``db_per_doubling``, 0.1 dB for a doubling): its score is its mean PSNR less
``db_per_doubling`` times log2 of its mean cost, the cost of a solve counted in evaluations of
the network's grad V (``grad_v_cost``: the solver's evaluations times the symmetry group's
size; the data steps take 9-34% of a default HQS solve on an Intel Xeon at 2.8 GHz,
deblurring's the most: ``benchmarks/data_step_share.py``).
The switch with the best score wins; a tie goes to the lower level, which leaves more
measurements to the entry tuned at the benchmark's noise.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.operators.noise_estimation import estimate_noise_sigma
from em_inverse.priors.symmetry import GROUP_SIZES
from em_inverse.solvers.tuned_entries import CLEAN_SUFFIX, SWITCH_KEY, TUNED_NOISE

#: The noise stds ([0, 1] scale) at which both entries are scored.
SWITCH_NOISE = (0.0, 0.0025, 0.005, 0.0075, TUNED_NOISE)


def switch_candidates(noise=SWITCH_NOISE) -> list[float]:
    """Switch levels tried, ascending: ``MIN_SIGMA`` (the clean entry is never taken: solve's
    level is at least the floor), the geometric means of consecutive distinct levels as solve
    sees them (``max(level, MIN_SIGMA)``), and the highest level."""
    seen = sorted({max(level, MIN_SIGMA) for level in noise})
    return [MIN_SIGMA] + [math.sqrt(a * b) for a, b in zip(seen, seen[1:])] + [seen[-1]]


def choose_switch(noise, clean, noisy, estimated, clean_cost=1.0, noisy_cost=1.0,
                  db_per_doubling: float = 0.0, candidates=None
                  ) -> tuple[float, dict[float, float], dict[float, float]]:
    """(switch level, mean PSNR per candidate, mean cost per candidate): the candidate of
    ``candidates`` (default ``switch_candidates(noise)``) whose choice of entry scores best,
    the lowest among equals. A candidate's score is its mean PSNR less ``db_per_doubling`` dB
    per doubling of its mean cost (0: PSNR alone).

    Args:
        noise: the true noise stds, (L,).
        clean, noisy: PSNR (dB) of the clean and of the noisy entry, (L, N) for N crops (in
            general: of the setting taken below the switch, and of the one taken above).
        estimated: the noise std ``estimate_noise_sigma`` read per level and crop, (L, N).
        clean_cost, noisy_cost: the cost of each entry's solves (any positive unit, e.g.
            ``grad_v_cost``), scalars or (L, N).
    """
    clean, noisy, estimated = (np.asarray(a, dtype=float) for a in (clean, noisy, estimated))
    clean_cost, noisy_cost = (np.broadcast_to(np.asarray(c, dtype=float), clean.shape)
                              for c in (clean_cost, noisy_cost))
    given = np.maximum(np.asarray(noise, dtype=float), MIN_SIGMA)[:, None].repeat(
        clean.shape[1], axis=1)
    means, costs, scores = {}, {}, {}
    for below in switch_candidates(noise) if candidates is None else candidates:
        takes_clean = [level < below for level in (given, estimated)]
        means[below] = float(np.mean([np.where(t, clean, noisy) for t in takes_clean]))
        costs[below] = float(np.mean([np.where(t, clean_cost, noisy_cost)
                                      for t in takes_clean]))
        scores[below] = means[below] - db_per_doubling * math.log2(costs[below])
    best = max(scores.values())
    return min(b for b, m in scores.items() if m >= best - 1e-9), means, costs


def grad_v_cost(solution) -> int:
    """The cost of a ``solve``: its evaluations of the prior times the size of its symmetry
    group (each evaluation of a symmetrised V runs the network on every image of the orbit)."""
    return solution.diagnostics.evaluations * GROUP_SIZES[solution.settings["symmetry"]]


def switch_stage(prior, family: str, entries: dict, images: list[torch.Tensor], tasks,
                 border: int, db_per_doubling: float, progress=None) -> dict:
    """The switch of ``family`` (``deblur`` or ``superres``) between ``entries[family]`` and
    ``entries[family + "-clean"]`` (``solve_defaults`` entries with a method and its
    options) on ``images`` (each (1, C, H, W) in [0, 1]), with the operator of ``family``'s
    noisy tuning task in ``tasks``, each candidate charged ``db_per_doubling`` per doubling of
    its cost (``choose_switch``): ``{SWITCH_KEY: level, "noise": [...], "clean": [...],
    "noisy": [...], "clean_cost": [...], "noisy_cost": [...], "estimated": [...],
    "means": {level: dB}, "costs": {level: grad V}}`` (PSNRs, costs in network grad V
    evaluations per solve and estimates averaged over the images, rounded for the card).
    ``prior`` carries no tuned settings (the options run on solve's defaults, as in the
    tuner's trials)."""
    from em_inverse.solvers import solve

    template = next(t for t in tasks if t.family == family and t.sigma == TUNED_NOISE)
    scores = {"clean": [], "noisy": []}
    costs = {"clean": [], "noisy": []}
    estimated = []
    for noise in SWITCH_NOISE:
        task: Task = replace(template, name=f"{template.name}@{noise:g}", sigma=noise)
        cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        estimated.append([float(estimate_noise_sigma(as_8_bit(y))[0]) for _, y in cases])
        for side, key in (("clean", family + CLEAN_SUFFIX), ("noisy", family)):
            method = entries[key]["method"]
            row, cost = [], []
            for x, (physics, y) in zip(images, cases):
                solution = solve(y, physics, prior, method=method, progress=False,
                                 **entries[key].get(method, {}))
                row.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                cost.append(grad_v_cost(solution))
            scores[side].append(row)
            costs[side].append(cost)
            if progress:
                progress(f"{key} switch: noise {noise:g}, {method} -> {np.mean(row):.2f} dB, "
                         f"{np.mean(cost):.0f} grad V")
    below, means, mean_costs = choose_switch(
        SWITCH_NOISE, scores["clean"], scores["noisy"], estimated, costs["clean"],
        costs["noisy"], db_per_doubling)
    return {SWITCH_KEY: below, "noise": list(SWITCH_NOISE),
            "clean": [round(float(np.mean(r)), 3) for r in scores["clean"]],
            "noisy": [round(float(np.mean(r)), 3) for r in scores["noisy"]],
            "clean_cost": [round(float(np.mean(c)), 1) for c in costs["clean"]],
            "noisy_cost": [round(float(np.mean(c)), 1) for c in costs["noisy"]],
            "estimated": [round(float(np.mean(r)), 5) for r in estimated],
            "db_per_doubling": db_per_doubling,
            "means": {f"{b:.5f}": round(m, 3) for b, m in means.items()},
            "costs": {f"{b:.5f}": round(c, 1) for b, c in mean_costs.items()}}


def as_8_bit(y: torch.Tensor) -> torch.Tensor:
    """y (B, C, H, W) as an 8-bit PNG stores it: clipped to [0, 1] and rounded to 1/255."""
    return torch.round(y.clamp(0, 1) * 255) / 255

"""Annealed Langevin posterior sampling over the prior's noise levels.

A V trained with the denoising-score term has, at a point x_s = x + s z that lies at noise
level s from the data, -grad V(x_s)/eps ~ the score of the data blurred by N(0, s^2) (noisy
images of different levels live on different shells, so one time-independent field can hold
every level). Running Langevin dynamics on a ladder of levels s_1 > ... > s_K, with the
measurement likelihood widened to the level (sigma_y^2 + s_k^2, as in Jalal et al. 2021 and
Song & Ermon 2019),

    x <- x - a_k (w grad V(x)/eps + A^T (A x - y) / (sigma_y^2 + s_k^2)) + sqrt(2 a_k) xi,
    a_k = step_factor * s_k^2,

moves every chain from a broad, easy-to-mix posterior to the sharp one; a last Tweedie step
x - s_K^2 w grad V(x)/eps removes the remaining level-s_K noise. The mean and spread over the
(batched) chains estimate the posterior mean and per-pixel std. Costs ``steps`` grad V per chain.

After every step the chains are projected onto the box [-m s_k, 1 + m s_k] (m = ``box_margin``,
default 3): an image at level s_k lies there pixel by pixel with probability 0.997, while far
outside it V was never trained, and one large step there can throw a chain to values from which
it needs most of the ladder to return (in ``tests/test_hqs_and_anneal.py`` a prior stiffer
than the step diverges without the box and stays bounded with it).

Units: images (N, C, H, W) in [0, 1]; levels are noise stds on that scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from em_inverse.solvers.hqs import sigma_schedule
from em_inverse.solvers.objective import Objective, diverged


@dataclass
class AnnealResult:
    final: torch.Tensor         # (B, chains, C, H, W) denoised end state of every chain
    mean: torch.Tensor          # (B, C, H, W) mean over chains
    std: torch.Tensor           # (B, C, H, W) spread over chains (0 for a single chain)
    trace: list                 # mean over chains of U at each step, each (B,)
    sigmas: list                # the levels s_k


def run_anneal(objective: Objective, x_init: torch.Tensor, chains: int, *, steps: int,
               levels: int, sigma_start: float, sigma_end: float, step_factor: float,
               box_margin: float | None = 3.0, generator: torch.Generator | None = None,
               progress: Callable[[int, dict], None] | None = None) -> AnnealResult:
    """Sample ``chains`` chains per image from ``x_init`` (B * chains, C, H, W) (rows of the
    same image adjacent); ``steps`` Langevin steps in all, spread evenly over ``levels``;
    ``box_margin`` None: no projection."""
    fidelity, weight = objective.fidelity, objective.prior_weight
    physics = fidelity.physics
    noise_var = fidelity.variance  # per image, or per measured value (Poisson noise)
    sigmas = sigma_schedule(sigma_start, sigma_end, levels)
    per_level = [steps // levels + (1 if k < steps % levels else 0) for k in range(levels)]
    x = x_init + sigmas[0] * _noise(x_init, generator)
    trace, done = [], 0
    for s, count in zip(sigmas, per_level):
        a = step_factor * s * s
        for _ in range(count):
            v, gv = objective.prior_terms(x)
            residual = fidelity.residual(x)
            total = 0.5 * (fidelity.weight * residual**2).flatten(1).sum(1) + weight * v  # U(x)
            data_grad = physics.A_adjoint(residual / (noise_var + s * s))
            x = x - a * (weight * gv + data_grad) + math.sqrt(2 * a) * _noise(x, generator)
            if box_margin is not None:
                x = x.clamp(-box_margin * s, 1 + box_margin * s)
            done += 1
            if not torch.isfinite(total).all():
                raise diverged(f"at annealed Langevin step {done} (level {s:.3g})")
            trace.append(total.detach().view(-1, chains).mean(1))
            if progress is not None:
                progress(done, {"U": float(total.mean()), "sigma": s} if done % 10 == 0 else {})
    _, gv = objective.prior_terms(x)
    x = x - (weight * sigmas[-1] ** 2) * gv
    final = x.detach().view(-1, chains, *x.shape[1:])
    std = final.std(1) if chains > 1 else torch.zeros_like(final[:, 0])
    return AnnealResult(final=final, mean=final.mean(1), std=std, trace=trace, sigmas=sigmas)


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

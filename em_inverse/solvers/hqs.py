"""Annealed half-quadratic splitting (HQS) of U(x) = F(x) + w V(x)/eps.

Splitting x = z with a coupling ||x - z||^2 / (2 s^2) and alternating the two halves gives

    x_k = argmin_x F(x) + ||x - z_{k-1}||^2 / (2 s_k^2)        (data step, exact or by CG)
    z_k = x_k - w s_k^2 grad V(x_k)/eps                        (prior step)

The prior step is one gradient step on w V/eps of size s_k^2. For a V whose gradient is a
noisy-data score (the denoising-score term of training), it is Tweedie's formula: the MMSE
denoiser at noise level s_k, with no free constant (w = 1 is the calibrated value). s_k
decreases geometrically from ``sigma_start`` to ``sigma_end`` (``solve`` raises the first to
the measurement noise and sets the last by its ``end_level`` rule), so early steps use the
coarse, smooth part of the prior (large holes fill from context) and late ones the fine detail.
With one iteration on a denoising problem (x_1 = y, s_1 = sigma_y) the method is exactly Tweedie's
denoiser. Further iterations at levels below sigma_y refine it: x_k is then mostly z_{k-1}, and
each prior step removes part of what the previous one left (a learned score is not an exact
Tweedie denoiser). Each iteration costs one grad V: the same as one MAP iteration.

A denoiser at level s removes noise of RMS about s, so the prior step can be held to an RMS of
at most ``step_cap`` * s per image (a trust region; ``solve`` uses 1.5 by default, ``run_hqs``
alone runs uncapped with None). It acts where x_k is not an image noisy at level s, as the
time-independent grad V assumes: after the first data step of a deblurring, x_1 is nearly
clean, and grad V at its small-noise scale can throw pixels far out of [0, 1], which later
levels may not repair. natural-rgb's defaults on the training crops, Gaussian blur of std 3 px
(a kernel they were not tuned on): 25.05 dB uncapped, 28.12 with a cap of 1.5
(``benchmarks/hqs_prior_step_check.py natural-rgb --kernel gaussian:3 --variants
plain:40,cap1.5:40``), MAP 27.97 (``benchmarks/kernel_robustness_check.py``). At 1.5 it also
scales one or two of the 40 steps of some of the natural priors' tuned deblurring and
super-resolution solves, with the same mean PSNR on the crops, and one to six of every
Fashion-MNIST deblurring and super-resolution solve, within 0.11 dB either way on its
training images (noiseless x2: +0.34; ``benchmarks/step_cap_check.py [fashion-mnist --count
50]``). A step within the cap is left unchanged to the bit.

Units: images (N, C, H, W) in [0, 1]; ``s`` is a noise std on that scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from em_inverse.operators.linear_solve import conjugate_gradient
from em_inverse.solvers.objective import Objective, diverged


@dataclass
class HQSResult:
    x: torch.Tensor             # (N, C, H, W) final estimate (after the last prior step)
    trace: list                 # U(x_k) per iteration, each (N,)
    sigmas: list                # the coupling levels s_k used
    capped: int = 0             # prior steps (per image) that the step cap scaled down


def sigma_schedule(start: float, end: float, iterations: int) -> list[float]:
    """Geometric levels from ``start`` down to ``end`` (just ``[end]`` for one iteration)."""
    if iterations == 1:
        return [float(end)]
    return [float(s) for s in np.geomspace(max(start, end), end, iterations)]


def run_hqs(objective: Objective, x_init: torch.Tensor, *, iterations: int,
            sigma_start: float, sigma_end: float, cg_steps: int = 20,
            step_cap: float | None = None,
            progress: Callable[[int, dict], None] | None = None) -> HQSResult:
    """Annealed HQS from ``x_init`` (N, C, H, W); returns the final prior-step output z_K."""
    fidelity, weight = objective.fidelity, objective.prior_weight
    sigmas = sigma_schedule(sigma_start, sigma_end, iterations)
    x = z = x_init
    trace = []
    capped = torch.zeros((), dtype=torch.long, device=x_init.device)
    for k, s in enumerate(sigmas, start=1):
        x = data_prox(fidelity, z, 1.0 / s**2, x, cg_steps)
        v, gv = objective.prior_terms(x)
        total = fidelity.value(x) + weight * v
        if not torch.isfinite(total).all():
            raise diverged(f"at HQS iteration {k}")
        trace.append(total.detach())
        step = (weight * s * s) * gv
        if step_cap is not None:
            step, scaled = cap_step(step, step_cap * s)
            capped += scaled
        z = x - step
        if progress is not None:
            progress(k, {"U": float(total.mean()), "sigma": s} if k % 10 == 0 else {})
    return HQSResult(x=z.detach(), trace=trace, sigmas=sigmas, capped=int(capped))


def cap_step(step: torch.Tensor, most: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``step`` (N, C, H, W) with each image's RMS scaled down to at most ``most``, and how
    many images were scaled (a 0-dim tensor, so a GPU run is not synchronised here). An image
    within the bound is multiplied by exactly 1: its step is unchanged to the bit."""
    rms = step.flatten(1).pow(2).mean(1).sqrt()
    scale = torch.clamp(most / rms.clamp_min(torch.finfo(step.dtype).tiny), max=1.0)
    return step * scale.view(-1, *[1] * (step.dim() - 1)), (scale < 1).sum()


def data_prox(fidelity, z: torch.Tensor, rho: float, x_start: torch.Tensor,
              cg_steps: int) -> torch.Tensor:
    """argmin_x ||A x - y||^2 / (2 sigma^2) + rho ||x - z||^2 / 2, per row.

    The normal equations (A^T A / sigma^2 + rho) x = A^T y / sigma^2 + rho z are solved in
    closed form when A^T A is diagonal (inpainting, denoising), else by conjugate gradients
    warm-started at ``x_start``.
    """
    physics, w = fidelity.physics, fidelity.weight
    rhs = physics.A_adjoint(w * fidelity.y) + rho * z
    diagonal = fidelity.curvature_diagonal()  # diag(A^T A)/sigma^2 where A^T A is diagonal
    if diagonal is not None:
        return rhs / (diagonal + rho)
    return conjugate_gradient(lambda v: physics.A_adjoint(w * physics.A(v)) + rho * v,
                              rhs, x_start, cg_steps, rtol=1e-5)

"""The posterior energy U(x) = F(x) + w * V(x)/eps [+ W(x)] that every solver descends or samples.

F is the Gaussian data fidelity, V/eps the prior's energy (``prior.value_and_grad``: one
forward and one backward per call, never recomputed), w the prior weight and W an optional
interaction energy between chains. The object counts evaluations, times the prior, and
implements the divergence guard's error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from em_inverse.errors import UserError


class SolverError(UserError):
    """The solver could not proceed (e.g. non-finite energy even after shrinking the step)."""


@dataclass
class Evaluation:
    """U and its parts at a batch of images x (N, C, H, W); energies have shape (N,)."""

    total: torch.Tensor
    grad: torch.Tensor
    prior: torch.Tensor        # V/eps
    prior_grad: torch.Tensor   # grad V/eps

    def finite(self) -> torch.Tensor:
        """(N,) bool: energy finite (the gradient is checked lazily by the caller's update)."""
        return torch.isfinite(self.total)


class Objective:
    """U(x) = F(x) + prior_weight * V(x)/eps + W(x), batched over N = images x chains.

    Args:
        prior: an ``EnergyPrior`` (images in [0, 1]).
        fidelity: a ``GaussianFidelity`` whose y already has N rows.
        prior_weight: w, multiplies V/eps.
        interaction: optional ``Interaction`` (energy between chains of the same image).
        profile: synchronise CUDA around the prior so ``prior_time`` is exact (slower).
        chunk_pixels: on the CPU, evaluate the prior on chunks of at most this many pixels
            (whole images; default 4 x 256^2): large batches fall out of the caches and cost
            up to 3x more per image. None: one call for the whole batch (the CUDA default).
    """

    CPU_CHUNK_PIXELS = 4 * 256 * 256

    def __init__(self, prior, fidelity, prior_weight: float = 1.0, interaction=None,
                 profile: bool = False, chunk_pixels: int | None = CPU_CHUNK_PIXELS):
        self.prior = prior
        self.chunk_pixels = chunk_pixels
        self.fidelity = fidelity
        self.prior_weight = float(prior_weight)
        self.interaction = interaction
        self.profile = profile
        self.evaluations = 0
        self.prior_time = 0.0

    def __call__(self, x: torch.Tensor) -> Evaluation:
        v, gv = self.prior_terms(x)
        f, gf = self.fidelity.value_and_grad(x)
        total = f + self.prior_weight * v
        grad = gf + self.prior_weight * gv
        if self.interaction is not None:
            w, gw = self.interaction.value_and_grad(x)
            total = total + w
            grad = grad + gw
        return Evaluation(total=total.detach(), grad=grad.detach(), prior=v, prior_grad=gv)

    def prior_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V/eps (N,), grad V/eps) at x, without the weight w; timed and counted as one
        evaluation (the only expensive part of U)."""
        sync = self.profile and x.is_cuda
        if sync:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        v, gv = self._prior(x)
        if sync:
            torch.cuda.synchronize(x.device)
        self.prior_time += time.perf_counter() - start
        self.evaluations += 1
        return v, gv

    def _prior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prior.value_and_grad on the whole batch, or on chunks of whole images on the CPU."""
        per_image = x[0].numel()
        if x.is_cuda or not self.chunk_pixels or x.shape[0] * per_image <= self.chunk_pixels:
            return self.prior.value_and_grad(x)
        size = max(1, self.chunk_pixels // per_image)
        parts = [self.prior.value_and_grad(part) for part in x.split(size)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def diverged(where: str, step: float | None = None) -> SolverError:
    detail = f" even with step size {step:.3g}" if step is not None else ""
    return SolverError(f"solver diverged: non-finite energy {where}{detail}; try fewer "
                       f"--steps with a smaller step size, a larger --noise, or check the prior")


def hessian_norm(grad: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 at_grad: torch.Tensor,
                 generator: torch.Generator | None = None, iterations: int = 10,
                 delta: float = 1e-3, preconditioner: torch.Tensor | None = None) -> torch.Tensor:
    """Largest |eigenvalue| of the Hessian of an energy at x, per batch row (N,), by power
    iteration on finite differences of its gradient ``grad`` (x -> grad, one evaluation per
    iteration; ``at_grad`` = grad(x)). This is the local Lipschitz constant of the gradient that
    sets a Langevin step size. With a ``preconditioner`` P (positive, broadcastable to x) it is
    that of P^1/2 H P^1/2: the bound for steps scaled per pixel by P."""
    n = x.shape[0]
    root = None if preconditioner is None else preconditioner.expand_as(x).sqrt()
    v = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    v = v / v.flatten(1).norm(dim=1).view(n, *[1] * (x.ndim - 1))
    estimate = torch.ones(n, device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        direction = v if root is None else root * v
        hv = (grad(x + delta * direction) - at_grad) / delta
        if root is not None:
            hv = root * hv
        norms = hv.flatten(1).norm(dim=1)
        if not torch.isfinite(norms).all():
            break
        estimate = norms
        v = hv / norms.clamp_min(1e-30).view(n, *[1] * (x.ndim - 1))
    return estimate.clamp_min(1e-8)

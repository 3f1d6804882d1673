"""The Gaussian data-fidelity energy F(x) = ||A x - y||^2 / (2 sigma^2), per batch element.

Its gradient A^T (A x - y) / sigma^2 costs one A and one A^T: cheap next to grad V. With a
variance per pixel (Poisson noise, ``operators.shot_noise``), F = sum_i (A x - y)_i^2 / (2 v_i).
"""
from __future__ import annotations

import torch
from deepinv.physics import Denoising, Inpainting


class GaussianFidelity:
    """F(x) = ||A x - y||^2 / (2 sigma^2) for a deepinv ``LinearPhysics`` A.

    Args:
        physics: the forward operator A.
        y: measurements (N, ...) with the same batch size N as the images x (N, C, H, W) it is
            evaluated on (solvers repeat y once per chain beforehand).
        sigma: noise std on the [0, 1] scale: a float or a (N,) tensor (one per image).
        variance: optional noise variance per measured value, shaped like y: it then weighs
            the data term in place of sigma^2 (sigma stays the images' overall level).
    """

    def __init__(self, physics, y: torch.Tensor, sigma: float | torch.Tensor,
                 variance: torch.Tensor | None = None):
        self.physics = physics
        self.y = y
        sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(y.shape[0])
        if sigma.shape != (y.shape[0],):
            raise ValueError(f"sigma must be a float or have shape ({y.shape[0]},), "
                             f"got {tuple(sigma.shape)}")
        self.sigma = sigma
        self.per_value = variance is not None
        if not self.per_value:
            variance = sigma.view(-1, *([1] * (y.ndim - 1))) ** 2  # (N, 1, 1, 1)
        elif variance.shape != y.shape:
            raise ValueError(f"variance must have y's shape {tuple(y.shape)}, got "
                             f"{tuple(variance.shape)}")
        self.variance = variance
        self.weight = 1.0 / variance

    def smallest_variance(self) -> float:
        """The smallest noise variance of any measured value (the stiffest data term)."""
        if self.per_value:
            return float(self.variance.min())
        return float(self.sigma.min()) ** 2

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x) - self.y

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """F(x), shape (N,)."""
        r = self.residual(x)
        return 0.5 * (self.weight * r * r).flatten(1).sum(1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """grad F(x) = A^T (A x - y) / sigma^2, shape of x."""
        return self.physics.A_adjoint(self.weight * self.residual(x))

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F(x) of shape (N,), grad F(x)) sharing one forward A."""
        r = self.residual(x)
        wr = self.weight * r
        return 0.5 * (wr * r).flatten(1).sum(1), self.physics.A_adjoint(wr)

    def curvature_diagonal(self) -> torch.Tensor | None:
        """diag(A^T A) / sigma^2 (or / v), the per-pixel curvature of F, broadcastable to x
        (N, C, H, W), where A^T A is diagonal (inpainting: mask / sigma^2, denoising:
        1 / sigma^2); else None."""
        if isinstance(self.physics, Inpainting):
            return self.physics.mask * self.physics.mask * self.weight
        if isinstance(self.physics, Denoising):
            return self.weight
        return None

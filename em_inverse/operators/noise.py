"""Gaussian measurement noise on the [0, 1] scale: the deepinv noise model, reading sigma back
from a physics, and estimating sigma from a measurement when the user does not give it."""
from __future__ import annotations

import torch
from deepinv.physics import GaussianNoise

from em_inverse.errors import UserError

#: Smallest noise level used for the data term (1/255): an 8-bit image carries at least its
#: quantisation error, and a smaller sigma makes the MAP problem needlessly ill-conditioned.
MIN_SIGMA = 1.0 / 255.0


def gaussian_noise(sigma: float) -> GaussianNoise:
    """deepinv ``GaussianNoise`` with standard deviation ``sigma`` (>= 0, [0, 1] scale)."""
    return GaussianNoise(sigma=check_sigma(sigma))


def check_sigma(sigma: float) -> float:
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise UserError(f"noise level must be a number, got {sigma!r}") from None
    if not sigma >= 0 or sigma == float("inf"):
        raise UserError(f"noise level must be a finite number >= 0 on the [0, 1] scale, "
                        f"got {sigma:g}")
    return sigma


def noise_sigma(physics) -> float | None:
    """The Gaussian noise level of a deepinv physics, or ``None`` if it has none / unknown."""
    model = getattr(physics, "noise_model", None)
    if isinstance(model, GaussianNoise):
        sigma = model.sigma
        return float(sigma.max()) if torch.is_tensor(sigma) else float(sigma)
    return None


def estimate_noise_sigma(y: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Estimate white Gaussian noise std per image from a measurement y (B, C, H, W).

    Robust wavelet estimator (Donoho): the median absolute value of the finest diagonal Haar
    coefficients (a - b - c + d) / 2 over 2x2 windows, divided by 0.6745. With a keep mask
    (1 = observed) only windows whose four pixels are observed count, so zero-filled holes of
    an inpainting measurement do not bias it. Returns (B,) on y's device, at least ``MIN_SIGMA``.
    """
    if y.shape[-1] < 2 or y.shape[-2] < 2:
        return torch.full((y.shape[0],), MIN_SIGMA, device=y.device)
    diag = (y[..., :-1, :-1] - y[..., :-1, 1:] - y[..., 1:, :-1] + y[..., 1:, 1:]) / 2
    valid = torch.ones_like(diag, dtype=torch.bool)
    if keep is not None:
        k = (keep > 0).expand_as(y)
        valid = k[..., :-1, :-1] & k[..., :-1, 1:] & k[..., 1:, :-1] & k[..., 1:, 1:]
    sigmas = []
    for coeffs, ok in zip(diag.flatten(1), valid.flatten(1)):
        values = coeffs[ok].abs()
        sigmas.append(values.median() / 0.6745 if values.numel() >= 16
                      else torch.tensor(MIN_SIGMA, device=y.device))
    return torch.stack(sigmas).clamp_min(MIN_SIGMA)

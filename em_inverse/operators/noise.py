"""Gaussian measurement noise on the [0, 1] scale: the deepinv noise model and reading sigma back
from a physics (estimating it from a measurement: ``noise_estimation``)."""
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

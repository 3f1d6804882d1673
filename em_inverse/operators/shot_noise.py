"""Poisson (shot) noise: low-light measurements y = Poisson(P A x) / P + read noise.

A sensor that collects P photons at intensity 1 (``photons``; deepinv's ``gain`` is 1/P) sees
at a pixel of intensity I = (A x)_i a count with mean P I and variance P I: on the [0, 1] scale,
noise of variance I / P, larger where the image is brighter. Read noise of std sigma adds
sigma^2 (deepinv's ``PoissonGaussianNoise``).

The solvers keep their quadratic data term and give it one variance per pixel,

    F(x) = sum_i (A x - y)_i^2 / (2 v_i),   v_i = sigma^2 + max(I_i, 1/P) / P,

the Gaussian approximation of the Poisson likelihood, exact in the limit of many photons (at
10 photons and more the count's skew is small), which keeps HQS's data step and the samplers'
curvature in closed form. The intensity I is read from y averaged over 3x3 pixels (observed
pixels only): a pixel weighted by its own noisy value would trust its downward fluctuations
more than its upward ones. The intensity counts at least one photon's worth, 1/P: a dark patch
that caught no photon is not known exactly (no count is consistent with a mean of about one).
Variances are at least ``MIN_SIGMA`` ^ 2, like every noise level.

Units: images in [0, 1]; ``photons`` per unit intensity (> 0); sigma a std on that scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from deepinv.physics import PoissonGaussianNoise, PoissonNoise

from em_inverse.errors import UserError
from em_inverse.operators.noise import MIN_SIGMA, check_sigma

#: The most photons per unit intensity accepted (far beyond any sensor's full well).
MAX_PHOTONS = 1e9


def check_photons(photons, name: str = "photons") -> float:
    """``photons`` as a float in (0, ``MAX_PHOTONS``], else a ``UserError`` naming it ``name``
    (the CLI's ``--photons``)."""
    try:
        value = float(photons) if not isinstance(photons, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None:
        raise UserError(f"{name} must be a number, got {photons!r}")
    if not 0 < value <= MAX_PHOTONS:
        raise UserError(f"{name} (the mean photon count of a white pixel) must lie in "
                        f"(0, {MAX_PHOTONS:g}], got {value:g}")
    return value


def poisson_noise(photons: float, sigma: float = 0.0) -> PoissonGaussianNoise:
    """deepinv ``PoissonGaussianNoise``: shot noise of ``photons`` per unit intensity (gain
    1/photons) plus Gaussian read noise of std ``sigma``."""
    return PoissonGaussianNoise(gain=1.0 / check_photons(photons), sigma=check_sigma(sigma))


def noise_photons(physics) -> float | None:
    """Photons per unit intensity (1 / gain) of a physics' Poisson noise model; ``None`` for any
    other noise. deepinv's ``PoissonNoise(normalize=False)``, whose y counts photons rather
    than measuring intensity, and per-image gains are ``UserError`` s."""
    model = getattr(physics, "noise_model", None)
    if not isinstance(model, (PoissonNoise, PoissonGaussianNoise)):
        return None
    if isinstance(model, PoissonNoise) and not model.normalize:
        raise UserError("PoissonNoise(normalize=False) gives photon counts, not intensities in "
                        "[0, 1]: use normalize=True")
    gain = torch.as_tensor(model.gain)
    if gain.numel() != 1:
        raise UserError("a Poisson noise model with one gain per image is not supported: "
                        "solve such images separately")
    return check_photons(1.0 / float(gain))


def read_noise_sigma(physics) -> float:
    """The Gaussian read-noise std of a physics' Poisson noise model (0 for ``PoissonNoise``)."""
    sigma = getattr(physics.noise_model, "sigma", 0.0)
    sigma = torch.as_tensor(sigma)
    if sigma.numel() != 1:
        raise UserError("a Poisson noise model with one read noise per image is not supported")
    return check_sigma(float(sigma))


def pixel_variance(y: torch.Tensor, photons: float, sigma: float = 0.0,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel noise variance of a Poisson-Gaussian measurement y, shaped like y: sigma^2 +
    max(I, 1 / photons) / photons, I the 3x3 average of y over observed pixels (``keep`` > 0,
    broadcastable to y; images (B, C, h, w) only, other measurements use y itself), at least
    ``MIN_SIGMA`` ^ 2."""
    intensity = y
    if y.ndim == 4:
        seen = torch.ones_like(y) if keep is None else (keep > 0).to(y.dtype).expand_as(y)
        total = _box3(y * seen)
        count = _box3(seen)
        intensity = torch.where(count > 0, total / count.clamp_min(1e-12), torch.zeros_like(y))
    variance = sigma * sigma + intensity.clamp_min(1.0 / photons) / photons
    return variance.clamp_min(MIN_SIGMA**2)


def effective_sigma(variance: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """One noise std per image (B,): the root mean of ``variance`` (B, ...) over the observed
    pixels, the level that picks tuned settings and bounds HQS's schedule."""
    if keep is None:
        return variance.flatten(1).mean(1).sqrt()
    seen = (keep > 0).to(variance.dtype).expand_as(variance).flatten(1)
    return ((variance.flatten(1) * seen).sum(1) / seen.sum(1).clamp_min(1)).sqrt()


def draw_shot_noise(clean: torch.Tensor, photons: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson(photons * clean) / photons, drawn from ``generator`` (on its device), returned
    on clean's device; negative intensities (a bicubic filter's undershoot) count as 0."""
    device = generator.device if generator is not None else clean.device
    rate = (clean.clamp_min(0) * photons).to(device)
    counts = torch.poisson(rate, generator=generator)
    return (counts / photons).to(clean.device, clean.dtype)


def _box3(image: torch.Tensor) -> torch.Tensor:
    """3x3 sum over each pixel's neighbourhood (zero outside the image), shape kept."""
    channels = image.shape[1]
    ones = torch.ones(channels, 1, 3, 3, dtype=image.dtype, device=image.device)
    return F.conv2d(image, ones, padding=1, groups=channels)


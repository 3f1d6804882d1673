"""Estimating the white Gaussian noise level of a measurement when the user does not give it.

``estimate_noise_sigma`` (the default, what ``solve`` uses) looks only at the flattest parts of
the image. Natural images concentrate their variance in few directions of patch space, noise
spreads evenly over all of them; but texture reaches every direction too, so an estimate from
all patches (or from the finest wavelet band, ``wavelet_noise_sigma``) reads texture as noise.
Low-resolution measurements are dense in texture: on the tuner's 128-px training crops, x2
downsampled without noise, the wavelet estimate gave 0.004-0.020 (true: 0.001, the 8-bit
rounding), and at noise 0.01 it gave 0.012-0.026, which cost natural-gray's default
super-resolution 0.31 dB against the true level (this estimator: 0.06 dB;
``python benchmarks/noise_estimate_check.py natural-gray --solve``).

The estimator, after Liu, Tanaka & Okutomi (2013), iterates:

1. an estimate s^2 from the eigenvalues of the covariance of the selected d x d patches: the
   largest tail of the ascending eigenvalues whose mean is not above its median (Chen, Zhu &
   Heng 2015: noise eigenvalues cluster symmetrically; image eigenvalues sit above them);
2. select the weak-texture patches: those whose summed squared horizontal and vertical
   neighbour differences are below the 99% quantile that pure noise of level s would give
   (a Gamma law with the same mean: d^2 / 2 degrees of freedom);

from all patches, until the estimate settles. Patches with a clipped pixel (0 or 1: a
saturated region carries no noise), with a mean within ``CLIP_DISTANCE`` noise stds of 0 or 1,
or, with a ``keep`` mask, with a missing pixel are left out; each channel is estimated on its
own and the image's level is their root mean square. Where too few patches remain (small
images, scattered missing pixels) it falls back to the wavelet estimate. Units: [0, 1] scale
standard deviations; images (B, C, H, W).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.stats import gamma

from em_inverse.operators.noise import MIN_SIGMA

#: Patch side d (the method's usual 7: 49 pixels per channel).
PATCH = 7
#: At most this many patches enter the covariance (a stride thins larger images).
MAX_PATCHES = 40_000
#: Quantile of the pure-noise texture strength below which a patch counts as weak texture.
WEAK_TEXTURE_QUANTILE = 0.99
ITERATIONS = 10
#: Pixels within half a gray level of 0 or 1 count as clipped.
CLIP_MARGIN = 0.5 / 255.0
#: Patches whose mean lies within this many noise stds of 0 or 1 are left out too: their
#: unclipped pixels are a biased draw (the noise that would have crossed the bound is missing).
CLIP_DISTANCE = 3.0


def estimate_noise_sigma(y: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Noise std per image (B,) of a measurement y (B, C, H, W) in [0, 1], from its
    weak-texture patches (see the module); ``keep`` (1 = observed pixel, broadcastable to y)
    leaves the missing pixels out. At least ``MIN_SIGMA``, on y's device."""
    observed = [None] * y.shape[0] if keep is None else (keep > 0).expand_as(y)
    sigmas, fallback = [], None
    for i, (image, seen) in enumerate(zip(y, observed)):
        variances = [_weak_texture_variance(image[c], None if seen is None else seen[c])
                     for c in range(image.shape[0])]
        if any(v is None for v in variances):
            fallback = wavelet_noise_sigma(y, keep) if fallback is None else fallback
            sigmas.append(float(fallback[i]))
        else:
            sigmas.append(math.sqrt(sum(variances) / len(variances)))
    return torch.tensor(sigmas, dtype=y.dtype, device=y.device).clamp_min(MIN_SIGMA)


def wavelet_noise_sigma(y: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Donoho's robust wavelet estimate per image (B,): the median absolute value of the
    finest diagonal Haar coefficients (a - b - c + d) / 2 over 2x2 windows, divided by 0.6745.
    With a ``keep`` mask only windows whose four pixels are observed count. Fast and fine on
    smooth images, but texture reads as noise (see the module). At least ``MIN_SIGMA``."""
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


def _weak_texture_variance(channel: torch.Tensor, keep: torch.Tensor | None) -> float | None:
    """The iteration of the module for one channel (H, W) of an image: its noise variance, or
    None if too few patches are usable."""
    height, width = channel.shape
    if min(height, width) < PATCH:
        return None
    count = (height - PATCH + 1) * (width - PATCH + 1)
    stride = max(1, math.ceil(math.sqrt(count / MAX_PATCHES)))
    x = channel.detach().double()[None, None]
    patches = F.unfold(x, PATCH, stride=stride)[0]  # (d^2, L)
    usable = ~F.unfold(((x < CLIP_MARGIN) | (x > 1 - CLIP_MARGIN)).double(), PATCH,
                       stride=stride)[0].bool().any(0)
    if keep is not None:
        usable &= F.unfold(keep[None, None].double(), PATCH, stride=stride)[0].bool().all(0)
    patches = patches[:, usable]
    dims = patches.shape[0]
    if patches.shape[1] < 2 * dims:
        return None
    grid = patches.view(PATCH, PATCH, -1)
    texture = (((grid[:, 1:] - grid[:, :-1]) ** 2).sum((0, 1)) +
               ((grid[1:] - grid[:-1]) ** 2).sum((0, 1)))
    # Pure noise of variance s^2: each of the 2 d (d - 1) differences has variance 2 s^2, so
    # the texture has mean 4 d (d - 1) s^2; the Gamma law with d^2 / 2 degrees of freedom and
    # that mean gives the threshold (in units of s^2).
    mean_texture = 4 * PATCH * (PATCH - 1)
    shape = PATCH * PATCH / 2
    threshold = gamma.ppf(WEAK_TEXTURE_QUANTILE, a=shape, scale=mean_texture / shape)
    brightness = patches.mean(0)
    variance = _tail_variance(patches)
    for _ in range(ITERATIONS):
        margin = CLIP_DISTANCE * math.sqrt(variance)
        weak = ((texture < variance * threshold) &
                (brightness > margin) & (brightness < 1 - margin))
        if int(weak.sum()) < 2 * dims:
            break
        previous, variance = variance, _tail_variance(patches[:, weak])
        if abs(variance - previous) <= 1e-3 * previous:
            break
    return max(variance, 0.0)


def _tail_variance(patches: torch.Tensor) -> float:
    """Noise variance from patch vectors (D, L): the mean of the largest tail of the ascending
    covariance eigenvalues whose mean is not above its median (Chen, Zhu & Heng 2015)."""
    centred = patches - patches.mean(1, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(centred @ centred.T / centred.shape[1]).clamp_min(0)
    for start in range(eigenvalues.numel(), 0, -1):
        tail = eigenvalues[:start]
        mean = tail.mean()
        if int((tail > mean).sum()) >= int((tail < mean).sum()):
            return float(mean)
    return float(eigenvalues[0])

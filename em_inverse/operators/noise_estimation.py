"""Estimating the white Gaussian noise level of a measurement when the user does not give it.

``estimate_noise_sigma`` (the default, what ``solve`` uses) looks only at the flattest parts of
the image. Natural images concentrate their variance in few directions of patch space, noise
spreads evenly over all of them; but texture reaches every direction too, so an estimate from
all patches (or from the finest wavelet band, ``wavelet_noise_sigma``) reads texture as noise.
Low-resolution measurements are dense in texture: on the tuner's 128-px training crops, x2
downsampled without noise, the wavelet estimate gave 0.004-0.020 (true: 0.001, the 8-bit
rounding), and at noise 0.01 it gave 0.012-0.026, which cost natural-gray's default
super-resolution 0.33 dB against the true level (this estimator: 0.07 dB;
``python benchmarks/noise_estimate_check.py natural-gray --solve --tasks superres-x2``).

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
own and the image's level is their root mean square.

Where too few full patches remain (scattered missing pixels leave almost no 7 x 7 patch whole;
small images) the same idea runs on 2 x 2 windows (``_weak_texture_haar_variance``). A window's
orthonormal Haar coefficients (a + b - c - d) / 2, (a - b + c - d) / 2 and (a - b - c + d) / 2
each carry noise of variance s^2, independently for white Gaussian noise; the first two (its
vertical and horizontal gradients) measure texture, and the diagonal one, among the windows
whose gradients pure noise of level s would explain, estimates s (the median of its absolute
value / 0.6745, Donoho's rule). Selecting on the gradients leaves the diagonal's noise law as it
is, so the estimate is unbiased where flat windows exist, and texture that the gradients see is
left out. Where no window is flat, texture near the sampling rate can hide in the diagonal
alone, so the estimate is capped by Donoho's over every window (which texture inflates too; an
image with fewer than ``MIN_WINDOWS`` whole windows gets that plain wavelet estimate). On the
tuner's gray training crops (8-bit) with 50% of the pixels missing at random it reads 0.0063
without noise and 0.0218 at 0.02, where the plain wavelet estimate read 0.0086 and 0.0242;
natural-gray's default inpainting then loses 0.17 and 0.18 dB to the true level instead of 0.19
and 0.29 (``python benchmarks/noise_estimate_check.py natural-gray --solve --tasks inpaint-50``).
Units: [0, 1] scale standard deviations; images (B, C, H, W).
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
#: 2 x 2 windows: pure noise of level s gives a window gradient energy LH^2 + HL^2 of
#: s^2 chi^2_2, whose 99% quantile is -2 ln(0.01) s^2; at least MIN_WINDOWS must be usable.
WEAK_GRADIENT = -2.0 * math.log(1.0 - WEAK_TEXTURE_QUANTILE)
MIN_WINDOWS = 64


def estimate_noise_sigma(y: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Noise std per image (B,) of a measurement y (B, C, H, W) in [0, 1], from its
    weak-texture patches (see the module); ``keep`` (1 = observed pixel, broadcastable to y)
    leaves the missing pixels out. At least ``MIN_SIGMA``, on y's device."""
    observed = [None] * y.shape[0] if keep is None else (keep > 0).expand_as(y)
    sigmas = []
    for i, (image, seen) in enumerate(zip(y, observed)):
        for estimator in (_weak_texture_variance, _weak_texture_haar_variance):
            variances = [estimator(image[c], None if seen is None else seen[c])
                         for c in range(image.shape[0])]
            if all(v is not None for v in variances):
                sigmas.append(math.sqrt(sum(variances) / len(variances)))
                break
        else:  # a tiny image
            sigmas.append(float(wavelet_noise_sigma(y[i:i + 1],
                                                    None if keep is None else observed[i])))
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


def _weak_texture_haar_variance(channel: torch.Tensor, keep: torch.Tensor | None
                                ) -> float | None:
    """The 2 x 2 window estimate of the module for one channel (H, W): its noise variance, or
    None if fewer than ``MIN_WINDOWS`` windows are whole (observed, unclipped)."""
    x = channel.detach().double()
    a, b, c, d = x[:-1, :-1], x[:-1, 1:], x[1:, :-1], x[1:, 1:]
    usable = torch.ones_like(a, dtype=torch.bool)
    for corner in (a, b, c, d):
        usable &= (corner >= CLIP_MARGIN) & (corner <= 1 - CLIP_MARGIN)
    if keep is not None:
        k = keep > 0
        usable &= k[:-1, :-1] & k[:-1, 1:] & k[1:, :-1] & k[1:, 1:]
    if int(usable.sum()) < MIN_WINDOWS:
        return None
    brightness = ((a + b + c + d) / 4)[usable]
    gradient = (((a + b - c - d) / 2) ** 2 + ((a - b + c - d) / 2) ** 2)[usable]
    diagonal = ((a - b - c + d) / 2)[usable].abs()
    variance = plain = float(diagonal.median() / 0.6745) ** 2  # Donoho's, over every window
    for _ in range(ITERATIONS):
        margin = CLIP_DISTANCE * math.sqrt(variance)
        weak = ((gradient < variance * WEAK_GRADIENT) &
                (brightness > margin) & (brightness < 1 - margin))
        if int(weak.sum()) < MIN_WINDOWS:
            break
        previous, variance = variance, float(diagonal[weak].median() / 0.6745) ** 2
        if abs(variance - previous) <= 1e-3 * previous:
            break
    return min(variance, plain)


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

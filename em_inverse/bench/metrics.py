"""Image quality metrics on a common region: PSNR (data range 1) and SSIM.

Both ignore a ``border`` of pixels on each side (16 by default for natural images, where
boundary handling of blur and super-resolution differs between methods; 0 for 28x28
Fashion-MNIST). Inputs are tensors (1, C, H, W) or (C, H, W) in [0, 1]; estimates are clipped
to [0, 1] before measuring, as a user would when saving the image.
"""
from __future__ import annotations

import math

import numpy as np
import torch

DEFAULT_BORDER = 16


def _region(x: torch.Tensor, border: int) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> float64 array (H', W', C) without the border."""
    x = x.detach().to("cpu", torch.float64)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"metrics take one image at a time, got batch {x.shape[0]}")
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"expected (1, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if border and (2 * border >= h or 2 * border >= w):
        raise ValueError(f"border {border} leaves nothing of a {h}x{w} image")
    if border:
        x = x[:, border:h - border, border:w - border]
    return x.permute(1, 2, 0).numpy()


def psnr(estimate: torch.Tensor, truth: torch.Tensor, border: int = DEFAULT_BORDER) -> float:
    """Peak signal-to-noise ratio in dB, data range 1: 10 log10(1 / MSE) over the region."""
    a = np.clip(_region(estimate, border), 0.0, 1.0)
    b = _region(truth, border)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: estimate {a.shape} vs truth {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def mean_square(x: torch.Tensor, border: int = DEFAULT_BORDER) -> float:
    """Mean of x^2 over the metric region, unclipped (e.g. of a per-pixel std map: the mean
    variance)."""
    return float(np.mean(_region(x, border) ** 2))


def ssim(estimate: torch.Tensor, truth: torch.Tensor, border: int = DEFAULT_BORDER) -> float:
    """Structural similarity (scikit-image defaults, 7x7 window, data range 1) over the region.

    Colour images use ``channel_axis`` (mean of per-channel SSIM). Images smaller than the 7x7
    window use the largest odd window that fits.
    """
    from skimage.metrics import structural_similarity

    a = np.clip(_region(estimate, border), 0.0, 1.0)
    b = _region(truth, border)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: estimate {a.shape} vs truth {b.shape}")
    win = min(7, *(s - (1 - s % 2) for s in a.shape[:2]))
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2, win_size=win))

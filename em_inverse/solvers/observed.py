"""Noise-free inpainting: an observed pixel is known exactly, so ``solve`` returns it as measured.

The solvers fit every pixel to a data term whose noise std is at least ``MIN_SIGMA`` (1/255, the
conditioning floor), and HQS ends on a prior step, so without this an observed pixel comes back a
little changed. When the noise level is declared to be 0 (``sigma=0``, or an operator whose
Gaussian noise model has sigma 0; never an estimated level), the posterior given y puts all its
mass on y at the observed pixels: the estimate and every sample take them from y and the
posterior std there is 0. On the tuning crops of the training images this gains 0.00 to 0.15 dB
per crop, never less (``python benchmarks/observed_pixels_check.py PRIOR``; the option
``keep_observed=False`` turns it off, as an ablation).
"""
from __future__ import annotations

import torch
from deepinv.physics import Inpainting

from em_inverse.solvers.measurement import declared_noise


def noise_free_observed(operator, sigma: float | None) -> torch.Tensor | None:
    """The observed pixels of a noise-free inpainting, a bool tensor broadcastable to the
    images (B, C, H, W); ``None`` for any other operator, or when the noise level is not
    declared 0 (``sigma``: the caller's ``sigma`` option, else the operator's noise model;
    ``measurement.declared_noise``)."""
    if not isinstance(operator, Inpainting):
        return None
    declared = declared_noise(operator, sigma)
    if declared is None or declared[0] > 0:
        return None
    return operator.mask > 0.5


def keep_observed(observed: torch.Tensor, y: torch.Tensor, estimate: torch.Tensor,
                  std: torch.Tensor | None, samples: torch.Tensor | None):
    """(estimate, std, samples) with the ``observed`` pixels set to the measurement y
    (B, C, H, W) and their std to 0. ``samples``: (B, S, C, H, W) or None."""
    observed = observed.to(y.device)
    estimate = torch.where(observed, y, estimate)
    if std is not None:
        std = std.masked_fill(observed, 0.0)
    if samples is not None:
        samples = torch.where(observed.unsqueeze(1), y.unsqueeze(1), samples)
    return estimate, std, samples

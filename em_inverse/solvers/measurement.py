"""What ``solve`` reads from a measurement before solving: the tensor itself (``as_measurement``),
the shape of the images behind it (``image_shape_of``) and its noise level (``noise_level``).
Images are (B, C, H, W) in [0, 1] units; noise stds are on that scale.
"""
from __future__ import annotations

import numpy as np
import torch
from deepinv.physics import Inpainting

from em_inverse.errors import UserError
from em_inverse.operators.noise import MIN_SIGMA, noise_sigma
from em_inverse.operators.noise_estimation import estimate_noise_sigma
from em_inverse.operators.shot_noise import (effective_sigma, noise_photons, pixel_variance,
                                             read_noise_sigma)


def noise_level(y, operator, sigma: float | None = None) -> tuple[torch.Tensor, str]:
    """Per-image noise std (B,) of a measurement y (B, C, H, W) in [0, 1], at least
    ``MIN_SIGMA``, and where it came from: ``given`` (``sigma``), ``operator`` (its Gaussian
    noise model), ``poisson`` (its Poisson noise model: the root mean of the variance per
    value over the observed pixels) or ``estimated`` (``estimate_noise_sigma``, from y's
    observed pixels). ``noise_model`` also returns the variance per value."""
    return noise_model(y, operator, sigma)[:2]


def noise_model(y, operator, sigma: float | None = None
                ) -> tuple[torch.Tensor, str, torch.Tensor | None]:
    """``noise_level``'s (std, source), and the noise variance of every value of y (shaped
    like y) when the operator's noise model is Poisson
    (``operators.shot_noise.pixel_variance``), else ``None``: one level per image. A given
    ``sigma`` overrides the model (one Gaussian level)."""
    y = as_measurement(y, warn_range=False)  # solve has read (and warned about) it already
    keep = operator.mask.to(y.device) if isinstance(operator, Inpainting) else None
    photons = None if sigma is not None else noise_photons(operator)
    if photons is not None:
        variance = pixel_variance(y, photons, read_noise_sigma(operator), keep)
        return effective_sigma(variance, keep).clamp_min(MIN_SIGMA), "poisson", variance
    declared = declared_noise(operator, sigma)
    if declared is None:
        if y.ndim != 4:
            raise UserError(f"the noise level of a measurement that is not an image (shape "
                            f"{tuple(y.shape)}) cannot be estimated: give sigma, or an operator "
                            f"with a Gaussian noise model")
        return estimate_noise_sigma(y, keep), "estimated", None
    value, source = declared
    level = torch.full((y.shape[0],), max(value, MIN_SIGMA), device=y.device)
    return level, source, None


def declared_noise(operator, sigma: float | None = None) -> tuple[float, str] | None:
    """The noise std as declared, before any floor, and where it came from: ``given``
    (``sigma``) or ``operator`` (its Gaussian noise model); ``None`` if neither declares one."""
    if sigma is not None and not (isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
                                  and 0 <= sigma < torch.finfo(torch.float32).max):
        raise UserError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if sigma is not None:
        return float(sigma), "given"
    if noise_sigma(operator) is not None:
        return noise_sigma(operator), "operator"
    return None


def as_measurement(y, name: str = "measurement", warn_range: bool = True) -> torch.Tensor:
    """A tensor (B, C, h, w) or a numpy array ((h, w), (h, w, C) or (B, C, h, w)) -> float32.

    Floats are taken as they are: noise carries a measurement a little outside [0, 1], and
    clipping it would bias the data term; they must be finite, and an image's values far
    outside [0, 1] warn (``image_io.FarOutsideWarning``; ``warn_range=False``: not for a
    float tensor, one already read). uint8 and uint16 integers are an image in its type's
    full range, as in image files (8-bit: divided by 255); other integer types are refused.
    """
    from em_inverse.image_io import array_to_tensor, warn_if_far_outside

    if torch.is_tensor(y) and y.is_floating_point():
        y = y.detach().float()
        if y.numel() == 0:
            raise UserError(f"{name}: empty tensor of shape {tuple(y.shape)}")
        if not torch.isfinite(y).all():
            raise UserError(f"{name}: contains NaN or infinite values")
        if warn_range and y.ndim == 4:  # an image (other measurements have A's own scale)
            low, high = torch.aminmax(y)
            warn_if_far_outside(float(low), float(high), name, stacklevel=3)
        return y

    array = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y)
    if array.ndim == 4:
        return torch.cat([array_to_tensor(image[None], name, measurement=True)
                          for image in array])
    return array_to_tensor(array, name, measurement=True)


@torch.no_grad()
def image_shape_of(y: torch.Tensor, operator) -> tuple[int, ...]:
    """The shape (B, C, H, W) of the images behind y: that of A^T y, once A maps it back to
    y's shape; a measurement that does not fit the operator is a ``UserError``."""
    try:
        image_shape = tuple(operator.A_adjoint(y).shape)
        fits = tuple(operator.A(torch.zeros(image_shape, device=y.device)).shape) == y.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise UserError(f"a measurement of shape {tuple(y.shape)} does not fit the operator "
                        f"{type(operator).__name__}; was it built for another image size?")
    return image_shape

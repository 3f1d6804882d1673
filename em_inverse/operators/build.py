"""``build_operator``: one place that turns task options into a physics (CLI and benchmarks)."""
from __future__ import annotations

import torch

from em_inverse.errors import UserError
from em_inverse.operators.kernels import parse_kernel
from em_inverse.operators.masks import parse_mask
from em_inverse.operators.noise import check_sigma
from em_inverse.operators.physics import (TASKS, check_factor, deblurring, denoising,
                                          inpainting, superresolution)
from em_inverse.operators.shot_noise import poisson_noise


def build_operator(task: str, image_shape: tuple[int, ...], *,
                   mask: str | torch.Tensor | None = None, mask_keeps: bool = False,
                   kernel: str | torch.Tensor | None = None, boundary: str = "reflect",
                   factor: int | None = None, noise: float | None = None,
                   photons: float | None = None, generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu"):
    """Build the deepinv physics of ``task`` for clean images of ``image_shape``.

    Args:
        task: ``inpaint``, ``deblur``, ``superres`` or ``denoise``.
        image_shape: (C, H, W) or (B, C, H, W) of the clean (for superres: high-resolution) x.
        mask: inpaint only; a keep-mask tensor (1 = observed) or a ``parse_mask`` spec
            (file path with white = fill, ``random:F``, ``box[:T,L,H,W]``, ``strokes[:N]``).
        mask_keeps: for mask files, non-zero marks observed pixels instead of holes.
        kernel: deblur only; a (1, 1, h, w) tensor or a ``parse_kernel`` spec.
        boundary: deblur/superres boundary handling, ``reflect`` or ``circular``.
        factor: superres only; integer >= 2.
        noise: Gaussian noise std on the [0, 1] scale; ``None`` leaves it unknown (``solve``
            then estimates it from the measurement).
        photons: Poisson (shot) noise of this many photons per unit intensity, with ``noise``
            (default 0) as Gaussian read noise (``operators.shot_noise``).
        generator: randomness for generated masks.
    Returns:
        a ``deepinv.physics.LinearPhysics`` with a ``task`` attribute.
    """
    if photons is not None:
        physics = build_operator(task, image_shape, mask=mask, mask_keeps=mask_keeps,
                                 kernel=kernel, boundary=boundary, factor=factor, noise=None,
                                 generator=generator, device=device)
        physics.noise_model = poisson_noise(photons, noise or 0.0)
        return physics
    if task not in TASKS:
        raise UserError(f"unknown operator {task!r}: use one of {', '.join(TASKS)}")
    if len(image_shape) not in (3, 4):
        raise UserError(f"image shape must be (C, H, W) or (B, C, H, W), got {image_shape}")
    sigma = None if noise is None else check_sigma(noise)
    height, width = image_shape[-2:]
    if task == "inpaint":
        if mask is None:
            raise UserError("inpainting needs a mask (--mask PATH, random:F, box or strokes)")
        keep = (check_mask_tensor(mask, image_shape) if torch.is_tensor(mask)
                else parse_mask(mask, (height, width), generator, keeps=mask_keeps))
        return inpainting(keep, image_shape, sigma=sigma, device=device)
    if task == "deblur":
        if kernel is None:
            raise UserError("deblurring needs a kernel (--kernel gaussian:SIGMA, "
                            "motion:LEN[,ANGLE] or a file)")
        k = check_kernel_tensor(kernel) if torch.is_tensor(kernel) else parse_kernel(kernel)
        return deblurring(k, image_shape, sigma=sigma, boundary=boundary, device=device)
    if task == "superres":
        if factor is None:
            raise UserError("super-resolution needs a factor (--factor N)")
        return superresolution(factor, image_shape, sigma=sigma, boundary=boundary,
                               device=device)
    return denoising(sigma=sigma, device=device)


def check_mask_tensor(keep: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A keep-mask tensor as given (1 = observed, 0 = fill), or a ``UserError`` unless it is
    binary and shaped (H, W), (1|C, H, W) or (1|B, 1|C, H, W) for images ``image_shape``."""
    if keep.dtype == torch.bool:
        keep = keep.float()
    if not keep.is_floating_point():
        raise UserError(f"a mask tensor must be float or bool (1 = observed, 0 = fill), got "
                        f"{keep.dtype}")
    if not bool(((keep == 0) | (keep == 1)).all()):
        raise UserError("a mask tensor must hold only 0 (fill) and 1 (observed)")
    channels = image_shape[-3]
    batch = image_shape[0] if len(image_shape) == 4 else 1
    lead = tuple(keep.shape[:-2])
    fits = (len(lead) <= 2 and (len(lead) < 1 or lead[-1] in (1, channels))
            and (len(lead) < 2 or lead[0] in (1, batch)))
    if not fits:
        raise UserError(f"a mask of shape {tuple(keep.shape)} does not fit images of shape "
                        f"{tuple(image_shape)}: use (H, W), (1, H, W) or (B, 1, H, W)")
    return keep.reshape((1,) * (4 - keep.ndim) + tuple(keep.shape))


def check_kernel_tensor(kernel: torch.Tensor) -> torch.Tensor:
    """A blur kernel tensor as (1, 1, h, w) (or (B, 1, h, w): one per image), or a
    ``UserError`` unless it is finite with a positive sum per kernel (it is used as given:
    normalise it to sum 1 to keep the image's brightness)."""
    if kernel.ndim == 2:
        kernel = kernel[None, None]
    if kernel.ndim != 4 or kernel.shape[1] != 1 or not kernel.is_floating_point():
        raise UserError(f"a kernel tensor must be float, (h, w) or (1|B, 1, h, w), got "
                        f"{tuple(kernel.shape)} {kernel.dtype}")
    if not bool(torch.isfinite(kernel).all()) or not bool((kernel.flatten(1).sum(1) > 0).all()):
        raise UserError("a kernel tensor must be finite with a positive sum")
    return kernel


def image_shape_for(task: str, measurement_shape: tuple[int, ...],
                    factor: int | None = None) -> tuple[int, ...]:
    """Shape of the unknown image x given the measurement's shape (superres multiplies H, W)."""
    if task != "superres":
        return tuple(measurement_shape)
    if factor is None:
        raise UserError("super-resolution needs a factor (--factor N)")
    factor = check_factor(factor)
    *rest, height, width = measurement_shape
    return (*rest, height * factor, width * factor)

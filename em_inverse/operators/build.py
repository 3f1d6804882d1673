"""``build_operator``: one place that turns task options into a physics (CLI and benchmarks)."""
from __future__ import annotations

import torch

from em_inverse.errors import UserError
from em_inverse.operators.kernels import parse_kernel
from em_inverse.operators.masks import parse_mask
from em_inverse.operators.noise import check_sigma
from em_inverse.operators.physics import (TASKS, check_factor, deblurring, denoising,
                                          inpainting, superresolution)


def build_operator(task: str, image_shape: tuple[int, ...], *,
                   mask: str | torch.Tensor | None = None, mask_keeps: bool = False,
                   kernel: str | torch.Tensor | None = None, boundary: str = "reflect",
                   factor: int | None = None, noise: float | None = None,
                   generator: torch.Generator | None = None,
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
        generator: randomness for generated masks.
    Returns:
        a ``deepinv.physics.LinearPhysics`` with a ``task`` attribute.
    """
    if task not in TASKS:
        raise UserError(f"unknown operator {task!r}: use one of {', '.join(TASKS)}")
    if len(image_shape) not in (3, 4):
        raise UserError(f"image shape must be (C, H, W) or (B, C, H, W), got {image_shape}")
    sigma = None if noise is None else check_sigma(noise)
    height, width = image_shape[-2:]
    if task == "inpaint":
        if mask is None:
            raise UserError("inpainting needs a mask (--mask PATH, random:F, box or strokes)")
        keep = mask if torch.is_tensor(mask) else parse_mask(mask, (height, width), generator,
                                                              keeps=mask_keeps)
        return inpainting(keep, image_shape, sigma=sigma, device=device)
    if task == "deblur":
        if kernel is None:
            raise UserError("deblurring needs a kernel (--kernel gaussian:SIGMA, "
                            "motion:LEN[,ANGLE] or a file)")
        k = kernel if torch.is_tensor(kernel) else parse_kernel(kernel)
        return deblurring(k, image_shape, sigma=sigma, boundary=boundary, device=device)
    if task == "superres":
        if factor is None:
            raise UserError("super-resolution needs a factor (--factor N)")
        return superresolution(factor, image_shape, sigma=sigma, boundary=boundary,
                               device=device)
    return denoising(sigma=sigma, device=device)


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

"""Starting points: a cheap back-projection of the measurement into image space.

inpaint: biharmonic fill of the holes (scikit-image), superres: bicubic upsampling, any other
linear physics: A^T y rescaled by 1/||A||^2, all clipped to [0, 1]; deblur and denoise: the
measurement itself, NOT clipped: noise that crosses 0 or 1 is part of the measurement, and
clipping it would bias every estimate built on y (one HQS step on denoising is Tweedie's
formula at y only when it starts at y). Shapes: y (B, ...) -> x0 (B, C, H, W).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from deepinv.physics import Inpainting

from em_inverse.operators.physics import lipschitz, task_of


@torch.no_grad()
def initial_estimate(y: torch.Tensor, physics, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A sensible x0 of shape ``image_shape`` (B, C, H, W) from the measurement y."""
    task = task_of(physics)
    if task == "inpaint" and isinstance(physics, Inpainting):
        return biharmonic_fill(y, physics.mask.expand(image_shape))
    if task == "superres":
        factor = int(physics.factor)
        # deepinv keeps samples 0, f, 2f...: shift so bicubic centres match that grid.
        up = F.interpolate(y, scale_factor=factor, mode="bicubic", align_corners=False)
        shift = (factor - 1) // 2
        if shift:
            up = torch.roll(up, shifts=(-shift, -shift), dims=(-2, -1))
        return up[..., : image_shape[-2], : image_shape[-1]].clamp(0, 1)
    if task in ("deblur", "denoise") and tuple(y.shape) == tuple(image_shape):
        return y.clone()
    back = physics.A_adjoint(y)
    return (back / max(lipschitz(physics, image_shape), 1e-12)).clamp(0, 1)


def biharmonic_fill(y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Fill pixels where ``keep`` == 0 by biharmonic interpolation (per image, on the CPU)."""
    from skimage.restoration import inpaint_biharmonic

    out = []
    for image, mask in zip(y.detach().cpu().numpy(), keep.detach().cpu().numpy()):
        holes = mask[0] <= 0
        if not holes.any():
            out.append(image)
            continue
        filled = inpaint_biharmonic(np.moveaxis(image, 0, -1), holes, channel_axis=-1)
        out.append(np.moveaxis(filled, -1, 0))
    return torch.from_numpy(np.stack(out).astype(np.float32)).to(y.device).clamp(0, 1)

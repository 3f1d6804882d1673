"""Blur kernels: Gaussian, linear motion, or a user file, as (1, 1, h, w) tensors summing to 1.

``parse_kernel(spec)`` understands the command-line forms ``gaussian:SIGMA``,
``motion:LENGTH[,ANGLE]`` (angle in degrees, counter-clockwise from the x axis) and a path to a
kernel image (PNG/TIFF...) or ``.npy`` array. Sizes are in pixels. Bad specifications raise
``UserError``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from em_inverse.errors import UserError

MAX_KERNEL_SIZE = 255


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian kernel of standard deviation ``sigma`` pixels, (1, 1, size, size).

    ``size`` defaults to the odd integer ``2 * ceil(3 * sigma) + 1`` (covers +-3 sigma).
    """
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma <= 0:
        raise UserError(f"Gaussian kernel sigma must be a positive number, got {sigma:g}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    _check_size(size)
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    profile = torch.exp(-0.5 * (axis / sigma) ** 2)
    kernel = profile[:, None] * profile[None, :]
    return (kernel / kernel.sum()).float()[None, None]


def motion_kernel(length: float, angle: float = 0.0) -> torch.Tensor:
    """Linear motion blur of ``length`` pixels along ``angle`` degrees, (1, 1, n, n), n odd.

    The segment is rasterised with sub-pixel samples and bilinear splatting, so any real
    length >= 1 and any angle give a smooth, normalised kernel.
    """
    length, angle = float(length), float(angle)
    if not math.isfinite(length) or length < 1:
        raise UserError(f"motion blur length must be >= 1 pixel, got {length:g}")
    if not math.isfinite(angle):
        raise UserError(f"motion blur angle must be a finite number of degrees, got {angle}")
    size = 2 * math.ceil(length / 2) + 1
    _check_size(size)
    centre = (size - 1) / 2
    theta = math.radians(angle)
    offsets = torch.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(8 * length)),
                             dtype=torch.float64)
    cols = centre + offsets * math.cos(theta)
    rows = centre - offsets * math.sin(theta)  # image rows grow downwards
    kernel = torch.zeros(size, size, dtype=torch.float64)
    r0, c0 = rows.floor(), cols.floor()
    for dr in (0, 1):
        for dc in (0, 1):
            weight = (1 - (rows - r0 - dr).abs()) * (1 - (cols - c0 - dc).abs())
            r = (r0 + dr).long().clamp(0, size - 1)
            c = (c0 + dc).long().clamp(0, size - 1)
            kernel.index_put_((r, c), weight, accumulate=True)
    return (kernel / kernel.sum()).float()[None, None]


#: Suffixes that make a --kernel value a file name (so a missing one reads as a missing file).
KERNEL_FILE_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def load_kernel(path: str | Path) -> torch.Tensor:
    """Read a kernel from an image or ``.npy`` file; negative sums are rejected, the kernel is
    normalised to sum 1 and returned as (1, 1, h, w) (colour images are averaged)."""
    from em_inverse.image_io import array_to_tensor, read_image, read_npy

    path = Path(path)
    if path.suffix.lower() == ".npy" and path.is_file():
        array = read_npy(path)
        if array.dtype.kind in "fiu":  # weights: the kernel is normalised below
            if array.ndim != 2:
                raise UserError(f"kernel {path}: expected a 2-D array, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise UserError(f"kernel {path}: contains NaN or infinite values")
            kernel = torch.from_numpy(array.astype(np.float32))[None, None]
        else:
            kernel = array_to_tensor(array, source=f"kernel {path}")
    else:
        kernel = read_image(path)
    kernel = kernel.mean(dim=1, keepdim=True)
    if max(kernel.shape[-2:]) > MAX_KERNEL_SIZE:
        raise UserError(f"kernel {path} is too large ({kernel.shape[-2]}x{kernel.shape[-1]}); "
                        f"at most {MAX_KERNEL_SIZE} pixels a side")
    total = float(kernel.sum())
    if not total > 0:
        raise UserError(f"kernel {path} must have a positive sum")
    return kernel / total


def parse_kernel(spec: str) -> torch.Tensor:
    """``gaussian:SIGMA`` | ``motion:LENGTH[,ANGLE]`` | PATH -> kernel (1, 1, h, w), sum 1."""
    spec = str(spec).strip()
    kind, sep, args = spec.partition(":")
    kind = kind.lower()
    if sep and kind in ("gaussian", "motion"):
        try:
            values = [float(v) for v in args.split(",")]
        except ValueError:
            raise UserError(f"cannot parse kernel {spec!r}: expected numbers after "
                            f"'{kind}:'") from None
        if kind == "gaussian" and len(values) == 1:
            return gaussian_kernel(values[0])
        if kind == "motion" and len(values) in (1, 2):
            return motion_kernel(*values)
        raise UserError(f"cannot parse kernel {spec!r}: use gaussian:SIGMA or "
                        f"motion:LENGTH[,ANGLE]")
    path = Path(spec).expanduser()
    if path.is_file():
        return load_kernel(path)
    if path.suffix.lower() in KERNEL_FILE_SUFFIXES:
        raise UserError(f"no such kernel file: {path}")
    raise UserError(f"cannot parse kernel {spec!r}: use gaussian:SIGMA, motion:LENGTH[,ANGLE] "
                    f"or the path of a kernel image or .npy file")


def _check_size(size: int) -> None:
    if size > MAX_KERNEL_SIZE:
        raise UserError(f"blur kernel would be {size} pixels wide; at most {MAX_KERNEL_SIZE}")

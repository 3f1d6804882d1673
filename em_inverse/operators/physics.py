"""Thin constructors over deepinv physics, one per task, plus the facts solvers need.

Every constructor returns an ordinary ``deepinv.physics.LinearPhysics`` carrying a ``task``
attribute (``inpaint``, ``deblur``, ``superres``, ``denoise``). Images are (B, C, H, W) in
[0, 1]; noise levels are standard deviations on that scale. ``lipschitz(physics, shape)`` gives
||A||^2 (exactly where known, else by power iteration) and caches it on the physics.
"""
from __future__ import annotations

import functools
import math

import torch
from deepinv.physics import (Blur, Denoising, Downsampling, Inpainting, LinearPhysics,
                             ZeroNoise)

from em_inverse.errors import UserError
from em_inverse.operators.noise import gaussian_noise

TASKS = ("inpaint", "deblur", "superres", "denoise")
BOUNDARIES = ("reflect", "circular")
#: Kernels with more taps than this are applied by FFT (13x13 on 256x256: 3.5 ms vs 40 ms).
FFT_MIN_TAPS = 25


def _with_noise(physics: LinearPhysics, task: str, sigma: float | None) -> LinearPhysics:
    physics.task = task
    if sigma is not None:
        physics.noise_model = gaussian_noise(sigma)
    return physics


def inpainting(keep: torch.Tensor, image_shape: tuple[int, ...], sigma: float | None = None,
               device: str | torch.device = "cpu") -> Inpainting:
    """y = keep * x (+ noise on observed pixels). ``keep``: (1, 1, H, W) or (1, C, H, W), 1 =
    observed. ``image_shape``: (C, H, W) or (B, C, H, W) of x."""
    channels, height, width = image_shape[-3:]
    if tuple(keep.shape[-2:]) != (height, width):
        raise UserError(f"mask is {keep.shape[-2]}x{keep.shape[-1]} but the image is "
                        f"{height}x{width}")
    if not bool((keep > 0).any()):
        raise UserError("the mask hides every pixel: nothing is observed")
    physics = Inpainting(img_size=(channels, height, width), mask=keep.to(device).float(),
                         device=device)
    return _with_noise(physics, "inpaint", sigma)


def deblurring(kernel: torch.Tensor, image_shape: tuple[int, ...], sigma: float | None = None,
               boundary: str = "reflect", device: str | torch.device = "cpu") -> Blur:
    """y = kernel * x (convolution, output the size of x). ``boundary``: ``reflect`` (default,
    right for photographs) or ``circular`` (periodic images, FFT-friendly)."""
    if boundary not in BOUNDARIES:
        raise UserError(f"unknown boundary {boundary!r}: use {' or '.join(BOUNDARIES)}")
    height, width = image_shape[-2:]
    if boundary == "reflect" and (kernel.shape[-2] > 2 * height - 1
                                  or kernel.shape[-1] > 2 * width - 1):
        raise UserError(f"blur kernel {kernel.shape[-2]}x{kernel.shape[-1]} is too large for a "
                        f"{height}x{width} image")
    kernel = kernel.to(device).float()
    factors = separable_factors(kernel) if boundary == "reflect" else None
    blur = Blur if factors is None else functools.partial(SeparableBlur, *factors)
    physics = blur(filter=kernel, padding=boundary, device=device,
                   use_fft=kernel.numel() > FFT_MIN_TAPS)
    return _with_noise(physics, "deblur", sigma)


def separable_factors(kernel: torch.Tensor, tolerance: float = 1e-6
                      ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(column (h,), row (w,)) whose outer product is the one 2-D ``kernel`` (1, 1, h, w) to
    within ``tolerance`` of its largest tap, e.g. a Gaussian; None for a kernel that is not
    rank 1 (motion blur) or not one kernel (one per image or per channel)."""
    if kernel.ndim != 4 or kernel.shape[:2] != (1, 1):
        return None
    taps = kernel[0, 0].double().cpu()
    left, values, right = torch.linalg.svd(taps)
    column, row = left[:, 0] * values[0].sqrt(), right[0] * values[0].sqrt()
    if column.sum() < 0:
        column, row = -column, -row
    if float((torch.outer(column, row) - taps).abs().max()) > tolerance * float(taps.abs().max()):
        return None
    return column.float().to(kernel.device), row.float().to(kernel.device)


class SeparableBlur(Blur):
    """deepinv's ``Blur`` with reflect padding, for a separable kernel k = column row^T (a
    Gaussian), with the same A and A^T computed on the CPU as two 1-D convolutions each (26
    multiplications a pixel for the 13x13 Gaussian of std 2) instead of deepinv's FFT of the
    padded image. HQS's deblurring data steps run up to 20 of them per level: on a 2-core
    Intel Xeon a default gray deblurring of a 256-px crop took 4.05 s, 0.81 of them data
    steps, against 5.71 s and 1.91 with deepinv's (``python benchmarks/data_step_share.py
    --tasks deblur-gauss``). Same result to float rounding (tested against deepinv's). On
    CUDA, for a filter passed to a call, or once ``update_parameters`` has changed the filter,
    deepinv's methods run as they are; circular padding keeps deepinv's FFT, which is faster."""

    def __init__(self, column: torch.Tensor, row: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("column", column.clone())
        self.register_buffer("row", row.clone())
        self.register_buffer("factored", self.filter.detach().clone())

    def _separable(self, z: torch.Tensor, filter, kwargs) -> bool:
        return (filter is None and not kwargs and z.device.type == "cpu" and z.ndim == 4
                and self.filter is not None and self.filter.shape == self.factored.shape
                and torch.equal(self.filter.detach(), self.factored))

    def _padding(self) -> tuple[int, int, int, int]:
        return _deepinv_padding(len(self.column), len(self.row))

    def A(self, x: torch.Tensor, filter=None, **kwargs) -> torch.Tensor:
        """y = k * x: x (B, C, H, W) -> (B, C, H, W)."""
        if not self._separable(x, filter, kwargs):
            return super().A(x, filter=filter, **kwargs)
        padded = torch.nn.functional.pad(x, self._padding(), mode=self.padding)
        # deepinv convolves: a cross-correlation of the padded image with the flipped kernel
        return _correlate_separable(padded, self.column.flip(0), self.row.flip(0))

    def A_adjoint(self, y: torch.Tensor, filter=None, **kwargs) -> torch.Tensor:
        """x = A^T y: y (B, C, H, W) -> (B, C, H, W)."""
        if not self._separable(y, filter, kwargs):
            return super().A_adjoint(y, filter=filter, **kwargs)
        h, w = len(self.column), len(self.row)
        # the adjoint of a valid cross-correlation with flip(k) is a full one with k
        full = _correlate_separable(torch.nn.functional.pad(y, (w - 1, w - 1, h - 1, h - 1)),
                                    self.column, self.row)
        return _fold_padding(full, self._padding(), self.padding)


def _correlate_separable(x: torch.Tensor, column: torch.Tensor, row: torch.Tensor
                         ) -> torch.Tensor:
    """Valid cross-correlation of every channel of x (B, C, H, W) with column row^T, as a
    vertical then a horizontal 1-D one: (B, C, H - h + 1, W - w + 1)."""
    channels = x.shape[1]
    vertical = column.to(x).view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    horizontal = row.to(x).view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, vertical, groups=channels),
                                      horizontal, groups=channels)


def _fold_padding(padded_grad: torch.Tensor, pad: tuple[int, int, int, int],
                  mode: str) -> torch.Tensor:
    """The adjoint of ``torch.nn.functional.pad(x, pad, mode)`` at ``padded_grad``: each
    padded pixel added back onto the pixel it copies (autograd)."""
    height = padded_grad.shape[-2] - pad[2] - pad[3]
    width = padded_grad.shape[-1] - pad[0] - pad[1]
    with torch.enable_grad():
        x = padded_grad.new_zeros(*padded_grad.shape[:-2], height, width, requires_grad=True)
        (adjoint,) = torch.autograd.grad(torch.nn.functional.pad(x, pad, mode=mode), x,
                                         padded_grad)
    return adjoint


class BicubicDownsampling(Downsampling):
    """deepinv's ``Downsampling`` (filter, then keep every ``factor``-th pixel) with the same
    A and an adjoint computed by forward convolutions. deepinv's adjoint runs PyTorch's
    transposed convolution, whose CPU kernel for a one-channel image is slow: with it, HQS's CG
    data steps took 3.8 s of a 9.6 s gray x2 super-resolution of a 256-px crop, with this
    adjoint 1.1 s of 7.2 s (``python benchmarks/data_step_share.py`` at commits 4a7b206 and
    803dfd3, half an hour apart in one session; 1.6 s of 9.1 s on a slower Intel Xeon). Here
    the transposed convolution is a forward convolution of the zero-padded input
    (``_filter_adjoint``), and the boundary's padding is folded back by the adjoint of
    ``torch.nn.functional.pad`` (autograd). Same result to float rounding (tested against
    deepinv's adjoint). On CUDA deepinv's adjoint runs as it is: cuDNN's transposed convolution
    is fast, and the padding's CUDA backward adds with atomics (not bit-reproducible)."""

    def A_adjoint(self, y: torch.Tensor, filter=None, factor=None, **kwargs) -> torch.Tensor:
        """x = A^T y: y (B, C, H / factor, W / factor) -> (B, C, H, W)."""
        if filter is not None or factor is not None or kwargs or self.filter is None \
                or self.padding == "valid" or y.device.type != "cpu":
            return super().A_adjoint(y, filter=filter, factor=factor, **kwargs)
        f = self.factor
        upsampled = y.new_zeros(*y.shape[:-2], y.shape[-2] * f, y.shape[-1] * f)
        upsampled[..., ::f, ::f] = y
        return _filter_adjoint(upsampled, self.filter.to(y), self.padding)


def _filter_adjoint(u: torch.Tensor, kernel: torch.Tensor, padding: str) -> torch.Tensor:
    """The adjoint of deepinv's ``functional.conv2d(x, kernel, padding)`` (a convolution whose
    output has x's size: x padded by ``padding``, then a valid convolution) at u (B, C, H, W);
    ``kernel`` (1 or C, 1, h, w)."""
    channels, (h, w) = u.shape[1], kernel.shape[-2:]
    weight = kernel.reshape(-1, 1, h, w).expand(channels, 1, h, w)
    # deepinv convolves (flips the kernel) and cross-correlates the padded image with the flip;
    # the adjoint of a valid cross-correlation with k is a full cross-correlation with flip(k)
    full = torch.nn.functional.conv2d(torch.nn.functional.pad(u, (w - 1, w - 1, h - 1, h - 1)),
                                      weight, groups=channels)
    return _fold_padding(full, _deepinv_padding(h, w), padding)


def _deepinv_padding(h: int, w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) pixels by which deepinv's convolution pads an image for an
    h x w kernel, so that the output keeps the image's size."""
    return (w // 2 - (w - 1) % 2, w // 2, h // 2 - (h - 1) % 2, h // 2)


def superresolution(factor: int, image_shape: tuple[int, ...], sigma: float | None = None,
                    boundary: str = "reflect",
                    device: str | torch.device = "cpu") -> Downsampling:
    """y = bicubic-filtered x subsampled by ``factor``; x (the high-resolution image, (C, H, W)
    in ``image_shape``) is what solvers return. H and W must be multiples of ``factor``."""
    factor = check_factor(factor)
    channels, height, width = image_shape[-3:]
    if boundary not in BOUNDARIES:
        raise UserError(f"unknown boundary {boundary!r}: use {' or '.join(BOUNDARIES)}")
    smallest = smallest_superres_side(factor, boundary)
    if min(height, width) < smallest:
        raise UserError(f"super-resolution x{factor} needs a high-resolution image of at least "
                        f"{smallest}x{smallest} pixels with {boundary} boundaries (its bicubic "
                        f"filter is {4 * factor} taps wide), got {height}x{width}")
    if height % factor or width % factor:
        raise UserError(f"image size {height}x{width} is not a multiple of the factor {factor}")
    physics = BicubicDownsampling(img_size=(channels, height, width), filter="bicubic",
                                  factor=factor, padding=boundary, device=device)
    return _with_noise(physics, "superres", sigma)


def denoising(sigma: float | None = None, device: str | torch.device = "cpu") -> Denoising:
    """y = x + noise."""
    physics = Denoising(noise_model=ZeroNoise(), device=device)
    return _with_noise(physics, "denoise", sigma)


def smallest_superres_side(factor: int, boundary: str = "reflect") -> int:
    """The smallest high-resolution side (pixels) that x``factor`` super-resolution accepts.

    The side is a multiple of the factor, and the bicubic filter (4 ``factor`` taps) must fit
    the padded image: with ``reflect`` padding at most 2 side - 1 taps (6 pixels at x2, 9 at
    x3), with ``circular`` the image must hold two low-resolution pixels (4 at x2, 6 at x3).
    """
    if boundary == "circular":
        return 2 * factor
    return factor * math.ceil((4 * factor + 1) / (2 * factor))


def check_factor(factor) -> int:
    try:
        value = int(factor)
    except (TypeError, ValueError):
        raise UserError(f"super-resolution factor must be an integer >= 2, got {factor!r}") \
            from None
    if value != factor or value < 2:
        raise UserError(f"super-resolution factor must be an integer >= 2, got {factor}")
    return value


def task_of(physics) -> str | None:
    """Our task name for a physics (its ``task`` attribute, or inferred from deepinv's class)."""
    task = getattr(physics, "task", None)
    if task:
        return task
    for cls, name in ((Inpainting, "inpaint"), (Downsampling, "superres"), (Blur, "deblur"),
                      (Denoising, "denoise")):
        if isinstance(physics, cls):
            return name
    return None


@torch.no_grad()
def lipschitz(physics: LinearPhysics, image_shape: tuple[int, ...],
              device: str | torch.device | None = None, iterations: int = 100,
              tol: float = 1e-5) -> float:
    """||A||^2 = largest eigenvalue of A^T A on images of ``image_shape`` ((C, H, W) or with a
    batch dimension; with one blur kernel per image, the largest over the images), cached on
    the physics per shape.

    Exact for inpainting (max mask^2) and denoising (1); otherwise a seeded power iteration
    (deterministic), inflated by 1% to stay an upper bound for step-size rules.
    """
    kernels = getattr(physics, "filter", None)  # one blur kernel per image: the norm of all
    batch = kernels.shape[0] if torch.is_tensor(kernels) and kernels.ndim == 4 else 1
    shape = (batch, *tuple(image_shape)[-3:])
    cache = physics.__dict__.setdefault("_em_sqnorm", {})
    if shape in cache:
        return cache[shape]
    if isinstance(physics, Inpainting):
        value = float(physics.mask.max()) ** 2
    elif isinstance(physics, Denoising):
        value = 1.0
    else:
        if device is None:
            buffers = list(physics.buffers())
            device = buffers[0].device if buffers else "cpu"
        generator = torch.Generator(device=device).manual_seed(0)
        v = torch.randn(shape, generator=generator, device=device)
        v /= v.norm()
        value = 0.0
        for _ in range(iterations):
            w = physics.A_adjoint(physics.A(v))
            new = float((v * w).sum())
            v = w / w.norm().clamp_min(1e-30)
            if abs(new - value) <= tol * abs(new):
                value = new
                break
            value = new
        value *= 1.01
    cache[shape] = value
    return value

"""Inpainting masks. Every function returns a KEEP mask: (1, 1, H, W) float, 1 = observed pixel,
0 = pixel to fill (what ``deepinv.physics.Inpainting`` multiplies by).

Mask *files* follow the OpenCV / LaMa convention instead: white (any non-zero value) marks the
pixels to fill; ``keeps=True`` flips it (non-zero = observed). Random masks take an explicit
``torch.Generator`` so a seed reproduces them.

``parse_mask(spec, ...)`` reads the command-line forms: ``random:FRACTION`` (fraction missing),
``box`` (centred box, a quarter of the area) or ``box:TOP,LEFT,HEIGHT,WIDTH`` (pixels),
``strokes`` or ``strokes:N`` (free-form brush strokes), or a path to a mask image / ``.npy``.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from em_inverse.errors import UserError


def mask_from_file(path: str | Path, image_size: tuple[int, int] | None = None,
                   keeps: bool = False) -> torch.Tensor:
    """Read a mask image or ``.npy``; non-zero = fill (OpenCV/LaMa), or = keep if ``keeps``.
    Integer ``.npy`` arrays of any type are read as labels (0 or not).

    Colour masks count a pixel as non-zero if any channel is. If ``image_size`` (H, W) is given
    the mask must match it exactly.
    """
    from em_inverse.image_io import array_to_tensor, read_image, read_npy

    path = Path(path)
    if path.suffix.lower() == ".npy" and path.is_file():
        array = read_npy(path)
        if array.dtype.kind in "iu":  # integer labels: any non-zero value marks the pixel
            array = array != 0
        values = array_to_tensor(array, source=f"mask {path}")
    else:
        values = read_image(path)
    marked = (values > 0).any(dim=1, keepdim=True)
    if image_size is not None and tuple(marked.shape[-2:]) != tuple(image_size):
        raise UserError(f"mask {path} is {marked.shape[-2]}x{marked.shape[-1]} but the image is "
                        f"{image_size[0]}x{image_size[1]}")
    keep = marked if keeps else ~marked
    grey = int(((values > 0) & (values < 1)).any(dim=1).sum())
    if grey:
        warnings.warn(f"mask {path}: {grey} pixel(s) are neither black nor white (JPEG artifacts "
                      f"or soft edges?); every non-black pixel counts as "
                      f"{'observed' if keeps else 'one to fill'}", UserWarning, stacklevel=2)
    if keep.all():
        warnings.warn(f"mask {path} marks no pixel to fill: inpainting only denoises the "
                      f"observed image", UserWarning, stacklevel=2)
    return keep.float()


def random_mask(image_size: tuple[int, int], missing: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel is missing independently with probability ``missing`` in [0, 1)."""
    missing = float(missing)
    if not 0 <= missing < 1:
        raise UserError(f"random mask fraction must be in [0, 1), got {missing:g}")
    device = generator.device if generator is not None else "cpu"
    uniform = torch.rand((1, 1, *image_size), generator=generator, device=device)
    return (uniform >= missing).float()


def box_mask(image_size: tuple[int, int],
             box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """A rectangular hole ``box = (top, left, height, width)`` in pixels; by default a centred
    box of half the height and half the width (a quarter of the area)."""
    height, width = image_size
    if box is None:
        box = (height // 4, width // 4, max(1, height // 2), max(1, width // 2))
    top, left, box_h, box_w = (int(v) for v in box)
    if box_h <= 0 or box_w <= 0 or top < 0 or left < 0 or top + box_h > height \
            or left + box_w > width:
        raise UserError(f"box {top},{left},{box_h},{box_w} (top,left,height,width) does not fit "
                        f"in a {height}x{width} image")
    keep = torch.ones(1, 1, height, width)
    keep[..., top:top + box_h, left:left + box_w] = 0
    return keep


#: The most brush strokes a mask may have (each stroke is drawn in up to 5 passes).
MAX_STROKES = 1000


def stroke_mask(image_size: tuple[int, int], generator: torch.Generator | None = None,
                strokes: int = 4, width: float | None = None,
                max_vertices: int = 6) -> torch.Tensor:
    """Free-form brush strokes (random polylines of thick round brush), as in LaMa-style masks.

    ``width`` is the brush diameter in pixels (default: 1/16 of the smaller side, at least 3).
    Each segment is drawn in one vectorised pass over the pixels (a distance test).
    """
    if not 1 <= strokes <= MAX_STROKES:
        raise UserError(f"number of strokes must be in [1, {MAX_STROKES}], got {strokes}")
    height, width_px = image_size
    side = min(height, width_px)
    brush = float(width) if width is not None else max(3.0, side / 16)
    gen_device = generator.device if generator is not None else "cpu"

    def rand(*shape):
        return torch.rand(shape, generator=generator, device=gen_device).cpu()

    segments = []
    for _ in range(int(strokes)):
        vertices = 2 + int(rand(1).item() * (max_vertices - 1))
        point = rand(2) * torch.tensor([height - 1.0, width_px - 1.0])
        for _ in range(vertices - 1):
            angle = rand(1).item() * 2 * math.pi
            step = (0.1 + 0.2 * rand(1).item()) * side
            nxt = point + step * torch.tensor([math.sin(angle), math.cos(angle)])
            nxt = nxt.clamp(torch.zeros(2), torch.tensor([height - 1.0, width_px - 1.0]))
            segments.append((*point.tolist(), *nxt.tolist()))  # r0, c0, r1, c1
            point = nxt
    rows = torch.arange(height, dtype=torch.float32)[:, None]
    cols = torch.arange(width_px, dtype=torch.float32)[None, :]
    fill = torch.zeros(height, width_px, dtype=torch.bool)
    for start_r, start_c, end_r, end_c in segments:  # one (H, W) pass each: memory stays H x W
        dir_r, dir_c = end_r - start_r, end_c - start_c
        length2 = max(float(dir_r**2 + dir_c**2), 1e-12)
        t = (((rows - start_r) * dir_r + (cols - start_c) * dir_c) / length2).clamp(0, 1)
        dist2 = (rows - start_r - t * dir_r) ** 2 + (cols - start_c - t * dir_c) ** 2
        fill |= dist2 <= (brush / 2) ** 2
    return (~fill).float()[None, None]


def parse_mask(spec: str, image_size: tuple[int, int], generator: torch.Generator | None = None,
               keeps: bool = False) -> torch.Tensor:
    """Command-line mask specification -> keep mask (1, 1, H, W). ``keeps`` only affects files."""
    spec = str(spec).strip()
    kind, sep, args = spec.partition(":")
    kind = kind.lower()
    if kind in ("random", "box", "strokes") and not Path(spec).is_file():
        try:
            values = [float(v) for v in args.split(",")] if sep else []
        except ValueError:
            raise UserError(f"cannot parse mask {spec!r}: expected numbers after "
                            f"'{kind}:'") from None
        if kind == "random" and len(values) == 1:
            return random_mask(image_size, values[0], generator)
        if kind == "box" and len(values) in (0, 4):
            return box_mask(image_size, _whole_numbers(spec, values) if values else None)
        if kind == "strokes" and len(values) in (0, 1):
            return stroke_mask(image_size, generator,
                               strokes=_whole_numbers(spec, values)[0] if values else 4)
        raise UserError(f"cannot parse mask {spec!r}: use random:FRACTION, "
                        f"box[:TOP,LEFT,HEIGHT,WIDTH], strokes[:N] or a mask file")
    return mask_from_file(Path(spec).expanduser(), image_size, keeps=keeps)


def _whole_numbers(spec: str, values: list[float]) -> tuple[int, ...]:
    """``values`` as ints, or a ``UserError`` naming ``spec`` if one is not a whole number
    (pixel counts and stroke counts are never fractional, NaN or infinite)."""
    if not all(math.isfinite(v) and v == int(v) for v in values):
        raise UserError(f"cannot parse mask {spec!r}: box sides, offsets and stroke counts are "
                        f"whole numbers")
    return tuple(int(v) for v in values)


def is_random_spec(spec: str) -> bool:
    """True for the generated (non-file) mask forms, which ``degrade --mask-out`` can save."""
    kind = str(spec).strip().partition(":")[0].lower()
    return kind in ("random", "box", "strokes") and not Path(spec).is_file()


def dilate(keep: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow the holes of a keep mask by ``pixels`` (useful to cover anti-aliased mask edges)."""
    if pixels <= 0:
        return keep
    size = 2 * pixels + 1
    holes = F.max_pool2d(1 - keep, size, stride=1, padding=pixels)
    return 1 - holes


#: A missing pixel lies inside a solid hole when none of its 8 neighbours is observed. Scattered
#: missing pixels are filled from their neighbours (of 50% random missing pixels 0.5^8 = 0.4% lie
#: inside a hole, of 80% 0.8^8 = 17%; of 1-2 px scratches none), solid holes from context further
#: away (a 12x12 box: 10^2/12^2 = 69% of its pixels, a 64x64 box 94%; random brush strokes 4 px
#: wide 41%, 8 px 71%: ``tests/test_operators.py``): the two call for different solver settings.
HOLE_SHARE = 0.5


def hole_share(keep: torch.Tensor) -> float:
    """Share of the missing pixels of a keep mask (..., H, W) none of whose 8 neighbours is
    observed (0.0 when no pixel is missing); the image border counts as unobserved."""
    missing = keep.detach().reshape(-1, 1, *keep.shape[-2:]) <= 0.5
    if not missing.any():
        return 0.0
    near_observed = F.max_pool2d((~missing).float(), 3, stride=1, padding=1) > 0
    return float((missing & ~near_observed).sum() / missing.sum())


def has_holes(keep: torch.Tensor) -> bool:
    """Whether at least ``HOLE_SHARE`` of a keep mask's missing pixels lie inside solid holes."""
    return hole_share(keep) >= HOLE_SHARE

"""Reading and writing images at the public boundary: (1, C, H, W) float32 tensors in [0, 1].

Reading accepts PNG, JPEG and TIFF (8 or 16 bit, gray or RGB; alpha is dropped with a warning;
CMYK and other colour spaces are converted to RGB; an EXIF or TIFF orientation is applied) and
``.npy`` arrays. Every problem with a file (missing, not an image, truncated, NaNs, wrong number of
dimensions...) raises ``UserError`` with one clear line.

Writing produces PNG (8-bit by default, 16-bit on request) or ``.npy`` (float32), always
atomically: the bytes go to a temporary file in the target folder which is then renamed, so a
failed or interrupted run never leaves a partial file behind.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from em_inverse import png16
from em_inverse.atomic import atomic_write_bytes
from em_inverse.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
WRITABLE_SUFFIXES = (".png", ".npy")


# -- reading ----------------------------------------------------------------------------------
def read_image(path: str | Path, measurement: bool = False) -> torch.Tensor:
    """Read an image file or ``.npy`` array as a (1, C, H, W) float32 tensor in [0, 1].

    C is 1 (gray) or 3 (RGB). Integer data is divided by its type's maximum (255 for 8-bit,
    65535 for 16-bit); float data must already lie in [0, 1], or with ``measurement=True`` be
    finite (a noisy measurement, as ``em-inverse degrade`` writes it to .npy, has values
    a little outside [0, 1]: clipping them would bias the noise). An alpha channel is dropped
    with a ``UserWarning``. 16-bit PNG and TIFF files keep their full precision (PNGs in colour
    or with alpha through :mod:`em_inverse.png16`, since Pillow narrows them to 8 bits).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = read_npy(path)
    elif suffix in IMAGE_SUFFIXES:
        array = _read_picture(path)
    else:
        raise UserError(f"unsupported image format {suffix or '(none)'} for {path}: "
                        f"use {', '.join(IMAGE_SUFFIXES)} or .npy")
    return array_to_tensor(array, source=str(path), measurement=measurement)


#: Pillow modes whose channels are neither gray nor RGB (with or without alpha). Pillow converts
#: them to RGB (CMYK by its naive formula, without a colour profile); read as they are, a CMYK
#: file's four channels would pass for RGB plus alpha.
NON_RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV")


def _read_picture(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    tiff = path.suffix.lower() in (".tif", ".tiff")
    try:
        if tiff:
            array, orientation = _read_tiff(path)
        elif png16.narrowed_by_pillow(path):
            array, orientation = png16.read_png16(path)
        else:
            mode = iio.immeta(path, plugin="pillow").get("mode")
            # rotate: turned upright by its EXIF orientation, as viewers show it (a phone's
            # JPEG), so that the output and a mask drawn in a viewer line up with it
            array = iio.imread(path, plugin="pillow", rotate=True,
                               mode="RGB" if mode in NON_RGB_MODES else None)
            orientation = 1  # rotate=True has applied it
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "can not handle" in reason or "cannot identify" in reason:
            reason = f"not a valid {path.suffix.lower().lstrip('.').upper()} image"
        raise UserError(f"cannot read image {path}: {reason}") from None
    array = np.asarray(array)
    if array.ndim in (2, 3):  # a multi-page stack is refused below
        array = upright(array, orientation)
    if array.ndim > 3 or (array.ndim == 3 and array.shape[-1] > 4):
        raise UserError(f"cannot read image {path}: multi-page or {array.ndim}-D images "
                        f"are not supported (shape {array.shape})")
    return array


def _read_tiff(path: Path) -> tuple[np.ndarray, int]:
    """A TIFF's first series as stored (a multi-page stack is refused by the caller), with CMYK
    inks converted to RGB, and its first page's orientation tag 274 (1 to 8 as in EXIF; 1 when
    absent or out of range), for the caller to apply."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        array = tiff.asarray()
        page = tiff.pages[0]
        cmyk = page.photometric == tifffile.PHOTOMETRIC.SEPARATED and page.samplesperpixel >= 4
        tag = page.tags.get(274)
        orientation = int(tag.value) if tag is not None else 1
    return (_cmyk_to_rgb(array) if cmyk else array), (orientation if 1 <= orientation <= 8 else 1)


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """An (H, W) or (H, W, C) image stored with TIFF/EXIF orientation 1-8 turned as viewers show
    it (the transposes of Pillow's ``ImageOps.exif_transpose``): 6 is stored turned 90 degrees
    counter-clockwise, so it is turned 90 degrees clockwise back."""
    flips = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
             4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
             6: lambda a: a[::-1].swapaxes(0, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
             8: lambda a: a[:, ::-1].swapaxes(0, 1)}
    return flips[orientation](array)


def _cmyk_to_rgb(array: np.ndarray) -> np.ndarray:
    """(H, W, 4+) CMYK inks of an integer type -> (H, W, 3) RGB of that type: each of R, G, B is
    (1 - ink) (1 - black) on the unit scale (no colour profile, as Pillow converts). Extra
    channels are dropped."""
    if array.ndim != 3 or array.shape[-1] < 4 or array.dtype.kind != "u":
        raise ValueError(f"a CMYK image of shape {array.shape} and type {array.dtype} is not "
                         "supported")
    full = np.iinfo(array.dtype).max
    inks = array[..., :4].astype(np.float64) / full
    rgb = (1 - inks[..., :3]) * (1 - inks[..., 3:4])
    return np.round(rgb * full).astype(array.dtype)


def read_npy(path: Path) -> np.ndarray:
    """The array in a ``.npy`` file, never unpickled; a bad file is a ``UserError``."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "allow_pickle" in reason:  # numpy's advice to unpickle: this reader never does
            reason = "not a numeric .npy array (Python objects are never unpickled)"
        raise UserError(f"cannot read array {path}: {reason}") from None


def array_to_tensor(array: np.ndarray, source: str = "array",
                    measurement: bool = False) -> torch.Tensor:
    """Convert an image-like array to a (1, C, H, W) float32 tensor in [0, 1].

    Accepted layouts: (H, W), (H, W, C) with C in {1, 2, 3, 4}, (C, H, W) with C in {1, 3} and
    (1, C, H, W). uint8 and uint16 arrays are scaled by their type's maximum (other integer
    types are refused: their full scale is anyone's guess); bool arrays map to {0, 1};
    float arrays must be finite and inside [0, 1] (``measurement=True``: finite, any range).
    """
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise UserError(f"{source}: unsupported data type {array.dtype}")
    if array.ndim not in (2, 3, 4):
        raise UserError(f"{source}: expected a 2-D, 3-D or 4-D image array, "
                        f"got {array.ndim}-D with shape {array.shape}")
    if array.size == 0:
        raise UserError(f"{source}: empty array with shape {array.shape}")
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise UserError(f"{source}: expected one image (1, C, H, W), got shape {array.shape}")
        array = np.moveaxis(array[0], 0, -1)
    elif array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4):
        if array.shape[0] in (1, 3):
            array = np.moveaxis(array, 0, -1)
        else:
            raise UserError(f"{source}: cannot tell the channel axis of shape {array.shape}")
    if array.ndim == 2:
        array = array[..., None]
    array = _drop_alpha(array, source)
    values = _to_unit_float(array, source, measurement)
    tensor = torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))
    return tensor.unsqueeze(0)


def _drop_alpha(array: np.ndarray, source: str) -> np.ndarray:
    channels = array.shape[-1]
    if channels in (2, 4):
        warnings.warn(f"{source}: alpha channel dropped", UserWarning, stacklevel=3)
        return array[..., : channels - 1]
    if channels not in (1, 3):
        raise UserError(f"{source}: expected 1 or 3 channels, got {channels}")
    return array


#: How far outside [0, 1] a float measurement may reach before it is read with a warning. Noise
#: of std 0.25 (the top of the levels the natural priors learned) stays within 1, but shot noise
#: does not: at 10 photons per unit intensity a white pixel counts Poisson(10) photons, more
#: than 20 (above 2 on this scale) for one pixel in 630 (``tests/test_shot_noise.py`` checks
#: that such a measurement does not warn). An 8-bit image saved as floats goes far beyond 5
#: unless it is nearly black.
FAR_OUTSIDE = 4.0


class FarOutsideWarning(UserWarning):
    """A float measurement reaches far outside [0, 1]: likely an 8-bit image saved as floats."""


def warn_if_far_outside(low: float, high: float, source: str, stacklevel: int = 2) -> None:
    """Warn (``FarOutsideWarning``) when a float measurement spanning [low, high] reaches
    more than ``FAR_OUTSIDE`` outside [0, 1]."""
    if low < -FAR_OUTSIDE or high > 1 + FAR_OUTSIDE:
        warnings.warn(f"{source}: values span [{low:.4g}, {high:.4g}], far outside the [0, 1] "
                      f"image scale (8-bit values must be divided by 255)", FarOutsideWarning,
                      stacklevel=stacklevel + 1)


def _to_unit_float(array: np.ndarray, source: str, measurement: bool) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.float32)
    if kind in "iu":
        if array.dtype not in (np.uint8, np.uint16):
            raise UserError(f"{source}: {array.dtype} pixels have no agreed full scale: use "
                            f"uint8 (0-255), uint16 (0-65535) or floats in [0, 1]")
        return (array.astype(np.float64) / np.iinfo(array.dtype).max).astype(np.float32)
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise UserError(f"{source}: contains NaN or infinite values")
    if measurement:
        warn_if_far_outside(float(values.min()), float(values.max()), source, stacklevel=3)
        return values
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise UserError(f"{source}: float values must lie in [0, 1], got [{low:g}, {high:g}]")
    return np.clip(values, 0.0, 1.0)


# -- writing ----------------------------------------------------------------------------------
def check_writable(path: str | Path, suffixes: tuple[str, ...] = WRITABLE_SUFFIXES) -> Path:
    """Fail early (``UserError``) if ``path`` cannot be written: bad suffix, missing or
    read-only folder, or an existing directory in the way. Leaves nothing behind."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"cannot write {path}: use one of {', '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if not folder.is_dir():
        missing = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"cannot write {path}: {folder} {missing}")
    _try_writing_in(folder, f"cannot write {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {path}: file is read-only")
    return path


def check_new_folder(path: str | Path, parents: bool = False) -> Path:
    """Fail early (``UserError``) unless ``path`` is a folder that can be written into: an
    existing folder, or a new one whose parent folder exists (with ``parents``, whose nearest
    existing ancestor is a folder) and takes a new entry. Leaves nothing behind."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"cannot write into {path}: it is a file, not a folder")
    target = path if path.exists() else (path.parent if str(path.parent) else Path("."))
    while parents and not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        missing = "is a file, not a folder" if target.exists() else "does not exist"
        raise UserError(f"cannot create {path}: {target} {missing}")
    _try_writing_in(target, f"cannot write into {path}")
    return path


def _try_writing_in(folder: Path, failure: str) -> None:
    """``UserError(failure: why)`` unless an entry can be made in ``folder``: tried by making and
    removing an empty folder there, since permission bits alone do not tell (for root, or on a
    read-only mount)."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".em-inverse-write-check-"))
    except OSError as exc:
        raise UserError(f"{failure}: {exc.strerror or exc} in {folder}") from None


def atomic_write(path: str | Path, payload: bytes, suffixes: tuple[str, ...] = ()) -> Path:
    """Write ``payload`` to ``path`` atomically; unwritable paths (and, if ``suffixes`` are
    given, other suffixes) are a ``UserError``."""
    path = check_writable(path, suffixes=suffixes)
    try:
        return atomic_write_bytes(path, payload)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def tensor_to_array(x: torch.Tensor) -> np.ndarray:
    """One image (1, C, H, W) or (C, H, W) -> float32 array (H, W) for gray or (H, W, 3)."""
    x = x.detach().to("cpu", torch.float32)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected (1, C, H, W) with C in {{1, 3}}, got {tuple(x.shape)}")
    array = x.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def encode_png(array: np.ndarray, bits: int = 8) -> bytes:
    """Encode an (H, W) or (H, W, 3) float array in [0, 1] as PNG bytes (deterministic).

    Values are clipped to [0, 1] and rounded to ``bits`` (8 or 16) bits per sample.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = 2**bits - 1
    data = np.rint(np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0) * top)
    data = data.astype(">u2" if bits == 16 else np.uint8)
    if data.ndim == 2:
        color_type, height, width = 0, *data.shape
    elif data.ndim == 3 and data.shape[2] == 3:
        color_type, height, width = 2, data.shape[0], data.shape[1]
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {data.shape}")
    rows = data.reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, bits, color_type, 0, 0, 0)
    return (png16.SIGNATURE + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def write_image(path: str | Path, x: torch.Tensor, bits: int = 8) -> Path:
    """Write one image (1, C, H, W) in [0, 1] atomically as ``.png`` (8/16-bit) or ``.npy``.

    PNG values are clipped to [0, 1]; ``.npy`` stores the float32 values (H, W) or (H, W, 3).
    """
    array = tensor_to_array(x)
    if Path(path).suffix.lower() == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, array.astype(np.float32), allow_pickle=False)
        return atomic_write(path, buffer.getvalue(), WRITABLE_SUFFIXES)
    return atomic_write(path, encode_png(array, bits=bits), WRITABLE_SUFFIXES)

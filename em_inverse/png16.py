"""Full-precision reading of the 16-bit PNGs that Pillow narrows to 8 bits: colour (RGB, RGBA) and
gray with alpha. 16-bit gray alone Pillow reads in full and is not handled here.

A PNG's pixel bytes are zlib-compressed rows, each behind a filter type (PNG specification,
section 9) that predicts every byte from the same byte of the pixel to its left (a), above (b)
and above-left (c): None, Sub (a), Up (b), Average ((a + b) // 2) and Paeth (whichever of a, b,
c is nearest a + b - c). Undoing Average and Paeth is sequential along a row, and every row
depends on the one above, so a loop over pixels would take seconds per megapixel in Python.
Every pixel depends only on pixels of the two anti-diagonals before its own, so this decoder
reconstructs one whole anti-diagonal per numpy step: H + W - 1 steps for an H x W image.

An interlaced (Adam7) PNG stores seven reduced images one after the other, each with its own
filtered rows (section 8.2); each is unfiltered on its own and scattered onto its pixel grid.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Samples per pixel of the PNG colour types this decoder reads.
CHANNELS = {2: 3, 4: 2, 6: 4}
#: Largest image read, in pixels: twice Pillow's default ``MAX_IMAGE_PIXELS``, above which Pillow
#: refuses a file as a possible decompression bomb.
MAX_PIXELS = 2 * 89_478_485
#: Adam7's seven passes, in file order: (first row, first column, row step, column step).
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
         (1, 0, 2, 1))


def narrowed_by_pillow(path: str | Path) -> bool:
    """Whether ``path`` is a PNG that Pillow would narrow to 8 bits, one this module reads: 16-bit
    colour or gray + alpha, interlaced or not (read from its IHDR chunk, 26 bytes)."""
    with open(path, "rb") as file:
        # signature (8), IHDR's length and type (8), width and height (8), depth, colour type
        header = file.read(26)
    return (len(header) == 26 and header[:8] == SIGNATURE and header[12:16] == b"IHDR"
            and header[24] == 16 and header[25] in CHANNELS)


def read_png16(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a 16-bit PNG of colour type 2 (RGB), 4 (gray + alpha) or 6 (RGBA), interlaced or
    not.

    Returns (pixels, orientation): pixels a uint16 (H, W, C) array as stored, C = 3, 2 or 4;
    orientation the EXIF orientation of an ``eXIf`` chunk (1 to 8, 1 without one), for the
    caller to apply. Any other or malformed file raises ``ValueError`` with the reason.
    """
    data = Path(path).read_bytes()
    header, compressed, exif = _chunks(data)
    width, height, depth, colour_type, compression, filtering, interlace = header
    if depth != 16 or colour_type not in CHANNELS:
        raise ValueError(f"not a 16-bit PNG of colour type 2, 4 or 6 (depth {depth}, colour "
                         f"type {colour_type})")
    if compression != 0 or filtering != 0 or interlace > 1 or width == 0 or height == 0:
        raise ValueError("invalid PNG header")
    if width * height > MAX_PIXELS:
        raise ValueError(f"{width}x{height} pixels is more than {MAX_PIXELS} (a possible "
                         "decompression bomb)")
    bytes_per_pixel = 2 * CHANNELS[colour_type]
    grids = _pass_grids(height, width, interlaced=interlace == 1)
    sizes = [rows * (1 + columns * bytes_per_pixel) for *_, rows, columns in grids]
    try:  # at most the bytes the header promises: a larger stream is never inflated
        raw = zlib.decompressobj().decompress(compressed, sum(sizes))
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data ({exc})") from None
    if len(raw) < sum(sizes):
        raise ValueError("truncated PNG image data")
    samples = np.empty((height, width, bytes_per_pixel), np.uint8)
    offset = 0
    for (row0, column0, row_step, column_step, rows, columns), size in zip(grids, sizes):
        block = np.frombuffer(raw, np.uint8, size, offset).reshape(rows, size // rows)
        offset += size
        filters = block[:, 0]
        if filters.max() > 4:
            raise ValueError(f"unknown PNG filter type {int(filters.max())}")
        samples[row0::row_step, column0::column_step] = unfilter(
            filters, block[:, 1:].reshape(rows, columns, bytes_per_pixel))
    pixels = samples.view(">u2")  # (H, W, C): samples are big-endian
    return pixels.astype(np.uint16), _orientation(exif)


def _pass_grids(height: int, width: int, interlaced: bool) -> list[tuple[int, ...]]:
    """The pixel grids of the reduced images a PNG stores, in file order, as (first row, first
    column, row step, column step, rows, columns): the whole image if not interlaced, else
    Adam7's non-empty passes (a pass with no pixel stores no bytes, not even filter types)."""
    grids = []
    for row0, column0, row_step, column_step in ADAM7 if interlaced else ((0, 0, 1, 1),):
        rows = max(0, -(-(height - row0) // row_step))  # ceiling division
        columns = max(0, -(-(width - column0) // column_step))
        if rows and columns:
            grids.append((row0, column0, row_step, column_step, rows, columns))
    return grids


def unfilter(filters: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Undo PNG's row filters: ``filters`` (H,) types 0-4, ``filtered`` (H, W, bytes per pixel)
    uint8 -> the reconstructed (H, W, bytes per pixel) uint8 bytes. Pixels outside the image
    (left of the first column, above the first row) count as 0, as the specification says."""
    height, width, _ = filtered.shape
    # one zero row above and one zero column to the left: pixel (r, x) lives at [r + 1, x + 1]
    out = np.zeros((height + 1, width + 1, filtered.shape[2]), np.uint8)
    for diagonal in range(height + width - 1):
        r = np.arange(max(0, diagonal - width + 1), min(height, diagonal + 1))
        x = diagonal - r
        a = out[r + 1, x].astype(np.int16)
        b = out[r, x + 1].astype(np.int16)
        c = out[r, x].astype(np.int16)
        kind = filters[r][:, None]
        predicted = np.select([kind == 1, kind == 2, kind == 3, kind == 4],
                              [a, b, (a + b) // 2, _paeth(a, b, c)], 0)
        out[r + 1, x + 1] = (filtered[r, x] + predicted) & 0xFF
    return out[1:, 1:]


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Paeth's predictor: a, b or c, whichever is nearest a + b - c (ties: a, then b)."""
    to_a, to_b, to_c = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    return np.where((to_a <= to_b) & (to_a <= to_c), a, np.where(to_b <= to_c, b, c))


def _chunks(data: bytes) -> tuple[tuple[int, ...], bytes, bytes | None]:
    """(IHDR fields, the IDAT chunks' bytes joined, the eXIf chunk's bytes or None), read up
    to IEND, checking the signature, that IHDR comes first, and every chunk's length and CRC."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG file")
    position, header, idat, exif = 8, None, [], None
    while True:
        if position + 12 > len(data):
            raise ValueError("truncated PNG file")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated PNG chunk {kind.decode('latin-1')!r}")
        body, (crc,) = data[position + 8:end], struct.unpack(">I", data[end:end + 4])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"corrupt PNG chunk {kind.decode('latin-1')!r} (CRC mismatch)")
        position = end + 4
        if header is None and (kind != b"IHDR" or length != 13):
            raise ValueError("PNG file does not start with a valid IHDR chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IEND":
            return header, b"".join(idat), exif


def _orientation(exif: bytes | None) -> int:
    """The orientation tag (274) of an eXIf chunk's TIFF-structured data; 1 without one, or
    where the chunk cannot be parsed (the pixels are still good: a viewer shows them as stored)."""
    if exif is None:
        return 1
    import warnings

    from PIL import Image

    tags = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data"
            tags.load(exif)
    except Exception:  # noqa: BLE001 - Pillow raises SyntaxError, struct.error, ... on bad data
        return 1
    orientation = tags.get(0x0112, 1)
    return orientation if orientation in range(1, 9) else 1

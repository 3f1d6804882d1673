"""Image I/O: formats, bit depths, alpha, bad files, atomic writes."""
from __future__ import annotations

import os
import struct
import warnings
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from em_inverse.errors import UserError
from em_inverse.image_io import encode_png, read_image, tensor_to_array, write_image


def test_png_roundtrip_8_and_16_bit(tmp_path):
    x = torch.rand(1, 1, 9, 7)
    for bits, tol in ((8, 0.5 / 255), (16, 0.5 / 65535)):
        path = write_image(tmp_path / f"x{bits}.png", x, bits=bits)
        assert iio.imread(path).dtype == (np.uint8 if bits == 8 else np.uint16)
        back = read_image(path)
        assert back.shape == (1, 1, 9, 7) and back.dtype == torch.float32
        assert float((back - x).abs().max()) <= tol + 1e-7


def test_rgb_jpeg_tiff_and_npy_layouts(tmp_path):
    rgb = (np.random.default_rng(0).random((6, 5, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "a.jpg", rgb)
    iio.imwrite(tmp_path / "a.tif", (rgb.astype(np.uint16) * 257))
    np.save(tmp_path / "hwc.npy", rgb / 255.0)
    np.save(tmp_path / "chw.npy", np.moveaxis(rgb / 255.0, -1, 0).astype(np.float32))
    for name in ("a.jpg", "a.tif", "hwc.npy", "chw.npy"):
        assert read_image(tmp_path / name).shape == (1, 3, 6, 5)
    torch.testing.assert_close(read_image(tmp_path / "a.tif"), read_image(tmp_path / "hwc.npy"))


def _png16(pixels: np.ndarray, colour_type: int, filter_of_row=lambda row: row % 5,
           interlaced: bool = False, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG of ``pixels`` (H, W, C) uint16 (colour type 0, 2, 4 or 6) whose row r (of
    each Adam7 pass, if ``interlaced``) is stored behind PNG filter ``filter_of_row(r)`` (0 None,
    1 Sub, 2 Up, 3 Average, 4 Paeth), with an optional eXIf chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    height, width, channels = pixels.shape
    # Adam7's passes: every 8th pixel from (0, 0), then (0, 4), ... (PNG specification 8.2)
    passes = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
              (1, 0, 2, 1)) if interlaced else ((0, 0, 1, 1),)
    rows = b"".join(_filtered_rows(pixels[row0::row_step, column0::column_step], filter_of_row)
                    for row0, column0, row_step, column_step in passes)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + (chunk(b"eXIf", exif) if exif is not None else b"")
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _filtered_rows(pixels: np.ndarray, filter_of_row) -> bytes:
    """The rows of ``pixels`` (H, W, C) uint16 as a PNG stores them: each row's filter type, then
    its big-endian bytes minus the filter's prediction; nothing for an empty image."""
    if pixels.size == 0:
        return b""  # an empty Adam7 pass stores no rows
    height, width, channels = pixels.shape
    raw = pixels.astype(">u2").view(np.uint8).reshape(height, width, 2 * channels).astype(int)
    # the same byte of the pixel to the left, above and above-left (0 outside the image)
    left = np.pad(raw, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    up = np.pad(raw, ((1, 0), (0, 0), (0, 0)))[:-1]
    up_left = np.pad(raw, ((1, 0), (1, 0), (0, 0)))[:-1, :-1]
    guess = left + up - up_left
    to_left, to_up, to_up_left = abs(guess - left), abs(guess - up), abs(guess - up_left)
    paeth = np.where((to_left <= to_up) & (to_left <= to_up_left), left,
                     np.where(to_up <= to_up_left, up, up_left))
    predictions = [0 * raw, left, up, (left + up) // 2, paeth]
    return b"".join(bytes([filter_of_row(r)])
                    + ((raw[r] - predictions[filter_of_row(r)][r]) % 256).astype(np.uint8).tobytes()
                    for r in range(height))


@pytest.mark.parametrize("interlaced, shape",
                         [(False, (11, 9)), (True, (11, 9)), (True, (3, 2))])
@pytest.mark.parametrize("colour_type, channels", [(2, 3), (6, 4), (4, 2)])
def test_16_bit_pngs_keep_their_full_precision_behind_every_row_filter(tmp_path, colour_type,
                                                                      channels, interlaced, shape):
    from PIL import Image

    rng = np.random.default_rng(colour_type)
    pixels = rng.integers(0, 65536, (*shape, channels), dtype=np.uint16)
    # rows cycle through the filters; a 3x2 Adam7 image has empty passes, which store nothing
    (tmp_path / "x.png").write_bytes(_png16(pixels, colour_type, interlaced=interlaced))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = read_image(tmp_path / "x.png")
    expected = pixels[..., :-1] if channels in (2, 4) else pixels  # alpha dropped
    torch.testing.assert_close(x, torch.from_numpy(np.moveaxis(expected, -1, 0) / 65535.0)[None]
                               .float(), rtol=0, atol=1e-7)
    assert [str(w.message).endswith("alpha channel dropped") for w in caught] == \
        [True] * (channels in (2, 4))
    # the file is what it claims to be: Pillow's own decoder reads the same top 8 bits
    with Image.open(tmp_path / "x.png") as image:
        narrowed = np.asarray(image.convert("RGBA" if channels == 4 else "RGB"))
    top_byte = (pixels >> 8).astype(np.uint8)
    assert np.array_equal(narrowed[..., :3], top_byte[..., :3] if channels >= 3
                          else np.repeat(top_byte[..., :1], 3, axis=-1))


def test_a_16_bit_png_is_turned_upright_by_its_exif_chunk(tmp_path):
    from PIL import Image

    pixels = np.zeros((4, 6, 3), np.uint16)
    pixels[:, :2] = 65535  # a white band on the left, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    (tmp_path / "x.png").write_bytes(_png16(pixels, 2, exif=exif.tobytes()[6:]))  # no "Exif\0\0"
    shown = read_image(tmp_path / "x.png")[0, 0]
    assert shown.shape == (6, 4) and bool((shown[:2] == 1).all()) and bool((shown[2:] == 0).all())
    (tmp_path / "bad.png").write_bytes(_png16(pixels, 2, exif=b"not a TIFF header"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a broken eXIf chunk is ignored, as viewers do
        assert read_image(tmp_path / "bad.png").shape == (1, 3, 4, 6)


def test_a_corrupt_16_bit_colour_png_is_a_user_error(tmp_path):
    data = bytearray(_png16(np.zeros((3, 3, 3), np.uint16), 2))
    data[-20] ^= 0xFF  # a byte of the IDAT chunk: its CRC no longer matches
    (tmp_path / "x.png").write_bytes(bytes(data))
    with pytest.raises(UserError, match="cannot read image .*CRC"):
        read_image(tmp_path / "x.png")
    (tmp_path / "cut.png").write_bytes(bytes(data[:40]))
    with pytest.raises(UserError, match="cannot read image .*truncated"):
        read_image(tmp_path / "cut.png")
    huge = bytearray(_png16(np.zeros((1, 1, 3), np.uint16), 2))  # then claim 20000 x 20000
    huge[16:24] = struct.pack(">II", 20000, 20000)
    huge[29:33] = struct.pack(">I", zlib.crc32(bytes(huge[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(huge))
    with pytest.raises(UserError, match="decompression bomb"):
        read_image(tmp_path / "bomb.png")


def test_8_bit_and_16_bit_gray_pngs_read_without_a_warning(tmp_path):
    x = torch.rand(1, 3, 5, 4)
    write_image(tmp_path / "gray.png", x[:, :1], bits=16)
    write_image(tmp_path / "rgb8.png", x, bits=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "gray.png")
        read_image(tmp_path / "rgb8.png")


def test_a_jpeg_is_turned_upright_by_its_exif_orientation(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :10] = 255  # a white band on the left, as stored
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise, as a phone held upright stores it
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    shown = read_image(tmp_path / "phone.jpg")[0, 0]
    assert shown.shape == (40, 20)  # as a viewer shows it
    assert float(shown[:10].mean()) > 0.9 and float(shown[-10:].mean()) < 0.1  # band on top


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tiff_is_turned_upright_by_its_orientation_tag(tmp_path, orientation):
    import tifffile
    from PIL import Image

    stored = (np.random.default_rng(orientation).random((5, 8, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "turned.tif", stored, photometric="rgb",
                     extratags=[(274, "H", 1, orientation, True)])  # 274: Orientation
    shown = read_image(tmp_path / "turned.tif")
    # what Pillow's ImageOps.exif_transpose would do to the stored pixels (one channel at a time,
    # since Pillow holds no 16-bit RGB)
    transpose = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                 6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}.get(orientation)
    channels = [Image.fromarray(stored[..., c]) for c in range(3)]
    if transpose is not None:
        channels = [image.transpose(getattr(Image.Transpose, transpose)) for image in channels]
    expected = np.stack([np.asarray(image) for image in channels]) / 65535.0
    torch.testing.assert_close(shown, torch.from_numpy(expected)[None].float())


def test_alpha_is_dropped_with_a_warning(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    iio.imwrite(tmp_path / "a.png", rgba)
    with pytest.warns(UserWarning, match="alpha"):
        assert read_image(tmp_path / "a.png").shape == (1, 3, 4, 4)


def test_cmyk_files_are_read_as_rgb_not_as_rgb_plus_alpha(tmp_path):
    import tifffile
    from PIL import Image

    rgb = (np.random.default_rng(1).random((6, 5, 3)) * 255).astype(np.uint8)
    # CMYK with no black ink: each ink is 1 - its colour, so RGB comes back exactly
    inks = np.concatenate([255 - rgb, np.zeros((6, 5, 1), np.uint8)], axis=-1)
    tifffile.imwrite(tmp_path / "cmyk.tif", inks, photometric="separated")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "alpha channel dropped"
        tiff, jpeg = read_image(tmp_path / "cmyk.tif"), read_image(tmp_path / "cmyk.jpg")
    torch.testing.assert_close(tiff, torch.from_numpy(rgb / 255.0).permute(2, 0, 1)[None].float())
    with Image.open(tmp_path / "cmyk.jpg") as image:
        expected = np.asarray(image.convert("RGB")) / 255.0  # Pillow's conversion
    torch.testing.assert_close(jpeg, torch.from_numpy(expected).permute(2, 0, 1)[None].float())


def test_black_ink_darkens_every_channel_of_a_cmyk_tiff(tmp_path):
    import tifffile

    inks = np.zeros((2, 2, 4), np.uint16)
    inks[..., 3] = 65535 // 2 + 1  # half black, no colour ink
    tifffile.imwrite(tmp_path / "grey.tif", inks, photometric="separated")
    assert torch.allclose(read_image(tmp_path / "grey.tif"), torch.full((1, 3, 2, 2), 0.5),
                          atol=1e-4)


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "nan", "5d", "range",
                                  "object", "int64", "suffix", "directory"])
def test_bad_inputs_raise_one_clear_user_error(tmp_path, case):
    path = tmp_path / "bad.png"
    if case == "text":
        path.write_text("hello, I am not a PNG")
    elif case == "truncated":
        path.write_bytes(encode_png(np.random.default_rng(0).random((64, 64)))[:120])
    elif case in ("nan", "5d", "range", "object"):
        path = tmp_path / "bad.npy"
        array = {"nan": np.full((4, 4), np.nan), "5d": np.zeros((1, 1, 1, 4, 4)),
                 "range": np.full((4, 4), 255.0), "object": np.array([None, 1]),
                 "int64": np.arange(16, dtype=np.int64).reshape(4, 4)}[case]
        np.save(path, array, allow_pickle=True)
    elif case == "suffix":
        path = tmp_path / "bad.gif"
        path.write_bytes(b"GIF89a")
    elif case == "directory":
        path = tmp_path
    with pytest.raises(UserError) as info:
        read_image(path)
    assert "\n" not in str(info.value)
    assert "allow_pickle" not in str(info.value)  # never advise loading a file unsafely


def test_a_measurement_keeps_its_noise_outside_0_1_but_must_be_finite(tmp_path):
    noisy = np.array([[-0.2, 0.5], [1.3, 0.9]], np.float32)
    np.save(tmp_path / "y.npy", noisy)
    with pytest.raises(UserError, match=r"must lie in \[0, 1\]"):
        read_image(tmp_path / "y.npy")
    assert np.array_equal(read_image(tmp_path / "y.npy", measurement=True)[0, 0].numpy(), noisy)
    np.save(tmp_path / "nan.npy", noisy * np.nan)
    with pytest.raises(UserError, match="NaN"):
        read_image(tmp_path / "nan.npy", measurement=True)


def test_integers_need_a_known_full_scale_and_far_out_measurements_are_flagged(tmp_path):
    np.save(tmp_path / "u16.npy", np.full((2, 2), 65535, np.uint16))
    assert read_image(tmp_path / "u16.npy").max() == 1.0
    np.save(tmp_path / "i32.npy", np.full((2, 2), 255, np.int32))
    with pytest.raises(UserError, match="uint8 .0-255., uint16"):
        read_image(tmp_path / "i32.npy")
    np.save(tmp_path / "scale255.npy", np.full((2, 2), 200.0, np.float32))
    with pytest.warns(UserWarning, match="divided by 255"):
        read_image(tmp_path / "scale255.npy", measurement=True)
    np.save(tmp_path / "noisy.npy", np.array([[-0.9, 1.9]], np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # noise, even strong, is not flagged
        read_image(tmp_path / "noisy.npy", measurement=True)


def test_writes_are_atomic_and_checked(tmp_path):
    x = torch.rand(1, 3, 4, 4)
    path = write_image(tmp_path / "out.png", x)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["out.png"]
    np.testing.assert_allclose(np.load(write_image(tmp_path / "o.npy", x)), tensor_to_array(x))
    with pytest.raises(UserError, match="does not exist"):
        write_image(tmp_path / "no" / "out.png", x)
    with pytest.raises(UserError, match="use one of"):
        write_image(tmp_path / "out.bmp", x)
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="not writable"):
            write_image(locked / "out.png", x)


def test_png_encoding_is_deterministic():
    array = np.random.default_rng(1).random((5, 6, 3))
    assert encode_png(array) == encode_png(array.copy())

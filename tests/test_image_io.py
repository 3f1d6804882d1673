"""Image I/O: formats, bit depths, alpha, bad files, atomic writes."""
from __future__ import annotations

import os
import warnings

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


def test_a_16_bit_colour_png_says_it_is_read_at_8_bits_and_a_gray_one_is_not(tmp_path):
    x = torch.rand(1, 3, 5, 4)
    write_image(tmp_path / "rgb.png", x, bits=16)
    with pytest.warns(UserWarning, match="16-bit colour PNG is read at 8 bits"):
        assert float((read_image(tmp_path / "rgb.png") - x).abs().max()) <= 1 / 255  # truncated
    write_image(tmp_path / "gray.png", x[:, :1], bits=16)
    write_image(tmp_path / "rgb8.png", x, bits=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "gray.png")
        read_image(tmp_path / "rgb8.png")


def test_a_16_bit_gray_png_with_alpha_stays_gray_and_says_it_is_read_at_8_bits(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    samples = np.zeros((3, 4, 2), ">u2")
    samples[..., 0], samples[..., 1] = 40000, 65535  # gray 0.61, opaque
    rows = np.concatenate([np.zeros((3, 1), np.uint8), samples.reshape(3, -1).view(np.uint8)], 1)
    (tmp_path / "la.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 16, 4, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows.tobytes())) + chunk(b"IEND", b""))
    with pytest.warns(UserWarning) as caught:
        x = read_image(tmp_path / "la.png")
    assert x.shape == (1, 1, 3, 4) and torch.allclose(x, torch.tensor(40000 / 65535), atol=1 / 255)
    messages = " ".join(str(w.message) for w in caught)
    assert "16-bit gray + alpha PNG is read at 8 bits" in messages and "alpha" in messages


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

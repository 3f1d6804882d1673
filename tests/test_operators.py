"""Operators: adjointness, ||A||^2, masks (file convention), kernels, noise, degrade."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from em_inverse import operators as op
from em_inverse.errors import UserError
from em_inverse.image_io import write_image

SHAPE = (1, 1, 16, 16)
CASES = {
    "inpaint": dict(mask="random:0.5"),
    "deblur-reflect": dict(kernel="gaussian:1.5"),
    "deblur-small-direct": dict(kernel="gaussian:0.5"),
    "deblur-circular": dict(kernel="motion:5,30", boundary="circular"),
    "superres-x2": dict(factor=2),
    "superres-x4-circular": dict(factor=4, boundary="circular"),
    "denoise": dict(),
}


def build(name, shape=SHAPE, noise=0.05):
    task = name.split("-")[0]
    return op.build_operator(task, shape, noise=noise, generator=torch.Generator().manual_seed(1),
                             **CASES[name])


@pytest.mark.parametrize("name", CASES)
def test_adjoint_matches_autograd_vjp(name):
    """A_adjoint(v) equals the vector-Jacobian product of A computed by autograd."""
    physics = build(name)
    x = torch.randn(2, *SHAPE[1:], requires_grad=True)
    v = torch.randn_like(physics.A(x))
    (vjp,) = torch.autograd.grad(physics.A(x), x, v)
    torch.testing.assert_close(physics.A_adjoint(v), vjp, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels,factor,boundary", [(1, 2, "reflect"), (3, 3, "reflect"),
                                                      (1, 4, "circular")])
def test_superres_adjoint_is_deepinvs_computed_by_forward_convolutions(channels, factor,
                                                                         boundary):
    """The fast adjoint gives deepinv's ``Downsampling.A_adjoint`` to float rounding, and its
    convolution part is deepinv's transposed convolution for any kernel (an asymmetric one
    here, odd and even sizes: the bicubic filter is symmetric and would hide a flip)."""
    from deepinv.physics import Downsampling
    from deepinv.physics.functional import conv_transpose2d

    from em_inverse.operators.physics import _filter_adjoint

    shape = (2, channels, 48, 48)
    physics = op.build_operator("superres", shape, factor=factor, boundary=boundary)
    reference = Downsampling(img_size=shape[1:], filter="bicubic", factor=factor,
                             padding=boundary)
    y = torch.randn(2, channels, 48 // factor, 48 // factor)
    torch.testing.assert_close(physics.A_adjoint(y), reference.A_adjoint(y))
    for size in ((5, 7), (6, 4)):
        kernel = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(0))
        u = torch.randn(shape)
        torch.testing.assert_close(_filter_adjoint(u, kernel, boundary),
                                   conv_transpose2d(u, kernel, padding=boundary))


@pytest.mark.parametrize("channels,size", [(1, (13, 13)), (3, (5, 7)), (1, (6, 4))])
def test_a_separable_kernel_blurs_as_deepinvs_blur_with_two_1d_convolutions(channels, size):
    """A and A^T of a separable (rank-1) kernel, under reflect padding, equal deepinv's ``Blur``
    to float rounding; asymmetric factors of odd and even sizes, since the Gaussian's symmetry
    would hide a flip or a shifted padding."""
    from deepinv.physics import Blur

    from em_inverse.operators.physics import SeparableBlur

    generator = torch.Generator().manual_seed(0)
    column, row = torch.rand(size[0], generator=generator), torch.rand(size[1], generator=generator)
    kernel = torch.outer(column, row)[None, None] / (column.sum() * row.sum())
    shape = (2, channels, 40, 36)
    physics = op.deblurring(kernel, shape, boundary="reflect")
    reference = Blur(filter=kernel, padding="reflect")
    assert isinstance(physics, SeparableBlur)
    x, y = torch.randn(shape), torch.randn(shape)
    torch.testing.assert_close(physics.A(x), reference.A(x))
    torch.testing.assert_close(physics.A_adjoint(y), reference.A_adjoint(y))


def test_a_kernel_that_is_not_separable_or_changes_runs_deepinvs_blur():
    from em_inverse.operators.physics import SeparableBlur

    motion = op.build_operator("deblur", SHAPE, kernel="motion:5,30")
    assert not isinstance(motion, SeparableBlur)
    circular = op.build_operator("deblur", SHAPE, kernel="gaussian:1.5", boundary="circular")
    assert not isinstance(circular, SeparableBlur)  # deepinv's FFT is faster there
    physics = op.build_operator("deblur", SHAPE, kernel="gaussian:1.5")
    assert isinstance(physics, SeparableBlur)
    x = torch.randn(SHAPE)
    physics.update_parameters(filter=motion.filter)
    torch.testing.assert_close(physics.A(x), motion.A(x))  # the new filter, not the factors


@pytest.mark.parametrize("name", CASES)
def test_lipschitz_is_the_squared_operator_norm(name):
    physics = build(name)
    a = torch.stack([physics.A(e.view(SHAPE)).flatten()
                     for e in torch.eye(256)], dim=1).double()
    exact = torch.linalg.matrix_norm(a, ord=2).item() ** 2
    value = op.lipschitz(physics, SHAPE)
    assert exact <= value <= exact * 1.02
    assert physics.task == name.split("-")[0] == op.task_of(physics)


def test_superres_output_is_low_resolution_and_input_high_resolution():
    physics = build("superres-x2")
    assert physics.A(torch.rand(SHAPE)).shape == (1, 1, 8, 8)
    assert op.image_shape_for("superres", (1, 1, 8, 8), factor=2) == SHAPE
    with pytest.raises(UserError, match="multiple"):
        op.build_operator("superres", (1, 1, 15, 16), factor=2)
    for bad in (0, 1, 2.5, "x"):
        with pytest.raises(UserError, match="factor"):
            op.build_operator("superres", SHAPE, factor=bad)


@pytest.mark.parametrize("boundary", ["reflect", "circular"])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_superres_refuses_images_its_bicubic_filter_does_not_fit(factor, boundary):
    smallest = op.physics.smallest_superres_side(factor, boundary)
    assert smallest % factor == 0
    physics = op.build_operator("superres", (1, 1, smallest, 5 * smallest), factor=factor,
                                boundary=boundary)
    x = torch.rand(1, 1, smallest, 5 * smallest)
    assert physics.A_adjoint(physics.A(x)).shape == x.shape
    with pytest.raises(UserError, match=f"at least {smallest}x{smallest}"):
        op.build_operator("superres", (1, 1, smallest - factor, 5 * smallest), factor=factor,
                          boundary=boundary)


def test_mask_file_white_marks_pixels_to_fill(tmp_path):
    """OpenCV/LaMa convention: non-zero = fill (keep = 0); --mask-keeps flips it."""
    marked = torch.zeros(1, 1, 8, 8)
    marked[..., 2:4, 5:7] = 1.0
    path = write_image(tmp_path / "m.png", marked)
    keep = op.mask_from_file(path, (8, 8))
    assert torch.equal(keep, 1 - marked)
    assert torch.equal(op.mask_from_file(path, (8, 8), keeps=True), marked)
    physics = op.build_operator("inpaint", (1, 1, 8, 8), mask=str(path))
    y = physics.A(torch.ones(1, 1, 8, 8))
    assert y[..., 2:4, 5:7].abs().sum() == 0 and y.sum() == 64 - 4
    with pytest.raises(UserError, match="mask"):
        op.build_operator("inpaint", (1, 1, 9, 8), mask=str(path))
    with pytest.raises(UserError, match="needs a mask"):
        op.build_operator("inpaint", (1, 1, 8, 8))


def test_an_integer_npy_mask_is_read_as_labels(tmp_path):
    """0 = observed, any other integer = fill, whatever the integer type's range."""
    labels = np.zeros((8, 8), np.int64)
    labels[2:4, 5:7] = 7
    np.save(tmp_path / "labels.npy", labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labels are not "grey pixels"
        keep = op.mask_from_file(tmp_path / "labels.npy", (8, 8))
    assert torch.equal(keep[0, 0], torch.from_numpy(labels == 0).float())


def test_a_grey_or_empty_mask_file_is_read_with_a_warning(tmp_path):
    """Every non-black pixel is one to fill, so a JPEG's ringing or a soft brush edge widens
    the holes: the reader says how many pixels were grey; and a mask with no hole says so."""
    marked = torch.zeros(1, 1, 8, 8)
    marked[..., 2:4, 2:4] = 1.0
    marked[..., 5, 5] = 0.5  # a grey pixel
    path = write_image(tmp_path / "soft.png", marked)
    with pytest.warns(UserWarning, match="1 pixel.* neither black nor white"):
        keep = op.mask_from_file(path, (8, 8))
    assert keep.sum() == 64 - 5
    empty = write_image(tmp_path / "empty.png", torch.zeros(1, 1, 8, 8))
    with pytest.warns(UserWarning, match="marks no pixel to fill"):
        assert op.mask_from_file(empty, (8, 8)).all()
    binary = write_image(tmp_path / "binary.png", (marked == 1).float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op.mask_from_file(binary, (8, 8))


def test_generated_masks_are_seeded_and_sized():
    from em_inverse.operators.masks import MAX_STROKES

    def gen(seed):
        return torch.Generator().manual_seed(seed)

    shape = (32, 48)
    random = op.random_mask(shape, 0.8, gen(0))
    assert random.shape == (1, 1, *shape) and abs(float(random.mean()) - 0.2) < 0.05
    assert torch.equal(random, op.random_mask(shape, 0.8, gen(0)))
    assert not torch.equal(random, op.random_mask(shape, 0.8, gen(1)))
    box = op.box_mask(shape)
    assert float((1 - box).sum()) == 16 * 24
    assert float((1 - op.parse_mask("box:1,2,3,4", shape)).sum()) == 12
    strokes = op.stroke_mask(shape, gen(3), strokes=3)
    assert 0 < float((1 - strokes).mean()) < 0.9
    assert torch.equal(strokes, op.parse_mask("strokes:3", shape, gen(3)))
    for bad in ("random:1.5", "box:0,0,40,4", "random:x", "nothing-here.png", "box:nan,0,4,4",
                "box:1.5,0,4,4", "strokes:inf", "strokes:2.5", f"strokes:{MAX_STROKES + 1}"):
        with pytest.raises(UserError):
            op.parse_mask(bad, shape, gen(0))


def test_a_mask_has_holes_when_most_missing_pixels_have_no_observed_neighbour():
    """Scattered missing pixels (even 80% of them) are filled from their neighbours; boxes
    and brush strokes are solid holes."""
    from em_inverse.operators.masks import HOLE_SHARE, has_holes, hole_share

    g = torch.Generator().manual_seed(0)
    assert hole_share(op.random_mask((256, 256), 0.5, g)) < 0.01
    assert not has_holes(op.random_mask((256, 256), 0.8, g))
    assert hole_share(op.box_mask((256, 256), (64, 64, 64, 64))) == pytest.approx((62 / 64)**2)
    assert has_holes(op.box_mask((28, 28), (8, 8, 12, 12)))  # 10x10 of 12x12 inside
    assert has_holes(op.stroke_mask((256, 256), g))  # the default brush: 16 px
    # brush strokes cross over near 5 px: 4-px strokes are mostly edge, 8-px ones mostly hole
    thin, wide = (hole_share(op.stroke_mask((256, 256), torch.Generator().manual_seed(0),
                                            width=w)) for w in (4, 8))
    assert thin == pytest.approx(0.41, abs=0.01) and wide == pytest.approx(0.71, abs=0.01)
    assert hole_share(torch.ones(1, 1, 8, 8)) == 0.0
    line = torch.ones(1, 1, 16, 16)
    line[..., 8, :] = 0  # a one-pixel scratch: every missing pixel touches observed ones
    assert hole_share(line) == 0.0 and HOLE_SHARE == 0.5


def test_mask_and_kernel_tensors_are_checked_when_the_operator_is_built():
    shape = (2, 1, 8, 8)
    keep = torch.ones(8, 8)
    keep[2:4, 2:4] = 0
    assert op.build_operator("inpaint", shape, mask=keep).mask.shape == (1, 1, 8, 8)
    assert op.build_operator("inpaint", shape, mask=keep.bool()).mask.shape == (1, 1, 8, 8)
    per_image = torch.stack([keep, keep.flip(0)])[:, None]
    assert op.build_operator("inpaint", shape, mask=per_image).mask.shape == shape
    for bad, message in ((keep * 255, "only 0 .fill. and 1"), (keep * np.nan, "only 0"),
                         (keep.to(torch.uint8), "float or bool"),
                         (keep.expand(3, 8, 8), "does not fit")):
        with pytest.raises(UserError, match=message):
            op.build_operator("inpaint", shape, mask=bad)
    box = torch.full((5, 5), 1 / 25)
    assert op.build_operator("deblur", shape, kernel=box).filter.shape == (1, 1, 5, 5)
    for bad in (torch.ones(1, 3, 5, 5), box * np.nan, -box, torch.ones(5, 5, dtype=torch.int64)):
        with pytest.raises(UserError, match="kernel tensor"):
            op.build_operator("deblur", shape, kernel=bad)


def test_degrade_says_when_the_operator_was_built_for_other_images():
    physics = op.build_operator("inpaint", (1, 1, 16, 16), mask="random:0.5")
    with pytest.raises(UserError, match="does not fit images of shape"):
        op.degrade(torch.rand(1, 1, 32, 32), physics)
    with pytest.raises(UserError, match="generator must be a torch.Generator"):
        op.degrade(torch.rand(1, 1, 16, 16), physics, 5)


def test_kernels_are_normalised_and_parsed(tmp_path):
    g = op.parse_kernel("gaussian:2")
    assert g.shape == (1, 1, 13, 13) and abs(float(g.sum()) - 1) < 1e-6
    torch.testing.assert_close(g, g.flip(-1).flip(-2))
    m = op.parse_kernel("motion:9,0")
    assert abs(float(m.sum()) - 1) < 1e-6
    assert float(m[0, 0, m.shape[-2] // 2].sum()) > 0.99  # horizontal: mass on the centre row
    np.save(tmp_path / "k.npy", np.ones((3, 5)))
    k = op.parse_kernel(str(tmp_path / "k.npy"))
    assert k.shape == (1, 1, 3, 5) and abs(float(k.sum()) - 1) < 1e-6
    np.save(tmp_path / "counts.npy", np.ones((3, 5), np.int64))  # integer weights: any scale
    torch.testing.assert_close(op.parse_kernel(str(tmp_path / "counts.npy")), k)
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    for bad in ("gaussian:-1", "gaussian:abc", "motion:", "motion:0.5", "blob:3", "",
                str(tmp_path / "nan.npy")):
        with pytest.raises(UserError):
            op.parse_kernel(bad)
    with pytest.raises(UserError, match="no such kernel file"):
        op.parse_kernel(str(tmp_path / "missing.npy"))


def test_degrade_is_seeded_and_noise_has_the_requested_sigma():
    x = torch.full((1, 1, 64, 64), 0.5)
    physics = op.build_operator("denoise", x.shape, noise=0.1)
    y1 = op.degrade(x, physics, torch.Generator().manual_seed(5))
    y2 = op.degrade(x, physics, torch.Generator().manual_seed(5))
    assert torch.equal(y1, y2)
    assert abs(float((y1 - x).std()) - 0.1) < 0.01
    inpaint = op.build_operator("inpaint", x.shape, noise=0.1, mask="box")
    y = op.degrade(x, inpaint, torch.Generator().manual_seed(5))
    assert float(y[inpaint.mask.expand_as(y) == 0].abs().max()) == 0.0
    with pytest.raises(UserError, match="noise"):
        op.build_operator("denoise", x.shape, noise=-0.1)
    with pytest.raises(UserError, match="unknown operator"):
        op.build_operator("dehaze", x.shape)


def test_noise_estimate_recovers_sigma_even_with_holes():
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.2, 0.8, 128).view(1, 1, 1, 128).expand(1, 1, 128, 128)
    y = ramp + 0.05 * torch.randn(1, 1, 128, 128, generator=g)
    assert abs(float(op.estimate_noise_sigma(y)) - 0.05) < 0.005
    for keep in (op.random_mask((128, 128), 0.5, g), op.box_mask((128, 128))):
        assert abs(float(op.estimate_noise_sigma(y * keep, keep)) - 0.05) < 0.006
    assert float(op.estimate_noise_sigma(ramp.contiguous())) == pytest.approx(op.MIN_SIGMA)


def fine_texture(size=96):
    """A clean image made of fine oscillations: all detail, no noise."""
    r = torch.arange(size, dtype=torch.float32)
    rows, cols = r.view(-1, 1), r.view(1, -1)
    return (0.5 + 0.2 * torch.sin(2.1 * cols + 0.3 * rows) + 0.15 * torch.sin(1.7 * rows)
            ).view(1, 1, size, size)


@pytest.mark.parametrize("sigma", [0.0, 0.01, 0.05])
def test_noise_estimate_does_not_read_fine_texture_as_noise(sigma):
    g = torch.Generator().manual_seed(1)
    y = fine_texture() + sigma * torch.randn(1, 1, 96, 96, generator=g)
    level = max(sigma, op.MIN_SIGMA)  # the estimate's floor
    assert float(op.estimate_noise_sigma(y)) == pytest.approx(level, rel=0.15)
    # the wavelet estimate it replaced reads the texture as noise
    assert float(op.wavelet_noise_sigma(y)) > 1.25 * level


@pytest.mark.parametrize("sigma", [0.0, 0.01])
def test_with_scattered_missing_pixels_the_estimate_uses_the_flat_windows_left(sigma):
    """Half fine texture, half a gentle ramp, 50% of the pixels missing at random: no 7 x 7
    patch is whole, and the 2 x 2 windows whose gradients noise explains lie on the ramp."""
    g = torch.Generator().manual_seed(1)
    clean = fine_texture()
    clean[..., :48] = 0.5 + 0.1 * torch.linspace(0, 1, 96).view(1, 1, 96, 1)
    y = clean + sigma * torch.randn(1, 1, 96, 96, generator=g)
    keep = op.random_mask((96, 96), 0.5, g)
    level = max(sigma, op.MIN_SIGMA)
    assert float(op.estimate_noise_sigma(y * keep, keep)) == pytest.approx(level, rel=0.15)
    assert float(op.wavelet_noise_sigma(y * keep, keep)) > 1.2 * level
    # texture everywhere: no flat window; the estimate is capped by the plain wavelet one
    textured = fine_texture() + sigma * torch.randn(1, 1, 96, 96, generator=g)
    assert (float(op.estimate_noise_sigma(textured * keep, keep))
            <= float(op.wavelet_noise_sigma(textured * keep, keep)))


def test_noise_estimate_ignores_clipped_regions_and_works_per_channel():
    g = torch.Generator().manual_seed(2)
    dark = torch.linspace(-0.3, 0.7, 128).view(1, 1, 1, 128).expand(1, 3, 128, 128)
    sigmas = torch.tensor([0.02, 0.03, 0.04]).view(1, 3, 1, 1)
    y = (dark + sigmas * torch.randn(1, 3, 128, 128, generator=g)).clamp(0, 1)
    rms = float(sigmas.square().mean().sqrt())  # one level per image: the channels' RMS
    assert float(op.estimate_noise_sigma(y)) == pytest.approx(rms, rel=0.1)
    batch = torch.cat([y, torch.full_like(y, 0.5)])
    assert op.estimate_noise_sigma(batch).tolist() == pytest.approx([rms, op.MIN_SIGMA],
                                                                     rel=0.1)


def test_noise_estimate_of_tiny_images_falls_back_to_the_wavelet_estimate():
    y = 0.5 + 0.1 * torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(op.estimate_noise_sigma(y), op.wavelet_noise_sigma(y))


def test_fidelity_value_and_gradient():
    physics = build("deblur-reflect")
    x = torch.rand(3, *SHAPE[1:], requires_grad=True)
    y = torch.rand(3, *SHAPE[1:])
    fid = op.GaussianFidelity(physics, y, torch.tensor([0.1, 0.2, 0.3]))
    value, grad = fid.value_and_grad(x)
    expected = 0.5 * ((physics.A(x) - y) ** 2).flatten(1).sum(1) / torch.tensor(
        [0.1, 0.2, 0.3]) ** 2
    torch.testing.assert_close(value, expected)
    (auto,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(grad, auto, rtol=1e-4, atol=1e-4)

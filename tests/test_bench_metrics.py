"""Benchmark metrics and test images: PSNR/SSIM on a common region, the crop rule, the split."""
from __future__ import annotations

import math
import platform

import numpy as np

import pytest
import torch

from em_inverse.bench import images, measure
from em_inverse.bench.metrics import psnr, ssim
from em_inverse.training import datasets


def test_psnr_of_known_error_is_10_log10_of_one_over_mse():
    truth = torch.full((1, 1, 48, 48), 0.5)
    sign = torch.ones_like(truth)
    sign[..., ::2, :] = -1
    estimate = truth + 0.1 * sign  # MSE exactly 0.01 -> 20 dB
    assert psnr(estimate, truth, border=0) == pytest.approx(20.0, abs=1e-5)
    assert psnr(estimate, truth, border=8) == pytest.approx(20.0, abs=1e-5)


def test_psnr_and_ssim_ignore_the_border():
    truth = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    estimate = truth.clone()
    estimate[..., :16, :] = 0.0  # damage only inside the 16-pixel border
    estimate[..., :, -16:] = 1.0
    estimate[..., 16:24, 16:24] = truth[..., 16:24, 16:24]
    assert math.isinf(psnr(estimate, truth, border=16))
    assert ssim(estimate, truth, border=16) == pytest.approx(1.0)
    assert psnr(estimate, truth, border=0) < 15


def test_psnr_clips_the_estimate_to_the_unit_range():
    truth = torch.ones(1, 1, 8, 8)
    assert math.isinf(psnr(truth + 0.3, truth, border=0))


def test_ssim_drops_with_noise_and_handles_28x28_images():
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(1, 1, 28, 28, generator=g)
    noisy = truth + 0.2 * torch.randn(truth.shape, generator=g)
    assert ssim(truth, truth, border=0) == pytest.approx(1.0)
    assert ssim(noisy, truth, border=0) < 0.9


def test_metrics_reject_a_border_that_leaves_nothing():
    x = torch.zeros(1, 1, 28, 28)
    with pytest.raises(ValueError, match="border"):
        psnr(x, x, border=16)


def test_crop_rule_keeps_real_pixels_and_multiples_of_eight():
    crops = {item.name: tuple(item.image.shape) for item in images.load_test_images(1, 256)}
    assert crops == {"camera": (1, 1, 256, 256), "coins": (1, 1, 256, 256),
                     "moon": (1, 1, 256, 256), "page": (1, 1, 184, 256),
                     "text": (1, 1, 168, 256), "chelsea-gray": (1, 1, 256, 256)}
    (chelsea,) = images.load_test_images(3, 256)
    assert chelsea.name == "chelsea" and chelsea.image.shape == (1, 3, 256, 256)
    assert 0.0 <= float(chelsea.image.min()) and float(chelsea.image.max()) <= 1.0


def test_benchmark_never_uses_training_images():
    test_names = set(images.GRAY_TEST_IMAGES) | set(images.COLOUR_TEST_IMAGES)
    assert test_names == set(datasets.PUBLIC_TEST_IMAGES)  # SPEC 6, all of them
    assert not test_names & set(datasets.TRAINING_IMAGES)  # the images the priors learned from
    with pytest.raises(ValueError, match="not a public test image"):
        images.load_test_image("coffee")


def test_fashion_loader_reads_the_t10k_split_or_skips():
    if not images.fashion_available():
        with pytest.raises(FileNotFoundError):
            images.load_fashion_images(2)
        pytest.skip("Fashion-MNIST t10k not installed")
    items = images.load_fashion_images(3)
    assert [i.name for i in items] == ["t10k-0000", "t10k-0001", "t10k-0002"]
    assert items[0].image.shape == (1, 1, 28, 28) and float(items[0].image.max()) <= 1.0


def test_fashion_loader_honours_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(images.FASHION_DIR_ENV, str(tmp_path))
    assert not images.fashion_available()


@pytest.mark.parametrize("chains", [4, 8, 16])
def test_exact_posterior_draws_cover_90_percent_of_truths_with_the_predictive_interval(chains):
    """A perfect sampler: the truth and the chains are independent draws of one posterior per
    pixel. The n-draw predictive interval covers 90% for any n; read as a Gaussian std, the
    chains' spread covers less (0.835 for 8 chains), so that column cannot grade a sampler."""
    from em_inverse.bench.calibration import interval_coverage

    rng = np.random.default_rng(0)
    pixels = 200_000
    centre, spread = rng.uniform(0, 1, pixels), rng.uniform(0.01, 0.2, pixels)
    truth = centre + spread * rng.standard_normal(pixels)
    draws = centre + spread * rng.standard_normal((chains, pixels))
    mean, std = draws.mean(0), draws.std(0, ddof=1)
    assert interval_coverage(mean, std, truth, 0.9, draws=chains) == pytest.approx(0.90, abs=0.005)
    expected = {4: 0.762, 8: 0.835, 16: 0.869}[chains]
    assert interval_coverage(mean, std, truth, 0.9) == pytest.approx(expected, abs=0.005)


def test_calibration_pools_the_missing_pixels_inside_the_border_for_inpainting():
    from em_inverse.bench.calibration import _region
    from em_inverse.bench.tasks import natural_tasks

    x = torch.rand(1, 1, 32, 32)
    for task in natural_tasks():
        if task.name not in ("inpaint-50", "denoise-25"):
            continue
        physics, _ = task.simulate(x, seed=0)
        region = _region(task, x, physics, border=4)
        assert not region[..., :4, :].any() and not region[..., -4:, :].any()
        assert not region[..., :4].any() and not region[..., -4:].any()
        inside = region[..., 4:-4, 4:-4]
        if task.family == "inpaint":
            missing = physics.A(torch.ones_like(x))[..., 4:-4, 4:-4] < 0.5
            assert torch.equal(inside, missing) and 0.4 < missing.float().mean() < 0.6
        else:
            assert inside.all()


@pytest.mark.skipif(not measure._reset_peak_rss() or platform.libc_ver()[0] != "glibc",
                    reason="needs Linux's resettable VmHWM and glibc's heap")
def test_peak_memory_of_a_small_call_after_a_large_one_counts_its_own_allocation():
    """The speed suite's pattern: a large measured call, then a small one. The large call's
    freed blocks stay resident in the C heap below a block that is still alive; the small
    call reuses them, and without a trim its peak above the baseline read 0."""
    cpu = torch.device("cpu")
    with measure.PeakMemory(cpu) as large:
        torch.ones(2**20)  # one freed 4 MiB block: glibc now serves such blocks from its heap
        blocks = [torch.ones(2**20) for _ in range(64)]  # 256 MiB at once
        alive = torch.ones(2**20)  # allocated above them, it keeps the heap from shrinking
        del blocks
    with measure.PeakMemory(cpu) as small:
        blocks = [torch.ones(2**20) for _ in range(16)]  # 64 MiB
        del blocks
    del alive
    assert 240 < large.mib < 320
    assert 48 < small.mib < 128


@pytest.mark.parametrize("ours", [4, 12])  # 12: past tab10's ten colours
def test_every_method_of_a_psnr_chart_has_its_own_look_and_oracles_are_hatched(ours):
    from em_inverse.bench.report import bar_styles

    prior = [f"em-inverse {k}" for k in range(ours)]
    baselines = ["wiener (oracle)", "tv (oracle)", "nlm", "wavelet", "biharmonic", "bicubic"]
    styles = bar_styles(baselines + prior, prior, {"wiener (oracle)", "tv (oracle)"})
    looks = {(tuple(s["color"]), s.get("hatch")) for s in styles.values()}
    assert len(looks) == len(baselines) + ours
    assert [m for m, s in styles.items() if s.get("hatch")] == ["wiener (oracle)", "tv (oracle)"]
    assert not {tuple(styles[m]["color"]) for m in prior} & \
        {tuple(styles[m]["color"]) for m in baselines}  # ours never wear a baseline's colour

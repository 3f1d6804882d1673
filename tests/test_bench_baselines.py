"""Offline baselines: each one improves on the degraded input on a simple case."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from em_inverse.bench.baselines import (BASELINES, Problem, baselines_for, bicubic,
                                        sampling_grid)
from em_inverse.bench.images import load_test_image
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import natural_tasks

TASKS = {t.name: t for t in natural_tasks()}
BORDER = 8


@pytest.fixture(scope="module")
def image():
    return load_test_image("camera", 64).image


def _case(image, name):
    task = TASKS[name]
    physics, y = task.simulate(image, seed=3)
    return physics, y, Problem(task.family, task.sigma, tuple(image.shape), BORDER)


FAST = {"tv_oracle": {"iterations": 60, "weights": (1e-3, 1e-2)},
        "wiener_oracle": {"iterations": 40}}


@pytest.mark.parametrize("name", ["denoise-25", "inpaint-50", "deblur-gauss", "deblur-motion"])
def test_every_baseline_beats_the_measurement(image, name):
    physics, y, problem = _case(image, name)
    before = psnr(y, image, BORDER)
    for baseline in baselines_for(problem.family):
        if not baseline.available:
            continue
        options = FAST.get(baseline.fn.__name__, {})
        estimate = baseline.fn(y, physics, problem, image if baseline.oracle else None,
                               **options)
        assert estimate.shape == image.shape
        assert psnr(estimate, image, BORDER) > before + 1.0, baseline.label


@pytest.mark.parametrize("factor", [2, 4])
def test_bicubic_follows_the_operator_sampling_grid(image, factor):
    physics, y, problem = _case(image, f"superres-x{factor}")
    offset_y, step_y, offset_x, step_x = sampling_grid(physics, problem.image_shape)
    assert step_y == pytest.approx(factor, abs=1e-3) and step_x == pytest.approx(factor, abs=1e-3)
    naive = F.interpolate(y, scale_factor=factor, mode="nearest")
    estimate = bicubic(y, physics, problem)
    assert estimate.shape == image.shape
    assert psnr(estimate, image, BORDER) > psnr(naive, image, BORDER) + 1.0


def test_oracle_baselines_are_labelled_and_every_family_has_one():
    for family in ("denoise", "inpaint", "deblur", "superres"):
        assert baselines_for(family)
    oracles = {b.label for b in BASELINES if b.oracle}
    assert oracles == {"wiener (oracle)", "tv (oracle)"}
    assert all(not b.oracle for b in BASELINES if b.name in ("nlm", "wavelet", "biharmonic",
                                                             "bicubic"))


def test_simulation_is_reproducible_and_shared(image):
    for task in natural_tasks():
        _, y1 = task.simulate(image, seed=7)
        _, y2 = task.simulate(image, seed=7)
        _, y3 = task.simulate(image, seed=8)
        assert torch.equal(y1, y2)
        if task.sigma > 0 or task.missing:
            assert not torch.equal(y1, y3)

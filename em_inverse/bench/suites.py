"""The four suites of SPEC 7 and ``run_suite``: what each one measures, on which images.

- ``natural``: the public test images of SPEC 6 (gray: camera, coins, moon, page, text and
  chelsea converted to gray; colour: chelsea), 256x256 centre crops (see ``images``), every
  natural task of ``tasks.natural_tasks``; priors ``natural-gray`` / ``natural-rgb``.
  Quick: one gray and one colour 32x32 crop.
- ``fashion``: the first Fashion-MNIST t10k images (28x28): 500 for the box hole (issue 4's
  target), 100 for every other task; prior ``fashion-mnist``. Quick: 2 images. Skipped
  cleanly when the data set is absent.
- ``speed``: see ``bench.speed``. ``calibration``: see ``bench.calibration``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from em_inverse.bench.common import RESULTS_DIR, SuiteResult, SuiteSettings, say
from em_inverse.bench.images import (COLOUR_TEST_IMAGES, GRAY_TEST_IMAGES, fashion_available,
                                     fashion_dir, load_fashion_images, load_test_images)
from em_inverse.bench.tasks import fashion_tasks, natural_tasks
from em_inverse.devices import resolve_device

NATURAL_SIZE, QUICK_SIZE = 256, 32
NATURAL_BORDER, QUICK_BORDER = 16, 4
FASHION_BOX_IMAGES, FASHION_IMAGES, FASHION_QUICK_IMAGES = 500, 100, 2


def natural(settings: SuiteSettings) -> SuiteResult:
    """Every natural task on the gray and colour public test images."""
    from em_inverse.bench.quality import Group, run_quality

    size = QUICK_SIZE if settings.quick else NATURAL_SIZE
    border = QUICK_BORDER if settings.quick else NATURAL_BORDER
    limit = 1 if settings.quick else settings.limit
    groups = [Group("gray", load_test_images(1, size, limit), "natural-gray"),
              Group("colour", load_test_images(3, size, limit), "natural-rgb")]
    notes = [f"images: gray {', '.join(GRAY_TEST_IMAGES)} and chelsea-gray; colour "
             f"{', '.join(COLOUR_TEST_IMAGES)} (public TEST images of SPEC 6, never trained on); "
             f"centre crops of at most {size}x{size} (a shorter side keeps its full length "
             f"rounded down to a multiple of 8: page and text are not square)"]
    return run_quality("natural", "Natural images", groups, natural_tasks(), border, settings,
                       notes)


def fashion(settings: SuiteSettings) -> SuiteResult:
    """The same task families on Fashion-MNIST t10k (28x28); skipped without the data."""
    from em_inverse.bench.quality import Group, run_quality

    if not fashion_available():
        return SuiteResult("fashion", skipped=f"Fashion-MNIST t10k not found in {fashion_dir()}")
    if settings.quick:
        count, per_task = FASHION_QUICK_IMAGES, {}
    else:
        count = settings.limit or FASHION_BOX_IMAGES
        per_task = {"inpaint-box": min(count, FASHION_BOX_IMAGES),
                    None: min(count, FASHION_IMAGES)}
    group = Group("fashion", load_fashion_images(count), "fashion-mnist", (28, 28), per_task)
    notes = [f"images: Fashion-MNIST t10k (the test split), the first {count} images "
             f"(box hole: {per_task.get('inpaint-box', count)}, other tasks: "
             f"{per_task.get(None, count)})"]
    return run_quality("fashion", "Fashion-MNIST (t10k)", [group], fashion_tasks(), 0, settings,
                       notes)


def speed(settings: SuiteSettings) -> SuiteResult:
    from em_inverse.bench.speed import run_speed

    return run_speed(settings)


def calibration(settings: SuiteSettings) -> SuiteResult:
    from em_inverse.bench.calibration import run_calibration

    return run_calibration(settings)


SUITES: dict[str, Callable[[SuiteSettings], SuiteResult]] = {
    "natural": natural, "fashion": fashion, "speed": speed, "calibration": calibration}


def run_suite(name: str, *, quick: bool = False, out: str | Path | None = None,
              device: str = "auto", seed: int = 0, prior: str | None = None,
              limit: int | None = None, quiet: bool = False, command: str = "") -> SuiteResult:
    """Run suite ``name`` and write its Markdown table, CSV and PNG plots under ``out``
    (default ``benchmarks/results/NAME``, or ``NAME-cuda`` on a GPU, relative to the current
    folder). Returns a :class:`SuiteResult`."""
    from em_inverse.errors import UserError

    if name not in SUITES:
        raise UserError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")
    torch_device = resolve_device(device)
    if out is None:  # GPU results are committed beside the CPU ones, not over them
        out = RESULTS_DIR / (name if torch_device.type == "cpu" else f"{name}-{torch_device.type}")
    settings = SuiteSettings(quick=quick, out=Path(out), device=torch_device, seed=seed,
                             prior=prior,
                             limit=limit, quiet=quiet,
                             command=command or _command(name, quick, out, prior, limit, seed))
    start = time.perf_counter()
    result = SUITES[name](settings)
    result.seconds = time.perf_counter() - start
    if result.skipped:
        say(settings, f"[{name}] skipped: {result.skipped}")
    return result


def _command(name, quick, out, prior, limit, seed) -> str:
    parts = ["em-inverse bench", name]
    if quick:
        parts.append("--quick")
    if out:
        parts += ["--out", str(out)]
    if prior:
        parts += ["--prior", str(prior)]
    if limit:
        parts += ["--limit", str(limit)]
    if seed:
        parts += ["--seed", str(seed)]
    return " ".join(parts)

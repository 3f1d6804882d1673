"""The four suites of SPEC 7 and ``run_suite``: what each one measures, on which images.

- ``natural``: the public test images of SPEC 6 (gray: camera, coins, moon, page, text and
  chelsea converted to gray; colour: chelsea), 256x256 centre crops (see ``images``), every
  natural task of ``tasks.natural_tasks``; priors ``natural-gray`` / ``natural-rgb``.
  Quick: one gray and one colour 32x32 crop. ``--groups gray`` runs the gray images only
  (e.g. while no ``natural-rgb`` prior exists); ``--size`` changes the crop size.
- ``fashion``: the first Fashion-MNIST t10k images (28x28): 500 for the box hole (issue 4's
  target), 100 for every other task; prior ``fashion-mnist``. Quick: 2 images. Skipped
  cleanly when the data set is absent.
- ``speed``: see ``bench.speed``. ``calibration``: see ``bench.calibration``.

The selection and budget options (``--tasks``, ``--methods``, ``--groups``, ``--extra-prior``,
``--deepinv-steps``; ``--size`` for ``natural``) apply to the quality suites,
``--methods`` / ``--groups`` / ``--posterior-steps`` / ``--posterior-chains`` to ``calibration``
too (its groups: ``fashion``, ``natural``; its methods: ``posterior``, ``anneal``); elsewhere
they are a ``UserError``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from em_inverse.bench.common import RESULTS_DIR, SuiteResult, SuiteSettings, say
from em_inverse.bench.images import (COLOUR_TEST_IMAGES, GRAY_TEST_IMAGES, fashion_available,
                                     fashion_dir, load_fashion_images, load_test_images)
from em_inverse.bench.tasks import fashion_tasks, natural_tasks
from em_inverse.devices import resolve_device
from em_inverse.errors import UserError
from em_inverse.image_io import check_new_folder

NATURAL_SIZE, QUICK_SIZE = 256, 32
NATURAL_BORDER, QUICK_BORDER = 16, 4
FASHION_BOX_IMAGES, FASHION_IMAGES, FASHION_QUICK_IMAGES = 500, 100, 2


def natural(settings: SuiteSettings) -> SuiteResult:
    """Every natural task on the gray and colour public test images."""
    from em_inverse.bench.quality import Group, run_quality

    border = QUICK_BORDER if settings.quick else NATURAL_BORDER
    size = settings.size or (QUICK_SIZE if settings.quick else NATURAL_SIZE)
    if size < 2 * border + 16:
        raise UserError(f"--size {size} leaves too few pixels inside the {border}-pixel "
                        f"metric border: use at least {2 * border + 16}")
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


QUALITY_SUITES = ("natural", "fashion")


def run_suite(name: str, *, quick: bool = False, out: str | Path | None = None,
              device: str = "auto", seed: int = 0, prior: str | None = None,
              limit: int | None = None, quiet: bool = False, command: str = "",
              tasks: Sequence[str] | None = None, methods: Sequence[str] | None = None,
              groups: Sequence[str] | None = None, size: int | None = None,
              posterior_steps: int | None = None, posterior_chains: int | None = None,
              deepinv_steps: int | None = None,
              extra_priors: Sequence[str | tuple[str, str]] = ()) -> SuiteResult:
    """Run suite ``name`` and write its Markdown table, CSV and PNG plots under ``out``
    (default ``benchmarks/results/NAME``, or ``NAME-cuda`` on a GPU, relative to the current
    folder). Quality suites (and calibration, see the module docstring): ``tasks`` /
    ``methods`` / ``groups`` (names as in the tables), ``size`` (natural crop), the prior
    methods' budget, and ``extra_priors`` (``"LABEL=PATH"`` or ``(label, path)``:
    ``em-inverse MAP [LABEL]`` and ``em-inverse HQS [LABEL]`` rows each). Returns a
    :class:`SuiteResult`."""
    if name not in SUITES:
        raise UserError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")
    extras = tuple(parse_extra_prior(e) for e in extra_priors)
    with_calibration = QUALITY_SUITES + ("calibration",)
    where = {"--tasks": (tasks, QUALITY_SUITES), "--methods": (methods, with_calibration),
             "--groups": (groups, with_calibration), "--size": (size, ("natural",)),
             "--deepinv-steps": (deepinv_steps, QUALITY_SUITES),
             "--extra-prior": (extras, QUALITY_SUITES),
             "--posterior-steps": (posterior_steps, with_calibration),
             "--posterior-chains": (posterior_chains, with_calibration)}
    misplaced = [f"{option} (only for {', '.join(suites)})"
                 for option, (value, suites) in where.items() if value and name not in suites]
    if misplaced:
        raise UserError(f"not an option of the {name} suite: {'; '.join(misplaced)}")
    torch_device = resolve_device(device)
    if out is None:  # GPU results are committed beside the CPU ones, not over them
        out = RESULTS_DIR / (name if torch_device.type == "cpu" else f"{name}-{torch_device.type}")
    check_new_folder(out, parents=True)  # before minutes of work, not at the final write
    settings = SuiteSettings(
        quick=quick, out=Path(out), device=torch_device, seed=seed, prior=prior, limit=limit,
        quiet=quiet, command=command,
        tasks=_names(tasks), methods=_names(methods), groups=_names(groups), size=size,
        posterior_steps=posterior_steps, posterior_chains=posterior_chains,
        deepinv_steps=deepinv_steps, extra_priors=extras)
    settings.command = command or _command(name, settings)
    start = time.perf_counter()
    result = SUITES[name](settings)
    result.seconds = time.perf_counter() - start
    if result.skipped:
        say(settings, f"[{name}] skipped: {result.skipped}")
    return result


def parse_extra_prior(value: str | tuple[str, str]) -> tuple[str, str]:
    """``"LABEL=PATH"`` (or a pair) -> ``(label, path)``; a ``UserError`` if malformed."""
    if isinstance(value, str):
        label, _, source = value.partition("=")
    else:
        label, source = value
    label, source = label.strip(), source.strip()
    if not label or not source:
        raise UserError(f"--extra-prior {value!r}: expected LABEL=PATH (e.g. em-only=runs/em-only)")
    return label, source


def _names(values: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Selected names, split on commas and stripped (None or empty: no selection)."""
    if not values:
        return None
    if isinstance(values, str):
        values = [values]
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    return names or None


def _command(name: str, settings: SuiteSettings) -> str:
    """The command line that reproduces this run (quoted in every report header)."""
    import shlex

    parts = ["em-inverse", "bench", name]
    if settings.quick:
        parts.append("--quick")
    if settings.device.type != "cpu":
        parts += ["--device", settings.device.type]
    parts += ["--out", str(settings.out)]
    options = {"--prior": settings.prior, "--limit": settings.limit, "--seed": settings.seed,
               "--size": settings.size, "--posterior-steps": settings.posterior_steps,
               "--posterior-chains": settings.posterior_chains,
               "--deepinv-steps": settings.deepinv_steps}
    for key in ("tasks", "methods", "groups"):
        value = getattr(settings, key)
        options[f"--{key}"] = ",".join(value) if value else None
    parts += [str(v) for option, value in options.items() if value for v in (option, value)]
    for label, source in settings.extra_priors:
        parts += ["--extra-prior", f"{label}={source}"]
    return " ".join(shlex.quote(p) for p in parts)

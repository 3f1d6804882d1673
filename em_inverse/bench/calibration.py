"""The ``calibration`` suite: are the posterior's error bars honest?

Settings (``--groups``): ``fashion``, Fashion-MNIST inpainting (centred 12x12 box, prior
``fashion-mnist``; skipped without the data set); ``natural``, natural-image denoising (sigma
25/255, gray test images, 128x128 crops, prior ``natural-gray``); ``natural-inpaint``, the same
crops with 50% of their pixels missing (no noise), the task the README's uncertainty example
runs. Both samplers are measured: ``solve(method="posterior")`` (Langevin at
the prior's temperature; mean and std by Welford over the kept states) and
``solve(method="anneal")`` (Langevin annealed over the prior's noise levels; mean and std
over the chains' end states), with the same number of chains and steps. ``--groups fashion`` /
``--methods posterior`` / ``--methods anneal`` run a part of it.

Metrics, pooled over the pixels of all images of a setting (every pixel but a 16-pixel border
of the natural crops; inpainting: the missing ones only, where the answer is uncertain):

- coverage of the central 90% interval: fraction of true pixel values inside the n-draw
  predictive interval mean +- t_{n-1} sqrt(1 + 1/n) std (``Solution.interval``), with n the
  independent draws behind mean and std (``Solution.draws``: the annealed sampler's chains;
  Langevin: its effective sample size, its kept states being correlated); goal 0.85 to
  0.95. A truth drawn from the same posterior as the n draws lies inside it with probability
  exactly 90% (for a Gaussian posterior), whatever n is;
- the same with the plain Gaussian interval mean +- 1.645 std, which is what one gets by
  reading ``solution.std`` as the posterior's std: it undercovers for few draws even for a
  perfect sampler (0.835 for 8 chains, 0.869 for 16);
- the same from the empirical 5% / 95% quantiles of the chains' final states, when there are
  at least 16 chains (also short for few draws);
- Pearson correlation between the posterior std and the absolute error |mean - truth|;
- RMSE next to the root mean posterior variance (equal for a calibrated posterior);
- a reliability plot: empirical versus nominal coverage at levels 0.5 to 0.99.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Callable

import numpy as np
import torch

from em_inverse.bench import report
from em_inverse.bench.common import (SuiteResult, SuiteSettings, choose_prior, header, say,
                                     select)
from em_inverse.bench.images import fashion_available, fashion_dir, load_fashion_images, \
    load_test_images
from em_inverse.bench.tasks import Task, fashion_tasks, natural_tasks
from em_inverse.solvers.stats import predictive_factor

LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
MIN_CHAINS_FOR_QUANTILES = 16
CSV_COLUMNS = ("setting", "images", "pixels", "level", "coverage_predictive",
               "coverage_gaussian", "coverage_samples", "std_error_corr", "rmse", "rms_std",
               "chains", "steps", "draws", "seconds", "note")


def interval_coverage(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, level: float,
                      draws=None) -> float:
    """Fraction of ``truth`` inside the central ``level`` interval mean +- k std: the Gaussian
    k = z, or, given ``draws`` (per pixel or one number), the predictive ``k``."""
    k = (NormalDist().inv_cdf(0.5 + level / 2) if draws is None
         else predictive_factor(level, draws))
    return float(np.mean(np.abs(truth - mean) <= k * std))


def sample_coverage(samples: np.ndarray, truth: np.ndarray, level: float) -> float:
    """Fraction of ``truth`` between the empirical (1-level)/2 and (1+level)/2 quantiles of
    ``samples`` (S, N) per pixel."""
    lo = np.quantile(samples, (1 - level) / 2, axis=0)
    hi = np.quantile(samples, (1 + level) / 2, axis=0)
    return float(np.mean((truth >= lo) & (truth <= hi)))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (NaN when either input is constant)."""
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _region(task, x: torch.Tensor, physics, border: int) -> torch.Tensor:
    """Boolean like x (1, C, H, W): the pixels the metrics pool for this task (inside the
    border; for inpainting only the missing ones)."""
    region = torch.zeros_like(x, dtype=torch.bool)
    h, w = x.shape[-2:]
    region[..., border:h - border, border:w - border] = True
    if task.family == "inpaint":
        region &= physics.A(torch.ones_like(x)) < 0.5
    return region


def run_setting(name: str, task, images, prior, border: int, settings: SuiteSettings,
                method: str, options: dict) -> tuple[list[dict], dict]:
    """Posterior-sample every image; pooled metrics rows and the reliability curve."""
    from em_inverse import solve

    means, stds, truths, draws, sample_sets = [], [], [], [], []
    start = time.perf_counter()
    chains = steps = None
    for index, item in enumerate(images):
        x = item.image.to(settings.device)
        physics, y = task.simulate(x, settings.seed * 1_000_003 + index)
        solution = solve(y, physics, prior, method=method, seed=settings.seed + index,
                         progress=False, **options)
        region = _region(task, x, physics, border)
        means.append(solution.estimate[region].cpu().numpy())
        stds.append(solution.std[region].cpu().numpy())
        truths.append(x[region].cpu().numpy())
        draws.append(np.full(truths[-1].shape, solution.draws))
        if solution.samples is not None:
            s = solution.samples[0]  # (S, C, H, W)
            sample_sets.append(s[:, region[0]].cpu().numpy())
        chains = int(solution.settings.get("chains", 0))
        steps = int(solution.diagnostics.steps)
    seconds = time.perf_counter() - start
    mean, std, truth, draws = (np.concatenate(v) for v in (means, stds, truths, draws))
    samples = (np.concatenate(sample_sets, axis=1)
               if sample_sets and sample_sets[0].shape[0] >= MIN_CHAINS_FOR_QUANTILES else None)
    error = np.abs(mean - truth)
    base = {"setting": name, "images": len(images), "pixels": int(truth.size),
            "std_error_corr": correlation(std, error), "rmse": float(np.sqrt(np.mean(error**2))),
            "rms_std": float(np.sqrt(np.mean(std**2))), "chains": chains, "steps": steps,
            "draws": float(np.mean(draws)), "seconds": seconds}
    rows, curve = [], {"nominal": [], "predictive": [], "gaussian": [], "samples": []}
    for level in LEVELS:
        cov_p = interval_coverage(mean, std, truth, level, draws)
        cov_g = interval_coverage(mean, std, truth, level)
        cov_s = sample_coverage(samples, truth, level) if samples is not None else math.nan
        rows.append(dict(base, level=level, coverage_predictive=cov_p, coverage_gaussian=cov_g,
                         coverage_samples=cov_s))
        for key, value in (("nominal", level), ("predictive", cov_p), ("gaussian", cov_g),
                           ("samples", cov_s)):
            curve[key].append(value)
    say(settings, f"[calibration] {name}: 90% coverage "
                  f"{rows[LEVELS.index(0.9)]['coverage_predictive']:.3f}, "
                  f"corr {base['std_error_corr']:.3f}")
    return rows, curve


@dataclass
class Setting:
    """One calibration setting: a task on images with a prior (``name``: its group name)."""
    name: str
    task: Task
    load_images: Callable[[], list]
    prior_name: str
    image_size: tuple[int, int] | None
    border: int
    pixels: str


@dataclass
class Sampler:
    name: str        # solve()'s method
    options: dict    # its budget


def calibration_settings(settings: SuiteSettings) -> list[Setting]:
    """The suite's settings, in report order (``fashion`` needs the t10k files)."""
    quick = settings.quick
    count = 2 if quick else (settings.limit or 100)
    size, border = (32, 4) if quick else (128, 16)
    limit = 1 if quick else settings.limit
    crops = f"gray test images, {size}x{size} centre crops; pixels:"
    return [
        Setting("fashion", _task(fashion_tasks(), "inpaint-box"),
                lambda: load_fashion_images(count), "fashion-mnist", (28, 28), 0,
                f"first {count} t10k images; pixels: the 12x12 hole"),
        Setting("natural", _task(natural_tasks(), "denoise-25"),
                lambda: load_test_images(1, size, limit), "natural-gray", None, border,
                f"{crops} all but a {border}-pixel border"),
        Setting("natural-inpaint", _task(natural_tasks(), "inpaint-50"),
                lambda: load_test_images(1, size, limit), "natural-gray", None, border,
                f"{crops} the missing ones, a {border}-pixel border left out")]


def _task(tasks: list[Task], name: str) -> Task:
    return next(task for task in tasks if task.name == name)


def samplers(settings: SuiteSettings) -> list[Sampler]:
    """Langevin (``posterior``) and the annealed sampler, with the same chains and steps."""
    steps = settings.posterior_steps or (20 if settings.quick else None)
    chains = settings.posterior_chains or (4 if settings.quick else 16)
    posterior, anneal = {"chains": chains}, {"chains": chains}
    if steps:  # --posterior-steps: a smaller budget than solve()'s defaults
        posterior.update(steps=steps, burn_in=steps // 4)
        anneal["steps"] = steps
    return [Sampler("posterior", posterior), Sampler("anneal", anneal)]


def run_calibration(settings: SuiteSettings) -> SuiteResult:
    """Every selected sampler (``--methods``) on every selected setting (``--groups``)."""
    result = SuiteResult("calibration")
    chosen = select(calibration_settings(settings), settings.groups, "group")
    methods = select(samplers(settings), settings.methods, "method")
    curves, lines, skipped, setups = {}, [], [], []
    for setting in chosen:
        if setting.name == "fashion" and not fashion_available():
            skipped.append(f"Fashion-MNIST inpainting skipped: t10k not found in {fashion_dir()}")
            continue
        choice = choose_prior(settings, setting.prior_name, 1, setting.image_size)
        setups.append((setting, choice.prior))
        lines.append(f"{setting.name} prior: {choice.description}; {setting.pixels}")
    for setting, prior in setups:
        label = f"{setting.name} {setting.task.name}"
        images = setting.load_images()
        for sampler in methods:
            name = f"{label}, {sampler.name}"
            rows, curves[name] = run_setting(name, setting.task, images, prior, setting.border,
                                             settings, sampler.name, sampler.options)
            result.rows += rows
    for sampler in methods:
        lines.append(f"{sampler.name} options: " + ", ".join(f"{k}={v}" for k, v in
                                                              sampler.options.items())
                     + " (others: solve()'s defaults)")
    _write(result, settings, lines + skipped, curves)
    return result


def _write(result: SuiteResult, settings: SuiteSettings, lines, curves) -> None:
    out = Path(settings.out)
    at90 = [r for r in result.rows if r["level"] == 0.9]
    body = [[r["setting"], r["images"], r["pixels"], report.fmt(r["coverage_predictive"], 3),
             report.fmt(r["coverage_gaussian"], 3), report.fmt(r["coverage_samples"], 3),
             report.fmt(r["std_error_corr"], 3), report.fmt(r["rmse"], 4),
             report.fmt(r["rms_std"], 4), r["chains"], r["steps"], report.fmt(r["draws"], 1),
             report.fmt(r["seconds"], 1)] for r in at90]
    levels = [[r["setting"], report.fmt(r["level"], 2), report.fmt(r["coverage_predictive"], 3),
               report.fmt(r["coverage_gaussian"], 3), report.fmt(r["coverage_samples"], 3)]
              for r in result.rows]
    text = [header("Calibration of the posterior", settings, lines),
            "\n## Central 90% interval (goal: coverage 0.85 to 0.95)\n",
            report.markdown_table(
                ["setting", "images", "pixels", "coverage (n-draw predictive interval)",
                 "coverage (mean +- 1.645 std)", "coverage (chain quantiles)",
                 "corr(std, |error|)", "RMSE", "RMS std", "chains", "steps", "draws n",
                 "seconds"], body),
            "\nThe goal is on the predictive interval mean +- t_{n-1} sqrt(1 + 1/n) std, with n "
            "the independent draws behind mean and std (the annealed sampler: its chains; "
            "Langevin: its effective sample size, mean over images in the table): a truth "
            "drawn from the same posterior falls inside it with probability 0.90 exactly, for "
            "any n. Read as a Gaussian std, mean +- 1.645 std covers less even for exact "
            "posterior draws (0.835 with 8, 0.869 with 16). '-' in the quantile column: fewer "
            "than 16 chains, no empirical quantiles.\n",
            "\n## Reliability (nominal vs empirical coverage)\n",
            report.markdown_table(["setting", "nominal", "predictive interval",
                                   "gaussian interval", "chain quantiles"], levels)]
    result.files.append(report.write_text(out / "results.md", "\n".join(text)))
    result.files.append(report.write_csv(out / "results.csv", result.rows, CSV_COLUMNS))
    fig, ax = report.new_figure(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for name, curve in curves.items():
        ax.plot(curve["nominal"], curve["predictive"], "o-", label=f"{name} (predictive)")
        if not all(math.isnan(v) for v in curve["samples"]):
            ax.plot(curve["nominal"], curve["samples"], "s:", label=f"{name} (quantiles)")
    ax.plot([0.9, 0.9], [0.85, 0.95], color="green", lw=4, alpha=0.5, label="goal at 90%")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_title("posterior reliability")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    result.files.append(report.save_figure(fig, out / "reliability.png"))

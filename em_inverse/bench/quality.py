"""Quality suites ``natural`` and ``fashion``: every method on every task, PSNR / SSIM / time.

Each (task, image) pair is simulated once (``Task.simulate`` with a seed fixed by the suite
seed, the task index and the image index) and every method reconstructs that same ``y``.
Metrics use one region for every method (a border of 16 pixels is ignored on natural images,
none on 28x28 Fashion-MNIST; quick mode uses 4 pixels on its 32x32 crops).

Outputs under ``--out``: ``results.md`` (tables), ``results.csv`` (one row per image, task and
method), ``psnr_bars.png`` and ``examples_<group>.png`` (the first image of each task).
"""
from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from em_inverse.bench import report
from em_inverse.bench.baselines import Problem
from em_inverse.bench.common import PriorChoice, SuiteResult, SuiteSettings, choose_prior, header, say
from em_inverse.bench.methods import (DEEPINV, MAP, POSTERIOR, Case, Method, baseline_methods,
                                      prior_methods)
from em_inverse.bench.metrics import psnr, ssim
from em_inverse.bench.tasks import Task

CSV_COLUMNS = ("suite", "group", "image", "task", "family", "method", "oracle", "psnr", "ssim",
               "time_s", "steps", "note")
MEASUREMENT = "measurement y"


@dataclass
class Group:
    """Images benchmarked with one prior: ``name`` (gray / colour / fashion), the images,
    the default prior's name, and per-task image limits (``{task: n}``, ``None`` key default)."""

    name: str
    images: list
    prior_name: str
    image_size: tuple[int, int] | None = None
    per_task: dict = field(default_factory=dict)

    def images_for(self, task: Task) -> list:
        n = self.per_task.get(task.name, self.per_task.get(None))
        return self.images if n is None else self.images[:n]


def solver_options(quick: bool) -> dict:
    """Per-method solver options: ``{}`` (the prior's defaults) in full mode; a few steps in
    quick mode so a whole suite runs in seconds."""
    if not quick:
        return {"map": {}, "posterior": {}, "deepinv": {"steps": 100}}
    return {"map": {"steps": 10}, "posterior": {"steps": 12, "burn_in": 4, "chains": 2},
            "deepinv": {"steps": 10, "hessian_iterations": 2},
            "baselines": {"tv_oracle": {"iterations": 40, "weights": (1e-3, 1e-2)},
                          "wiener_oracle": {"iterations": 30, "balances": (1e-3, 1e-2, 1e-1)},
                          "tv_chambolle_oracle": {"weights": (0.03, 0.1, 0.3)}}}


def case_seed(seed: int, task_index: int, image_index: int) -> int:
    """The simulation/solver seed of one (task, image) pair: fixed, distinct per pair."""
    return int(seed) * 1_000_003 + task_index * 10_007 + image_index


def run_quality(suite: str, title: str, groups: list[Group], tasks: list[Task], border: int,
                settings: SuiteSettings, notes: list[str]) -> SuiteResult:
    """Run every applicable method on every (group, task, image) and write the reports."""
    result = SuiteResult(suite)
    methods = baseline_methods() + prior_methods()
    method_names = [MEASUREMENT] + list(dict.fromkeys(m.name for m in methods))
    examples: dict[str, list] = {}
    prior_lines = []
    for group in groups:
        choice = choose_prior(settings, group.prior_name, group.images[0].channels,
                              group.image_size)
        prior_lines.append(f"{group.name} prior: {choice.description}")
        examples[group.name] = []
        for t_index, task in enumerate(tasks):
            for i_index, item in enumerate(group.images_for(task)):
                rows, example = _run_case(suite, group, task, item, choice, methods, border,
                                          case_seed(settings.seed, t_index, i_index), settings,
                                          result)
                result.rows += rows
                if i_index == 0:
                    examples[group.name].append(example)
            say(settings, f"[{suite}] {group.name} {task.name}: done")
    _write(result, title, tasks, method_names, examples, settings,
           notes + prior_lines + [f"metric region: a border of {border} px ignored on each side"])
    return result


def _run_case(suite, group, task, item, choice: PriorChoice, methods: list[Method], border,
              seed, settings: SuiteSettings, result: SuiteResult):
    x = item.image.to(settings.device)
    physics, y = task.simulate(x, seed)
    problem = Problem(task.family, task.sigma, tuple(x.shape), border)
    case = Case(y, physics, problem, x, choice.prior, seed, solver_options(settings.quick))
    base = {"suite": suite, "group": group.name, "image": item.name, "task": task.name,
            "family": task.family}
    rows, estimates = [], {}
    if y.shape == x.shape:
        rows.append(dict(base, method=MEASUREMENT, oracle=False, psnr=psnr(y, x, border),
                         ssim=ssim(y, x, border)))
    for method in methods:
        if not method.applies_to(task.family):
            continue
        row = dict(base, method=method.name, oracle=method.oracle)
        try:
            outcome = method.timed(case)
        except Exception as exc:  # one failing method must not lose a long run's other rows
            message = f"{suite}/{group.name}/{task.name}/{item.name}/{method.name}: " \
                      f"{type(exc).__name__}: {exc}"
            result.failures.append(message)
            say(settings, "FAILED " + message + "\n" + traceback.format_exc(limit=3))
            rows.append(dict(row, psnr=math.nan, ssim=math.nan, note=f"failed: {exc}"[:200]))
            continue
        if method.name == MAP:  # the deepinv cross-check uses the prior weight MAP used
            weight = outcome.info.get("settings", {}).get("prior_weight")
            if weight is not None:
                case.options.setdefault("deepinv", {})["prior_weight"] = float(weight)
        score = psnr(outcome.estimate, x, border)
        rows.append(dict(row, psnr=score, ssim=ssim(outcome.estimate, x, border),
                         time_s=outcome.seconds, steps=outcome.steps,
                         note="untrained prior" if method.name in (MAP, POSTERIOR, DEEPINV)
                         and choice.untrained else ""))
        estimates[method.name] = (outcome.estimate.detach().cpu(), score)
    example = {"label": f"{task.name}\n{item.name}", "truth": x.cpu(), "measurement": y.cpu(),
               "estimates": estimates}
    return rows, example


def _write(result: SuiteResult, title: str, tasks, method_names, examples, settings, notes):
    out = Path(settings.out)
    lines = list(notes) + [
        "methods marked (oracle) tune one parameter per image on the ground truth (an upper "
        "bound for that method, not a fair competitor); all other methods see only y, the "
        "operator and the noise level",
        f"`{DEEPINV}`: the same prior inside deepinv's PGD with the MAP's prior weight",
        "every method reconstructs the same simulated measurement (fixed seeds)"]
    text = [header(title, settings, lines)]
    text.append("Tasks: " + "; ".join(f"`{t.name}` = {t.label}" for t in tasks) + ".\n")
    for group in examples:
        text.append(f"\n## {group}\n")
        text.append(report.quality_markdown(result.rows, tasks, method_names, group))
    if result.failures:
        text.append("\n## Failures\n\n" + "\n".join(f"- {f}" for f in result.failures) + "\n")
    result.files.append(report.write_text(out / "results.md", "\n".join(text)))
    result.files.append(report.write_csv(out / "results.csv", result.rows, CSV_COLUMNS))
    result.files.append(report.psnr_bars([r for r in result.rows if r["method"] != MEASUREMENT],
                                         tasks, method_names[1:], out / "psnr_bars.png",
                                         title))
    for group, items in examples.items():
        if items:
            result.files.append(report.example_panels(items, out / f"examples_{group}.png",
                                                      f"{title}: {group}"))

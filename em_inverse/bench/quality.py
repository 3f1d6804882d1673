"""Quality suites ``natural`` and ``fashion``: every method on every task, PSNR / SSIM / time.

Each (task, image) pair is simulated once (``Task.simulate`` with a seed fixed by the suite
seed, the task index and the image index) and every method reconstructs that same ``y``.
Metrics use one region for every method (a border of 16 pixels is ignored on natural images,
none on 28x28 Fashion-MNIST; quick mode uses 4 pixels on its 32x32 crops).

Outputs under ``--out``: ``results.md`` (tables), ``results.csv`` (one row per image, task and
method), ``psnr_bars.png`` and ``examples_<group>.png`` (the first image of each task).

The prior methods run on an explicit budget (``solver_options``), quoted in every report: MAP
and HQS use the prior's own ``solve_defaults``; the posterior means and the deepinv
cross-check use a CPU budget (2 chains x 300 steps, 100 PGD steps) unless ``--posterior-steps``,
``--posterior-chains`` and ``--deepinv-steps`` say otherwise (solve()'s own posterior default is
4 chains x 1000 steps: about 6 minutes per 256x256 image on one CPU core).
"""
from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path


from em_inverse.bench import report
from em_inverse.bench.baselines import Problem
from em_inverse.bench.common import (PriorChoice, SuiteResult, SuiteSettings, choose_prior,
                                     header, load_bench_prior, say, select)
from em_inverse.bench.methods import (ANNEAL, DEEPINV, HQS, MAP, OWN_PRIOR_METHODS, POSTERIOR,
                                      Case, Method, baseline_methods,
                                      extra_prior_methods, prior_methods)
from em_inverse.bench.metrics import psnr, ssim
from em_inverse.bench.tasks import Task
from em_inverse.errors import UserError
from em_inverse.solvers.measurement import noise_level

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


# The full-mode budget of the sampling and cross-check methods on a 2-core CPU (MAP keeps the
# prior's solve_defaults): about 50 s and 12 s per 256x256 gray image with a 125k-parameter
# ConvEnergy on one core. A GPU user can pass solve()'s defaults (4 chains x 1000 steps).
POSTERIOR_STEPS, POSTERIOR_CHAINS, DEEPINV_STEPS = 300, 2, 100


def solver_options(settings: SuiteSettings) -> dict:
    """Per-method solver options. Full mode: MAP and HQS ``{}`` (the prior's defaults), both
    posterior means ``POSTERIOR_CHAINS`` x ``POSTERIOR_STEPS`` (Langevin burn-in a third),
    deepinv PGD ``DEEPINV_STEPS``, each overridable by the settings. Quick mode: a few steps so
    a whole suite runs in seconds."""
    if settings.quick:
        options = {"map": {"steps": 10}, "hqs": {"steps": 4},
                   "posterior": {"steps": 12, "chains": 2},
                   "deepinv": {"steps": 10, "hessian_iterations": 2},
                   "baselines": {"tv_oracle": {"iterations": 40, "weights": (1e-3, 1e-2)},
                                 "wiener_oracle": {"iterations": 30,
                                                   "balances": (1e-3, 1e-2, 1e-1)},
                                 "tv_chambolle_oracle": {"weights": (0.03, 0.1, 0.3)}}}
    else:
        options = {"map": {}, "hqs": {},
                   "posterior": {"steps": POSTERIOR_STEPS, "chains": POSTERIOR_CHAINS},
                   "deepinv": {"steps": DEEPINV_STEPS}}
    posterior, deepinv = options["posterior"], options["deepinv"]
    posterior["steps"] = settings.posterior_steps or posterior["steps"]
    posterior["chains"] = settings.posterior_chains or posterior["chains"]
    posterior["burn_in"] = posterior["steps"] // 3
    options["anneal"] = {"steps": posterior["steps"], "chains": posterior["chains"]}
    deepinv["steps"] = settings.deepinv_steps or deepinv["steps"]
    return options


def budget_note(settings: SuiteSettings) -> str:
    """The prior methods' budget, for the report header."""
    options = solver_options(settings)
    post, pgd = options["posterior"], options["deepinv"]
    map_steps = options["map"].get("steps")
    return (f"prior methods' budget: `{MAP}` L-BFGS with "
            + (f"at most {map_steps} steps" if map_steps else
               "the prior's solve_defaults (else solve()'s: at most 200 steps)")
            + f"; `{HQS}` the prior's solve_defaults"
            + f"; `{ANNEAL}` {post['chains']} chains x {post['steps']} steps"
            + f"; `{POSTERIOR}` {post['chains']} chains x {post['steps']} Langevin steps, "
              f"burn-in {post['burn_in']} (solve()'s default is 4 x 1000: "
              f"`--posterior-chains 4 --posterior-steps 1000`); `{DEEPINV}` {pgd['steps']} steps")


def extra_methods(settings: SuiteSettings, channels: int) -> tuple[list[Method], list[str]]:
    """``em-inverse MAP [label]`` and ``em-inverse HQS [label]`` per ``--extra-prior`` whose
    prior fits images with ``channels`` channels, and a header note for each (run or not run,
    and why)."""
    methods, notes = [], []
    for label, source in settings.extra_priors:
        try:
            prior = load_bench_prior(source, settings.device, channels)
        except UserError as exc:
            if "-channel images" not in str(exc):
                raise
            notes.append(f"`[{label}]` rows not run on {channels}-channel images: {exc}")
            continue
        methods += extra_prior_methods(label, prior)
        notes.append(f"`{MAP} [{label}]`, `{HQS} [{label}]`: the same MAP and HQS with prior "
                     f"{source} ({type(prior.net).__name__}, {prior.num_parameters} "
                     f"parameters, eps {prior.eps:g}) and its own solve_defaults: ablation rows")
    return methods, notes


def case_seed(seed: int, task_index: int, image_index: int) -> int:
    """The simulation/solver seed of one (task, image) pair: fixed, distinct per pair."""
    return int(seed) * 1_000_003 + task_index * 10_007 + image_index


def run_quality(suite: str, title: str, groups: list[Group], tasks: list[Task], border: int,
                settings: SuiteSettings, notes: list[str]) -> SuiteResult:
    """Run every selected method on every selected (group, task, image) and write the reports.

    Every selection and prior is checked before the first solve, so a bad option fails in
    seconds, not after an hour."""
    result = SuiteResult(suite)
    groups = select(groups, settings.groups, "group")
    seeds = {task.name: index for index, task in enumerate(tasks)}  # same y with any --tasks
    tasks = select(tasks, settings.tasks, "task")
    methods = select(baseline_methods() + prior_methods(), settings.methods, "method")
    labels = [label for label, _ in settings.extra_priors]
    if len(set(labels)) != len(labels):
        raise UserError(f"--extra-prior labels must differ: {', '.join(labels)}")
    hint = (f" (to run some groups only: --groups {','.join(g.name for g in groups)})"
            if len(groups) > 1 else "")
    plans = []
    for group in groups:
        choice = choose_prior(settings, group.prior_name, group.images[0].channels,
                              group.image_size, hint)
        extras, extra_notes = extra_methods(settings, group.images[0].channels)
        plans.append((group, choice, _with_extras(methods, extras)))
        notes = notes + [f"{group.name} prior: {choice.description}"] + extra_notes
    method_names = [MEASUREMENT] + list(dict.fromkeys(m.name for _, _, ms in plans for m in ms))
    prior_names = {m.name for _, _, ms in plans for m in ms if m.needs_prior}
    examples: dict[str, list] = {}
    for group, choice, group_methods in plans:
        examples[group.name] = []
        for task in tasks:
            for i_index, item in enumerate(group.images_for(task)):
                rows, example = _run_case(suite, group, task, item, choice, group_methods,
                                          border, case_seed(settings.seed, seeds[task.name],
                                                            i_index), settings, result)
                result.rows += rows
                if i_index == 0:
                    examples[group.name].append(example)
            say(settings, f"[{suite}] {group.name} {task.name}: done")
    _write(result, title, tasks, method_names, prior_names, examples, settings,
           notes + [budget_note(settings),
                    f"metric region: a border of {border} px ignored on each side"])
    return result


def _with_extras(methods: list[Method], extras: list[Method]) -> list[Method]:
    """``methods`` with the extra-prior MAP rows right after our MAP (or at the end)."""
    names = [m.name for m in methods]
    at = names.index(MAP) + 1 if MAP in names else len(methods)
    return methods[:at] + extras + methods[at:]


def _run_case(suite, group, task, item, choice: PriorChoice, methods: list[Method], border,
              seed, settings: SuiteSettings, result: SuiteResult):
    x = item.image.to(settings.device)
    physics, y = task.simulate(x, seed)
    # a Poisson task's level varies per pixel: baselines that take one get its root mean
    sigma = task.sigma if task.photons is None else float(noise_level(y, physics)[0].max())
    problem = Problem(task.family, sigma, tuple(x.shape), border)
    case = Case(y, physics, problem, x, choice.prior, seed, solver_options(settings))
    base = {"suite": suite, "group": group.name, "image": item.name, "task": task.name,
            "family": task.family}
    rows, estimates = [], {}
    if y.shape == x.shape:
        rows.append(dict(base, method=MEASUREMENT, oracle=False, psnr=psnr(y, x, border),
                         ssim=ssim(y, x, border)))
    for method in methods:
        if not method.applies_to(task):
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
        if method.name == MAP:  # the deepinv cross-check uses the weight and symmetry MAP used
            used = outcome.info.get("settings", {})
            cross_check = case.options.setdefault("deepinv", {})
            if used.get("prior_weight") is not None:
                cross_check["prior_weight"] = float(used["prior_weight"])
            if used.get("symmetry") is not None:
                cross_check["symmetry"] = used["symmetry"]
        score = psnr(outcome.estimate, x, border)
        rows.append(dict(row, psnr=score, ssim=ssim(outcome.estimate, x, border),
                         time_s=outcome.seconds, steps=outcome.steps,
                         note="untrained prior" if method.name in OWN_PRIOR_METHODS
                         and choice.untrained else ""))
        estimates[method.name] = (outcome.estimate.detach().cpu(), score)
    example = {"label": f"{task.name}\n{item.name}", "truth": x.cpu(), "measurement": y.cpu(),
               "estimates": estimates}
    return rows, example


def _write(result: SuiteResult, title: str, tasks, method_names, prior_methods, examples,
           settings, notes):
    out = Path(settings.out)
    lines = list(notes) + [
        "methods marked (oracle) tune one parameter per image on the ground truth (an upper "
        "bound for that method, not a fair competitor); all other methods see only y, the "
        "operator and the noise level",
        "every method reconstructs the same simulated measurement (fixed seeds)"]
    if DEEPINV in method_names:
        lines.append(f"`{DEEPINV}`: the same prior inside deepinv's PGD with the MAP's prior "
                     f"weight")
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
                                         title, prior_methods))
    for group, items in examples.items():
        if items:
            result.files.append(report.example_panels(items, out / f"examples_{group}.png",
                                                      f"{title}: {group}"))

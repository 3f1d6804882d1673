"""The ``speed`` suite: where the time goes, and how it scales.

Tables (each also a CSV section, ``kind`` column):

- ``grad``: one ``prior.value_and_grad`` (forward + backward) on one image versus image size
  (128^2 to 1024^2; quick: 32^2 and 64^2), gray and colour priors: median milliseconds over
  repeats, milliseconds per megapixel, peak memory.
- ``solve``: MAP and posterior solves of denoise-25 and inpaint-50 on a 256x256 crop (quick:
  32x32): time per solve, steps, time per step, share of the time spent inside the prior
  (measured by wrapping the prior's ``energy_and_grad``/``energy`` with a timer; goal >= 90%),
  peak memory.
- ``chains``: the posterior sampler with 1 to 32 chains on a 64x64 crop (quick: 1, 2, 4 chains
  on 32x32): time per step and per chain-step, throughput relative to one chain, peak memory.
- ``ula``: our posterior sampler (ULA, no Metropolis step) against ``deepinv.sampling.ULA``
  with the same prior, data term, step size, initial point and number of steps (denoise-25,
  one chain): seconds each and the ratio deepinv / ours (goal > 1: ours faster).

Memory: see ``measure.PeakMemory`` (CPU: peak RSS above the starting RSS; CUDA: allocator peak).
Timings synchronise CUDA before reading the clock. Outputs: ``results.md``, ``results.csv``,
``grad_time.png`` and ``chains.png`` under ``--out``.
"""
from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path

import torch

from em_inverse.bench import report
from em_inverse.bench.common import SuiteResult, SuiteSettings, choose_prior, header, say
from em_inverse.bench.measure import PeakMemory, PriorTimer, synchronize
from em_inverse.bench.images import load_test_image
from em_inverse.bench.tasks import natural_tasks

CSV_COLUMNS = ("kind", "channels", "size", "task", "method", "chains", "steps", "seconds",
               "ms_per_step", "ms_per_megapixel", "prior_share", "solver_prior_share",
               "peak_mib", "note")


def _task(name: str):
    return next(t for t in natural_tasks() if t.name == name)


#: Seconds of warm-up calls before a timing: one call is not enough on a CPU, where the first
#: calls of a fresh process run slower (allocator, oneDNN primitives, clock ramp-up): with one,
#: grad V of a 256-px gray image read 225 ms (the speed table at commit 565aa78), with this
#: warm-up 154 ms (at commit 9e87616; the solves there spend 136-171 ms per step).
WARM_UP_SECONDS = 1.0


def median_time(fn, device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` on ``device``, after warm-up calls (at
    least one, until ``WARM_UP_SECONDS`` have passed)."""
    started = time.perf_counter()
    fn()  # warm-up (allocator, kernels, lazy imports)
    synchronize(device)
    while time.perf_counter() - started < WARM_UP_SECONDS:
        fn()
        synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grad_rows(priors: dict, sizes, settings: SuiteSettings) -> list[dict]:
    rows = []
    for channels, prior in priors.items():
        for size in sizes:
            g = torch.Generator(device=settings.device).manual_seed(settings.seed)
            x = torch.rand((1, channels, size, size), generator=g, device=settings.device)
            repeats = 5 if size <= 256 else 2
            with PeakMemory(settings.device) as memory:
                seconds = median_time(lambda: prior.value_and_grad(x), settings.device,
                                       repeats)
            rows.append({"kind": "grad", "channels": channels, "size": size,
                         "method": "prior.value_and_grad", "seconds": seconds,
                         "ms_per_megapixel": 1e3 * seconds / (size * size / 1e6),
                         "peak_mib": memory.mib})
            say(settings, f"[speed] grad V {channels}x{size}x{size}: {1e3 * seconds:.1f} ms")
    return rows


def _solve_timed(y, physics, prior, method: str, settings: SuiteSettings, **options):
    from em_inverse import solve

    with PeakMemory(settings.device) as memory, PriorTimer(prior, settings.device) as timer:
        synchronize(settings.device)
        start = time.perf_counter()
        solution = solve(y, physics, prior, method=method, seed=settings.seed, progress=False,
                         **options)
        synchronize(settings.device)
        seconds = time.perf_counter() - start
    return solution, seconds, timer.seconds / seconds if seconds > 0 else float("nan"), memory


def solve_rows(prior, image, settings: SuiteSettings) -> list[dict]:
    steps = {"map": 10, "posterior": 20} if settings.quick else {"map": 100, "posterior": 200}
    rows = []
    for task_name in ("denoise-25", "inpaint-50"):
        physics, y = _task(task_name).simulate(image, settings.seed)
        for method in ("map", "posterior"):
            options = {"steps": steps[method]}
            if method == "posterior":
                options["chains"] = 1
            solution, seconds, share, memory = _solve_timed(y, physics, prior, method, settings,
                                                            **options)
            done = max(1, int(solution.diagnostics.steps))
            rows.append({"kind": "solve", "channels": image.shape[1], "size": image.shape[-1],
                         "task": task_name, "method": method,
                         "chains": 1, "steps": done, "seconds": seconds,
                         "ms_per_step": 1e3 * seconds / done, "prior_share": share,
                         "solver_prior_share": solution.diagnostics.prior_share,
                         "peak_mib": memory.mib,
                         "note": f"{solution.diagnostics.evaluations} energy evaluations"})
            say(settings, f"[speed] {method} {task_name}: {seconds:.2f} s, prior {share:.0%}")
    return rows


def chain_rows(prior, image, settings: SuiteSettings) -> list[dict]:
    counts = (1, 2, 4) if settings.quick else (1, 2, 4, 8, 16, 32)
    steps = 10 if settings.quick else 50
    physics, y = _task("denoise-25").simulate(image, settings.seed)
    rows, base = [], None
    for chains in counts:
        solution, seconds, share, memory = _solve_timed(
            y, physics, prior, "posterior", settings, steps=steps, chains=chains, burn_in=1)
        per_chain_step = seconds / (steps * chains)
        base = base or per_chain_step
        rows.append({"kind": "chains", "channels": image.shape[1], "size": image.shape[-1],
                     "task": "denoise-25", "method": "posterior", "chains": chains,
                     "steps": steps, "seconds": seconds, "ms_per_step": 1e3 * seconds / steps,
                     "prior_share": share, "peak_mib": memory.mib,
                     "note": f"{1e3 * per_chain_step:.2f} ms per chain-step; throughput "
                             f"x{base / per_chain_step:.2f} vs 1 chain"})
        say(settings, f"[speed] {chains} chains: {seconds:.2f} s")
    return rows


def ula_rows(prior, image, settings: SuiteSettings) -> list[dict]:
    """Our ULA against deepinv's ULA: same prior, data term, step, start, steps, one chain."""
    from deepinv.optim import L2
    from deepinv.sampling import ULA

    steps = 20 if settings.quick else 200
    task = _task("denoise-25")
    physics, y = task.simulate(image, settings.seed)
    # the first run picks the step size (a power iteration); the timed runs both use that step
    first, _, _, _ = _solve_timed(y, physics, prior, "posterior", settings, steps=2,
                                  chains=1, mala=False, burn_in=1)
    step = float(first.diagnostics.step_size)
    ours, ours_s, _, _ = _solve_timed(y, physics, prior, "posterior", settings, steps=steps,
                                      chains=1, mala=False, burn_in=steps // 4, step=step)
    weight = float(ours.settings.get("prior_weight", 1.0))
    x0 = y.clamp(0, 1)
    sampler = ULA(prior, L2(sigma=task.sigma), step_size=step, alpha=weight, max_iter=steps,
                  thinning=1, burnin_ratio=0.25, clip=(-1.0, 2.0), verbose=False)
    synchronize(settings.device)
    start = time.perf_counter()
    with warnings.catch_warnings():  # deepinv 0.5 warns that ULA.forward will change return
        warnings.simplefilter("ignore", DeprecationWarning)
        sampler(y, physics, seed=settings.seed, x_init=x0)
    synchronize(settings.device)
    theirs_s = time.perf_counter() - start
    common = {"kind": "ula", "channels": image.shape[1], "size": image.shape[-1],
              "task": task.name, "chains": 1, "steps": steps}
    return [dict(common, method="em-inverse posterior (ULA)", seconds=ours_s,
                 ms_per_step=1e3 * ours_s / steps, note=f"step {step:.3g}"),
            dict(common, method="deepinv.sampling.ULA", seconds=theirs_s,
                 ms_per_step=1e3 * theirs_s / steps,
                 note=f"ratio deepinv / ours = {theirs_s / ours_s:.2f}")]


def run_speed(settings: SuiteSettings) -> SuiteResult:
    result = SuiteResult("speed")
    sizes = (32, 64) if settings.quick else (128, 256, 512, 1024)
    solve_size = 32 if settings.quick else 256
    chain_size = 32 if settings.quick else 64
    gray = choose_prior(settings, "natural-gray", 1)
    colour = choose_prior(settings, "natural-rgb", 3) if not settings.prior else None
    priors = {1: gray.prior}
    if colour is not None:
        priors[3] = colour.prior
    image = load_test_image("camera", solve_size).image.to(settings.device)
    small = load_test_image("camera", chain_size).image.to(settings.device)
    rows = grad_rows(priors, sizes, settings)
    rows += solve_rows(gray.prior, image, settings)
    rows += chain_rows(gray.prior, small, settings)
    rows += ula_rows(gray.prior, image, settings)
    result.rows = rows
    lines = [f"gray prior: {gray.description}"]
    if colour is not None:
        lines.append(f"colour prior: {colour.description}")
    lines.append("memory: " + PeakMemory.describe(settings.device))
    _write(result, settings, lines)
    return result


def _table(rows, kind, columns, names) -> str:
    body = [[_cell(r.get(c)) for c in columns] for r in rows if r["kind"] == kind]
    return report.markdown_table(names, body)


def _cell(value):
    if isinstance(value, float):
        return report.fmt(value, 3 if abs(value) < 10 else 1)
    return "-" if value is None or value == "" else value


def _write(result: SuiteResult, settings: SuiteSettings, lines: list[str]) -> None:
    out = Path(settings.out)
    rows = result.rows
    text = [header("Speed", settings, lines),
            "\n## One grad V (prior.value_and_grad, batch of one image)\n",
            _table(rows, "grad", ("channels", "size", "seconds", "ms_per_megapixel", "peak_mib"),
                   ("C", "size (px)", "seconds", "ms / megapixel", "peak MiB")),
            "\n## Solves (share of time inside the prior; goal >= 90%)\n",
            _table(rows, "solve", ("task", "method", "size", "steps", "seconds", "ms_per_step",
                                   "prior_share", "solver_prior_share", "peak_mib", "note"),
                   ("task", "method", "size", "steps", "s / solve", "ms / step",
                    "prior share (timer)", "prior share (solver's own)", "peak MiB", "note")),
            "\n## Posterior sampler vs number of chains (denoise-25)\n",
            _table(rows, "chains", ("chains", "size", "steps", "seconds", "ms_per_step",
                                    "prior_share", "peak_mib", "note"),
                   ("chains", "size", "steps", "seconds", "ms / step", "prior share",
                    "peak MiB", "note")),
            "\n## Our ULA vs deepinv's ULA (same prior, data term, step size, steps)\n",
            _table(rows, "ula", ("method", "size", "steps", "seconds", "ms_per_step", "note"),
                   ("sampler", "size", "steps", "seconds", "ms / step", "note"))]
    result.files.append(report.write_text(out / "results.md", "\n".join(text)))
    result.files.append(report.write_csv(out / "results.csv", rows, CSV_COLUMNS))
    result.files.append(_plot_grad(rows, out / "grad_time.png"))
    result.files.append(_plot_chains(rows, out / "chains.png"))


def _plot_grad(rows, path):
    fig, ax = report.new_figure(figsize=(5, 3.5))
    for channels in sorted({r["channels"] for r in rows if r["kind"] == "grad"}):
        sel = [r for r in rows if r["kind"] == "grad" and r["channels"] == channels]
        ax.loglog([r["size"] ** 2 / 1e6 for r in sel], [1e3 * r["seconds"] for r in sel], "o-",
                  label="gray" if channels == 1 else "colour")
    ax.set_xlabel("megapixels")
    ax.set_ylabel("ms per grad V")
    ax.set_title("grad V time vs image size")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return report.save_figure(fig, path)


def _plot_chains(rows, path):
    sel = [r for r in rows if r["kind"] == "chains"]
    fig, ax = report.new_figure(figsize=(5, 3.5))
    ax.plot([r["chains"] for r in sel], [r["ms_per_step"] / r["chains"] for r in sel], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("chains")
    ax.set_ylabel("ms per chain-step")
    ax.set_title("posterior sampler: cost per chain-step")
    ax.grid(alpha=0.3)
    return report.save_figure(fig, path)

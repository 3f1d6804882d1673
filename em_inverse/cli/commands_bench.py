"""``em-inverse bench SUITE``: run a benchmark suite and write its table, CSV and plots."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from em_inverse.cli.common import DeviceOption, QuietOption, SeedOption, say, user_errors

SUITE_HELP = ("natural (public test images, every task), fashion (Fashion-MNIST t10k), speed "
              "(time and memory), calibration (posterior coverage)")


@user_errors
def bench(
    suite: Annotated[str, typer.Argument(help=SUITE_HELP, show_default=False)],
    quick: Annotated[bool, typer.Option("--quick", help="Tiny inputs and few steps: seconds "
                                                        "(CI); the numbers mean nothing.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output folder (default: benchmarks/results/SUITE).",
        show_default=False)] = None,
    prior: Annotated[Optional[str], typer.Option(
        "--prior", help="Prior name or folder (default: the bundled prior for the images).",
        show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="At most N images per group (default: the suite's own).",
        show_default=False)] = None,
    tasks: Annotated[Optional[str], typer.Option(
        "--tasks", help="natural/fashion: only these tasks, comma-separated (e.g. "
                        "denoise-25,inpaint-50).", show_default=False)] = None,
    methods: Annotated[Optional[str], typer.Option(
        "--methods", help="natural/fashion: only these methods, comma-separated, named as in "
                          "the tables (the deepinv cross-check reuses the MAP's prior weight: "
                          "keep 'em-inverse MAP' with it); calibration: posterior and/or "
                          "anneal.", show_default=False)] = None,
    groups: Annotated[Optional[str], typer.Option(
        "--groups", help="natural: gray and/or colour (e.g. gray while no natural-rgb "
                         "prior exists); calibration: fashion and/or natural.",
        show_default=False)] = None,
    size: Annotated[Optional[int], typer.Option(
        "--size", min=16, help="natural: crop size (default 256, the issue's protocol; "
                               "quick 32).", show_default=False)] = None,
    posterior_steps: Annotated[Optional[int], typer.Option(
        "--posterior-steps", min=1, help="Langevin steps of the posterior mean (natural/fashion: "
                                         "default 300, burn-in a third; calibration: default "
                                         "1000, burn-in a quarter).", show_default=False)] = None,
    posterior_chains: Annotated[Optional[int], typer.Option(
        "--posterior-chains", min=1, help="Posterior chains (natural/fashion: default 2; "
                                          "calibration: 16).", show_default=False)] = None,
    deepinv_steps: Annotated[Optional[int], typer.Option(
        "--deepinv-steps", min=1, help="PGD steps of the deepinv cross-check (default 100).",
        show_default=False)] = None,
    extra_prior: Annotated[Optional[list[str]], typer.Option(
        "--extra-prior", help="LABEL=PATH: add 'em-inverse MAP [LABEL]' and 'em-inverse HQS "
                              "[LABEL]' rows computed with that prior (an ablation; "
                              "repeatable).",
        show_default=False)] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Run a benchmark suite (SPEC 7) and write results.md, results.csv and PNG plots.

    The selection and budget options apply to the quality suites (natural, fashion); every
    option used is quoted in the report's header."""
    from em_inverse.bench.suites import run_suite

    result = run_suite(suite, quick=quick, out=out, device=device, seed=seed, prior=prior,
                       limit=limit, quiet=quiet, tasks=tasks, methods=methods,
                       groups=groups, size=size, posterior_steps=posterior_steps,
                       posterior_chains=posterior_chains, deepinv_steps=deepinv_steps,
                       extra_priors=extra_prior or ())
    if result.skipped:
        say(quiet, f"{suite}: skipped ({result.skipped})")
        return
    for path in result.files:
        say(quiet, f"wrote {path}")
    say(quiet, f"{suite}: {len(result.rows)} rows in {result.seconds:.1f} s")
    if result.failures:
        typer.echo(f"error: {len(result.failures)} method run(s) failed; see the report",
                   err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)

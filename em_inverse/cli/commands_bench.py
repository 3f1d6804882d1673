"""``em-inverse bench SUITE``: run a benchmark suite and write its table, CSV and plots."""
from __future__ import annotations

import shlex
import sys
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
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Run a benchmark suite (SPEC 7) and write results.md, results.csv and PNG plots."""
    from em_inverse.bench.suites import run_suite

    command = "em-inverse " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_suite(suite, quick=quick, out=out, device=device, seed=seed, prior=prior,
                       limit=limit, quiet=quiet, command=command)
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

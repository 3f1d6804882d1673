"""The ``em-inverse`` command line (typer). Each command lives in its own module."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="em-inverse",
    help="Solve imaging inverse problems with a learned Energy Matching prior.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from em_inverse.cli import commands_prior, commands_train

    commands_train.register(app)
    commands_prior.register(app)
    try:  # the solver and benchmark commands register themselves once they exist
        from em_inverse.cli import commands_solve
    except ImportError:
        pass
    else:
        commands_solve.register(app)
    try:
        from em_inverse.cli import commands_bench
    except ImportError:
        pass
    else:
        commands_bench.register(app)


def main() -> None:
    _register()
    app()

"""The ``em-inverse`` command line (typer). Each group of commands lives in its own module."""
from __future__ import annotations

import typer

from em_inverse.cli import (commands_bench, commands_prior, commands_solve, commands_train,
                            commands_tune)

app = typer.Typer(
    name="em-inverse",
    help="Solve imaging inverse problems with a learned Energy Matching prior.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (commands_solve, commands_train, commands_prior, commands_tune, commands_bench):
    module.register(app)


def main() -> None:
    app()

"""The ``em-inverse`` command line (typer). Each group of commands lives in its own module."""
from __future__ import annotations

import sys

import typer

from em_inverse.cli import (commands_bench, commands_prior, commands_solve, commands_train,
                            commands_tune)
from em_inverse.cpu_memory import keep_freed_memory

app = typer.Typer(
    name="em-inverse",
    help="Solve imaging inverse problems with a learned Energy Matching prior.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (commands_solve, commands_train, commands_prior, commands_tune, commands_bench):
    module.register(app)
for command in app.registered_commands:
    # `em-inverse --help` lists each command by the first paragraph of its docstring, which rich
    # prints with the docstring's own line breaks; joined, it wraps to the terminal instead
    if command.short_help is None and command.callback.__doc__:
        command.short_help = " ".join(command.callback.__doc__.split("\n\n")[0].split())


def main() -> None:
    """Run the command line. A usage mistake (an unknown option, a missing argument, a value of
    the wrong type) is bad input like any other: one ``error:`` line naming the command's
    ``--help`` and exit status 2, not a boxed usage panel.

    The process keeps freed memory for reuse (``em_inverse.cpu_memory``): grad V on the CPU
    runs faster, and the process ends after its one job anyway."""
    keep_freed_memory()
    try:
        status = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-D at a prompt
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise  # not click's usage error (typer vendors click from 0.2x, before imports it)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help page
            exc.show()
        else:
            context = getattr(exc, "ctx", None)
            where = f" (see '{context.command_path} --help')" if context is not None else ""
            print(f"error: {exc.format_message()}{where}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(status if isinstance(status, int) else 0)

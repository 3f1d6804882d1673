"""What every command shares: the ``--seed/--device/--quiet`` options and clean error exits."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Callable

import typer

from em_inverse.errors import UserError

SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (bit-reproducible on CPU).")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or chatter.")]

EXIT_USER_ERROR = 2


def fail(message: str) -> None:
    """Print ``error: message`` (one line) on stderr and exit with status 2."""
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    typer.echo(f"error: {first_line}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


def user_errors(command: Callable) -> Callable:
    """Decorator: ``UserError`` (and bad-value errors from our checks) -> one line, exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def require_file(path: Path) -> None:
    """Fail on a missing input before a command imports torch and the solvers (seconds):
    ``image_io.read_image`` checks the same for API callers."""
    if not path.exists():
        raise UserError(f"no such file: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")


def say(quiet: bool, message: str) -> None:
    """Chatter on stderr unless ``--quiet``."""
    if not quiet:
        typer.echo(message, err=True)

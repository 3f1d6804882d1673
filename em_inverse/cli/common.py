"""What every command shares: the ``--seed/--device/--quiet`` options and clean error exits."""
from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from pathlib import Path
from typing import Annotated, Callable

import typer

from em_inverse.errors import UserError

SEED_MAX = 2**32 - 1


def seed_in_range(value: int | None) -> int | None:
    """``--seed``'s check, 0 to 2^32 - 1. A callback rather than an integer range, whose
    bounds the help would print beside every option's type and so squeeze every help text
    into a narrow column."""
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(f"{value} is not in 0 to 2^32 - 1")
    return value


SeedOption = Annotated[int, typer.Option(
    "--seed", callback=seed_in_range,
    help="Random seed, 0 to 2^32 - 1 (bit-reproducible on CPU).")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N].")]
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
        except Exception as exc:  # noqa: BLE001 - only running out of memory is caught here
            if not out_of_memory(exc):
                raise
            fail(f"out of memory ({exc}): use a smaller image, fewer samples or chains, "
                 "or another --device")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure: Python's ``MemoryError``, torch's ``OutOfMemoryError``
    (CUDA) or the CPU allocator's ``RuntimeError``. Checked by name, so that this module, which
    every ``--help`` imports, does not import torch."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def require_file(path: Path) -> None:
    """Fail on a missing input before a command imports torch and the solvers (seconds):
    ``image_io.read_image`` checks the same for API callers."""
    if not path.exists():
        raise UserError(f"no such file: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")


def check_outputs(outputs: list[Path | None], inputs: list[Path | str | None]) -> None:
    """Fail unless the output paths differ from each other and from every input that is a file
    (the image, and a mask or kernel given as a file): no output may overwrite an input."""
    written = [Path(p).resolve() for p in outputs if p is not None]
    if len(set(written)) != len(written):
        raise UserError("output paths must differ from each other")
    for given in inputs:
        if given is not None and Path(given).expanduser().is_file():
            read = Path(given).expanduser().resolve()
            if read in written:
                raise UserError(f"refusing to overwrite the input {given}")


@contextlib.contextmanager
def warnings_said(quiet: bool):
    """Library warnings (an alpha channel dropped, a grey mask) as one 'warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        say(quiet, f"warning: {warning.message}")


def say(quiet: bool, message: str) -> None:
    """Chatter on stderr unless ``--quiet``."""
    if not quiet:
        typer.echo(message, err=True)

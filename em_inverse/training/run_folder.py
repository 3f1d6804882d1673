"""Checks on a run's ``--out`` folder, made before a run does any work or writes anything: it
must be a folder (or not exist yet) that we can write in, and a fresh run never overwrites a
run or a prior already there."""
from __future__ import annotations

from pathlib import Path

from em_inverse.errors import UserError
from em_inverse.image_io import check_new_folder
from em_inverse.priors.checkpoint import CONFIG, WEIGHTS
from em_inverse.training.state import CHECKPOINT


def check_run_folder(out: str | Path, resume: bool) -> None:
    """Raise a ``UserError`` (writing nothing) unless ``out`` can take this run: a writable
    folder, or one that can be made; with ``resume`` one that holds a training checkpoint,
    without it one that holds neither a run's checkpoint nor a prior (``config.json``,
    ``weights.safetensors``: a prior folder, or a finished run whose checkpoint is gone)."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file, not a folder; choose another --out")
        if resume:
            if not (out / CHECKPOINT).is_file():
                raise UserError(f"no checkpoint to resume from at {out / CHECKPOINT}")
        elif (out / CHECKPOINT).exists():
            raise UserError(f"{out} already holds a run; pass --resume to continue it or "
                            "choose another --out")
        else:
            held = [name for name in (CONFIG, WEIGHTS) if (out / name).exists()]
            if held:
                raise UserError(f"{out} already holds a prior ({', '.join(held)}) and no "
                                f"{CHECKPOINT} to resume; choose another --out")
    except OSError as exc:  # e.g. a folder above ``out`` we may not read
        raise UserError(f"cannot use --out {out}: {exc.strerror or exc}") from None
    check_new_folder(out, parents=True)

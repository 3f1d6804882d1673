"""Device selection and explicit random generators shared by every entry point."""
from __future__ import annotations

import numpy as np
import torch

from em_inverse.errors import UserError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``auto|cpu|cuda[:N]`` to a ``torch.device``; ``auto`` picks CUDA when present.
    Other torch device types (mps, meta, xpu, ...) are refused: the solvers are checked on
    CPU and CUDA only."""
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError:
        chosen = None
    if chosen is None or chosen.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device {str(device)!r}: use auto, cpu or cuda[:N]")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available on this machine")
    if chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: this machine has {torch.cuda.device_count()} "
                        f"CUDA device(s)")
    return chosen


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``, an integer in [0, 2^63) (all
    randomness is passed down)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise UserError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def check_generator_device(generator: torch.Generator, device: torch.device | str) -> None:
    """Raise a ``UserError`` unless ``generator`` draws on ``device`` (the prior's: chains draw
    their noise there). A CUDA generator without an index matches the current CUDA device."""
    device = torch.device(device)
    drawn = torch.device(generator.device)
    index = drawn.index if drawn.index is not None else (
        torch.cuda.current_device() if drawn.type == "cuda" else None)
    wanted = device.index if device.index is not None else (
        torch.cuda.current_device() if device.type == "cuda" else None)
    if drawn.type != device.type or index != wanted:
        raise UserError(f"the generator draws on {drawn}, the prior runs on {device}: make it "
                        f"with torch.Generator(device={str(device)!r})")

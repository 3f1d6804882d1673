"""Device selection and explicit random generators shared by every entry point."""
from __future__ import annotations

import torch

from em_inverse.errors import UserError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``auto|cpu|cuda[:N]`` to a ``torch.device``; ``auto`` picks CUDA when present."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda") from None


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (all randomness is passed down)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator

"""Find priors by name (bundled inside the package) or by path: ``load_prior``, ``list_priors``."""
from __future__ import annotations

from pathlib import Path

import torch

from em_inverse.devices import resolve_device
from em_inverse.errors import UserError
from em_inverse.priors.checkpoint import CONFIG, load_prior_folder, read_json
from em_inverse.priors.prior import EnergyPrior

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_names() -> list[str]:
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG).is_file()) \
        if BUNDLED_DIR.is_dir() else []


def list_priors() -> list[dict]:
    """Model cards of the bundled priors: name, config (architecture, data, eps, card...)."""
    return [dict(read_json(BUNDLED_DIR / name / CONFIG), name=name) for name in bundled_names()]


def load_prior(name_or_path: str | Path, device: str | torch.device = "cpu") -> EnergyPrior:
    """Load a bundled prior by name (``natural-gray``) or a prior folder by path, onto
    ``device`` (``auto``, ``cpu`` or ``cuda[:N]``, as ``devices.resolve_device`` reads it)."""
    name = str(name_or_path)
    device = resolve_device(device)
    if not name.strip():
        raise UserError("no prior named: pass a bundled prior's name or a prior folder")
    if name in bundled_names():
        return load_prior_folder(BUNDLED_DIR / name, device=device)
    path = Path(name).expanduser()
    if path.exists():
        return load_prior_folder(path, device=device)
    known = ", ".join(bundled_names()) or "none bundled yet"
    raise UserError(f"unknown prior {name!r}: not a bundled prior ({known}) nor an existing folder")


def default_prior_name(channels: int) -> str:
    """The bundled prior that fits images with ``channels`` channels."""
    if channels == 1:
        return "natural-gray"
    if channels == 3:
        return "natural-rgb"
    raise UserError(f"no default prior for {channels}-channel images; pass --prior")

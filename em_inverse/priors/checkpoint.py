"""Prior folders: ``weights.safetensors`` + ``config.json``. Validated on load, never unpickled.

``save_prior`` writes both files atomically (temp file + rename). ``load_prior_folder`` checks
the JSON, the architecture, and every tensor's name, shape and dtype, and raises ``UserError``
with one clear line on anything corrupt, truncated or mismatched.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from em_inverse.atomic import atomic_write_bytes, atomic_write_via
from em_inverse.errors import UserError
from em_inverse.priors.nets import build_net
from em_inverse.priors.prior import EnergyPrior

FORMAT = "em-inverse-prior"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
REQUIRED_KEYS = ("format", "format_version", "architecture", "data", "eps", "scale", "offset")


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata=None) -> None:
    """``safetensors`` save through a temp file + rename (a kill never leaves half a file)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_via(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning any corruption into a one-line ``UserError``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing weights file {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"corrupt weights file {path}: {reason}") from None


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing file {path}")
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"corrupt JSON in {path}: {exc}") from None
    if not isinstance(value, dict):
        raise UserError(f"corrupt JSON in {path}: expected an object")
    return value


def prior_config(prior: EnergyPrior) -> dict:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": prior.name,
        "architecture": prior.net.config, "data": prior.data, "eps": prior.eps,
        "scale": prior.scale, "offset": prior.offset, "training": prior.training,
        "card": prior.card, "solve_defaults": prior.solve_defaults,
    }


def save_prior(prior: EnergyPrior, folder: str | Path) -> Path:
    """Write ``folder/weights.safetensors`` and ``folder/config.json`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(prior.net.state_dict(), folder / WEIGHTS)
    atomic_write_bytes(folder / CONFIG, json.dumps(prior_config(prior), indent=2).encode())
    return folder


def validate_config(config: dict, where: Path) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise UserError(f"invalid prior config {where}: missing keys {', '.join(missing)}")
    if config["format"] != FORMAT or config["format_version"] != FORMAT_VERSION:
        raise UserError(f"invalid prior config {where}: format {config['format']!r} "
                        f"v{config['format_version']} is not {FORMAT!r} v{FORMAT_VERSION}")
    for key in ("eps", "scale"):
        value = config[key]
        if not isinstance(value, (int, float)) or not value > 0:
            raise UserError(f"invalid prior config {where}: {key} must be a positive number")
    if not isinstance(config["architecture"], dict) or not isinstance(config["data"], dict):
        raise UserError(f"invalid prior config {where}: architecture and data must be objects")


def load_prior_folder(folder: str | Path, device: str | torch.device = "cpu") -> EnergyPrior:
    """Load and validate a prior folder; returns a frozen ``EnergyPrior`` on ``device``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a prior folder")
    if not folder.is_dir():
        raise UserError(f"prior folder {folder} does not exist")
    config = read_json(folder / CONFIG)
    validate_config(config, folder / CONFIG)
    try:
        net = build_net(config["architecture"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid architecture in {folder / CONFIG}: {exc}") from None
    tensors = read_tensors(folder / WEIGHTS)
    expected = net.state_dict()
    if set(tensors) != set(expected):
        extra = sorted(set(tensors) - set(expected))[:3]
        lacking = sorted(set(expected) - set(tensors))[:3]
        raise UserError(f"weights in {folder} do not match the architecture "
                        f"(missing {lacking}, unexpected {extra})")
    for key, tensor in tensors.items():
        want = expected[key]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise UserError(f"weights in {folder} do not match the architecture: {key} has "
                            f"{tuple(tensor.shape)} {tensor.dtype}, expected "
                            f"{tuple(want.shape)} {want.dtype}")
        if not torch.isfinite(tensor).all():
            raise UserError(f"corrupt weights in {folder}: {key} has non-finite values")
    net.load_state_dict(tensors)
    prior = EnergyPrior(net, eps=config["eps"], scale=config["scale"], offset=config["offset"],
                        data=config["data"], name=config.get("name") or folder.name,
                        card=config.get("card"), training=config.get("training"),
                        solve_defaults=config.get("solve_defaults"))
    return prior.frozen().to(device)

"""Training checkpoints in one safetensors file: tensors plus a JSON header, written atomically.

Holds the model, its EMA, Adam's moment tensors, the step and the RNG states, so ``--resume``
continues bit-for-bit. The JSON part rides in the safetensors metadata, so the pair can never be
torn apart by a kill between two writes. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from em_inverse.errors import UserError
from em_inverse.priors.checkpoint import atomic_save_tensors

CHECKPOINT = "checkpoint.safetensors"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split ``optimizer.state_dict()`` into flat tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: Path, *, step: int, model: torch.nn.Module, ema: dict,
                    optimizer: torch.optim.Optimizer, generators: dict[str, torch.Generator],
                    extra: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.items()})
    optim_tensors, optim_meta = optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    for name, generator in generators.items():
        tensors[f"rng.{name}"] = generator.get_state()
    meta = {"step": step, "optimizer": optim_meta, "extra": extra}
    atomic_save_tensors(tensors, path, metadata={"em_inverse_state": json.dumps(meta)})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a training checkpoint; ``UserError`` if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint to resume from at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["em_inverse_state"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise UserError(f"corrupt training checkpoint {path}: {str(exc).splitlines()[0]}") from None
    return tensors, meta


def section(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

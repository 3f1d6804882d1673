"""The energy net a run trains, and the checks that it fits the data, made before a run writes
anything: ``--arch`` sizes, the kind of data the net takes, and one evaluation on real samples.

Vector data sets (``toy2d:*``, samples (B, dim)) take an ``MLPEnergy``; image data sets
(``fashion-mnist``, ``patches:*``, ``folder:*``, samples (B, C, H, W)) take a ``ConvEnergy``,
``GlobalEnergy`` or ``OpponentEnergy``.
"""
from __future__ import annotations

import inspect
import json

import torch

from em_inverse.errors import UserError
from em_inverse.priors.nets import ARCHITECTURES

#: The kind of data each architecture takes.
DATA_KIND = {"MLPEnergy": "vector", "ConvEnergy": "image", "GlobalEnergy": "image",
             "OpponentEnergy": "image"}

#: Architecture fields that are sizes (>= 1) or counts (>= 0) of layers, channels or pixels.
SIZES = ("dim", "width", "depth", "channels", "levels", "hidden")
COUNTS = ("blocks",)

#: Samples evaluated once to check that a net takes the data (cheap at any size).
PROBE_SAMPLES = 2


def default_architecture(dataset) -> dict:
    if dataset.kind_of_data == "vector":
        return {"type": "MLPEnergy", "dim": dataset.dim, "width": 128, "depth": 3}
    if dataset.name.startswith("fashion-mnist"):
        return {"type": "GlobalEnergy", "channels": dataset.channels,
                "image_size": list(dataset.image_size), "width": 32, "hidden": 256}
    return {"type": "ConvEnergy", "channels": dataset.channels, "width": 32, "levels": 3,
            "blocks": 1}


def describe(arch: dict) -> str:
    """``arch`` as compact JSON, as one would pass it to ``--arch``."""
    return json.dumps(arch, separators=(",", ":"), default=str)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_architecture(arch: dict) -> None:
    """Raise a ``UserError`` unless ``arch`` names a known net (``"type"``) whose sizes are
    positive integers (``blocks`` may be 0) and whose ``image_size`` is [H, W] in pixels; an
    ``OpponentEnergy``'s ``channel_energy`` is checked the same way."""
    kind = arch.get("type")
    if kind not in ARCHITECTURES:
        what = f"unknown type {kind!r}" if "type" in arch else "no \"type\""
        raise UserError(f"the architecture {describe(arch)} has {what}; "
                        f"use one of {', '.join(sorted(ARCHITECTURES))}")
    for key in SIZES + COUNTS:
        lowest = 1 if key in SIZES else 0
        if key in arch and not (_is_int(arch[key]) and arch[key] >= lowest):
            wanted = "a positive integer" if lowest else "an integer >= 0"
            raise UserError(f"{key} of the architecture {kind} must be {wanted}, "
                            f"got {arch[key]!r}")
    size = arch.get("image_size")
    if size is not None and not (isinstance(size, (list, tuple)) and len(size) == 2
                                 and all(_is_int(s) and s >= 1 for s in size)):
        raise UserError(f"image_size of the architecture {kind} must be [height, width] in "
                        f"pixels, got {size!r}")
    inner = arch.get("channel_energy")
    if inner is not None:
        if not isinstance(inner, dict):
            raise UserError(f"channel_energy of the architecture {kind} must be a table, "
                            f"got {inner!r}")
        check_architecture(inner)


def with_defaults(arch: dict) -> dict:
    """``arch`` with the constructor defaults of its net filled in (e.g. ``channels`` 1)."""
    parameters = inspect.signature(ARCHITECTURES[arch["type"]]).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return defaults | arch


def check_architecture_fits(arch: dict, dataset) -> None:
    """Raise a ``UserError`` if the net ``arch`` (checked by ``check_architecture``) cannot
    take ``dataset``'s samples: images for a vector net or the reverse, vectors of another
    dimension, images with another channel count or (a fixed-size net) another size."""
    full = with_defaults(arch)
    wanted = DATA_KIND.get(arch["type"], dataset.kind_of_data)
    if wanted != dataset.kind_of_data:
        nets = sorted(k for k, v in DATA_KIND.items() if v == dataset.kind_of_data)
        choice = ", ".join(nets[:-1]) + " or " + nets[-1] if len(nets) > 1 else nets[0]
        raise UserError(f"the architecture {arch['type']} takes {wanted}s, the data "
                        f"{dataset.name} has {dataset.kind_of_data}s: use {choice} for it "
                        "(or leave --arch out)")
    if dataset.kind_of_data == "vector":
        if full.get("dim", dataset.dim) != dataset.dim:
            raise UserError(f"the data {dataset.name} has vectors of dimension {dataset.dim}, "
                            f"the architecture {arch['type']} takes {full['dim']}")
        return
    channels = full.get("channels")
    if channels is not None and channels != dataset.channels:
        hint = " (folder: data: --channels reads the files as gray or colour)" \
            if dataset.name.startswith("folder:") else ""
        raise UserError(f"the data {dataset.name} has {dataset.channels} channel(s), the "
                        f"architecture {arch['type']} takes {channels}{hint}")
    size = full.get("image_size")
    if size is not None and tuple(size) != tuple(dataset.image_size):
        raise UserError(f"the data {dataset.name} has {dataset.image_size[0]}x"
                        f"{dataset.image_size[1]} images, the architecture {arch['type']} "
                        f"takes {size[0]}x{size[1]}")


def check_net_takes_data(net: torch.nn.Module, arch: dict, dataset, scale: float,
                         offset: float, device: torch.device) -> None:
    """Evaluate V and grad V once on ``PROBE_SAMPLES`` samples of ``dataset`` (mapped to the
    internal scale, ``x * scale + offset``) and raise a ``UserError`` naming the reason if
    ``net`` cannot take them or does not return one energy per sample, shape (B,). Draws from
    its own generator and leaves the weights and their gradients untouched, so a run and its
    resumed continuation stay bit-for-bit."""
    x = dataset.sample(PROBE_SAMPLES, torch.Generator().manual_seed(0)).to(device)
    x = (x * scale + offset).requires_grad_(True)
    try:
        energy = net(x)
        if tuple(energy.shape) != (PROBE_SAMPLES,):
            raise ValueError(f"it returns energies of shape {tuple(energy.shape)}, "
                             f"not ({PROBE_SAMPLES},)")
        torch.autograd.grad(energy.sum(), x)
    except Exception as exc:  # torch raises several types for mismatched shapes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the architecture {describe(arch)} does not fit the data "
                        f"{dataset.name} (samples of shape {tuple(x.shape[1:])}): "
                        f"{reason}") from None

"""``TrainConfig``: every knob of an Energy Matching run, loadable from a JSON or TOML file."""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from em_inverse.errors import UserError
from em_inverse.training.datasets import AUGMENTATIONS, check_scales


LR_SCHEDULES = ("constant", "cosine")
CONFIG_SUFFIXES = (".toml", ".json")   # config files, read by their suffix
COSINE_FINAL_RATIO = 0.05   # the cosine schedule ends at lr * 0.05


@dataclass
class TrainConfig:
    """Defaults follow SPEC 4 / the paper except three, measured on toy2d:8gaussians (3000 steps,
    seed 0; 4000 samples within 1.5 of a centre): the paper's tau* = 1, lambda_cd = 1e-3 and an
    EMA of 0.999 left samples overshooting the modes (12% within 1.5: the flow target x1 - x0
    keeps pointing outward at t = 1 and 300 phase-2 steps barely reach a slow EMA); tau* = 0.8,
    lambda_cd = 0.05 and EMA 0.99 give 94% with every mode at 11-12%. Units: internal scale."""

    data: str = "toy2d:8gaussians"
    data_dir: str | None = None          # Fashion-MNIST IDX folder (default: Debian path)
    crop: int = 40                        # patch size for patches:/folder: data sets
    channels: int | None = None           # folder: force 1 or 3 channels
    augment: str = "flips"                # patch symmetries: "flips" (4) or "dihedral" (8)
    scales: list = field(default_factory=lambda: [1.0])  # patch images also at these sizes,
                                          # each in (0, 1] (multi-scale patches)
    arch: dict = field(default_factory=dict)  # {"type": "ConvEnergy", "width": 32, ...}; {} = auto
    name: str = ""                        # prior name written to the model card
    steps: int = 3000                     # total optimiser steps (phase 1 + phase 2)
    phase2_steps: int | None = None       # the last N steps add the contrastive term (None: 10%)
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 100
    lr_schedule: str = "constant"         # or "cosine": lr after warmup, down to lr/20 at the end
    ema_decay: float = 0.99
    clip: float = 1.0
    tau_star: float = 0.8                 # flow weight ramps to 0 (and eps(t) rises) after tau*
    lambda_cd: float = 0.05
    beta: float = 0.02                    # CD term clamped at >= -beta
    eps_max: float = 0.02                 # equilibrium temperature of the Langevin negatives
    langevin_steps: int = 200
    langevin_dt: float = 0.01
    negatives: int = 0                    # negatives per step (0 = batch size); half from data
    trim: float = 0.1                     # drop the top 10% of negative energies
    dsm_weight: float = 0.0               # optional near-data denoising-score term (SPEC 9)
    dsm_sigma_min: float = 0.01           # DSM noise levels, log-uniform, internal scale
    dsm_sigma_max: float = 0.3
    checkpoint_every: int = 500
    log_every: int = 10
    sample_every: int = 0                 # 0 = only at the end
    seed: int = 0
    init_from: str | None = None          # a run folder or a prior (bundled name or folder):
                                          # start from its weights and EMA (a warm restart: a
                                          # fresh optimiser and schedule, phase 2 again)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """The config in a ``.toml`` or ``.json`` file (read by its suffix) of the keys above;
        a ``UserError`` for any other suffix, a file we cannot read or parse, or a value that
        is not a table of keys."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist")
        suffix = path.suffix.lower()
        if suffix not in CONFIG_SUFFIXES:
            raise UserError(f"config file {path} must be a .toml or .json file, "
                            f"not {suffix or 'one without a suffix'}")
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"cannot parse config file {path}: not text ({exc})") from None
        try:
            values = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
        except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
            raise UserError(f"cannot parse config file {path}: {exc}") from None
        if not isinstance(values, dict):
            raise UserError(f"config file {path} must hold a table of keys, "
                            f"not a {type(values).__name__}")
        return cls.from_dict(values, str(path))

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown keys in {where}: {', '.join(unknown)}")
        types = {f.name: f.type for f in fields(cls)}
        values = {name: _typed(name, value, types[name], where) for name, value in values.items()}
        return cls(**values).validated()

    def validated(self) -> "TrainConfig":
        positive = ("steps", "batch_size", "lr", "langevin_steps", "langevin_dt",
                    "checkpoint_every", "log_every", "crop", "eps_max")
        for name in positive:
            if not getattr(self, name) > 0:
                raise UserError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.phase2_steps is not None and not 0 <= self.phase2_steps <= self.steps:
            raise UserError("phase2-steps must be between 0 and steps")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserError(f"lr-schedule must be one of {', '.join(LR_SCHEDULES)}, "
                            f"got {self.lr_schedule!r}")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"augment must be one of {', '.join(AUGMENTATIONS)}, "
                            f"got {self.augment!r}")
        self.scales = list(check_scales(self.scales))
        if not 0 <= self.ema_decay < 1:
            raise UserError("ema-decay must be in [0, 1)")
        if not 0 < self.tau_star <= 1:
            raise UserError("tau-star must be in (0, 1]")
        if self.channels not in (None, 1, 3):
            raise UserError(f"channels must be 1 (gray) or 3 (colour), got {self.channels}")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"seed must be in [0, 2^32), got {self.seed}")
        return self

    def learning_rate(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based): linear warmup, then the schedule."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.lr_schedule == "constant":
            return self.lr
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - 1 - self.warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * (COSINE_FINAL_RATIO + (1.0 - COSINE_FINAL_RATIO) * cosine)

    @property
    def phase2_length(self) -> int:
        """Number of final steps that include the contrastive term."""
        return self.steps // 10 if self.phase2_steps is None else self.phase2_steps

    def to_dict(self) -> dict:
        return asdict(self)


#: The Python types a config value may have, per field annotation.
_ACCEPTED = {"int": (int,), "float": (int, float), "str": (str,), "dict": (dict,),
             "list": (list,)}


def _typed(name: str, value, annotation: str, where: str):
    """``value`` if it fits the field's annotation (``int``, ``float``, ``str``, ``dict``,
    ``list``, each optionally ``| None``), ints widened to float; else a ``UserError`` naming
    the key."""
    kind, _, optional = annotation.partition(" | ")
    if value is None and optional == "None":
        return None
    if isinstance(value, _ACCEPTED[kind]) and not isinstance(value, bool):
        return float(value) if kind == "float" else value
    wanted = {"int": "an integer", "float": "a number", "str": "a string",
              "dict": "a table", "list": "a list"}[kind]
    raise UserError(f"{name} in {where} must be {wanted}, got {value!r}")

"""``em-inverse train``: Energy Matching training from a config file and/or options."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from em_inverse.cli.common import DeviceOption, QuietOption, say, seed_in_range, user_errors
from em_inverse.errors import UserError


def _opt(help_text: str):
    return typer.Option(help=help_text, show_default=False)


@user_errors
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (also a prior folder).")],
    config: Annotated[Optional[Path], _opt("JSON or TOML config file; options override it.")] = None,
    data: Annotated[Optional[str], _opt("toy2d:8gaussians|moons|checkerboard, fashion-mnist, "
                                        "patches:natural-gray|natural-rgb, folder:PATH")] = None,
    data_dir: Annotated[Optional[str], _opt("Fashion-MNIST IDX folder.")] = None,
    crop: Annotated[Optional[int], _opt("Patch size for patches:/folder: data.")] = None,
    channels: Annotated[Optional[int], _opt("folder: data read as 1 (gray) or 3 (colour) "
                                            "channels (default: as the files are).")] = None,
    scales: Annotated[Optional[str], _opt("patches:/folder: data also at these sizes, "
                                          "comma-separated, each in (0, 1], e.g. 1,0.5.")] = None,
    arch: Annotated[Optional[str], _opt('Architecture JSON, e.g. \'{"type": "ConvEnergy", "width": 32}\'.')] = None,
    name: Annotated[Optional[str], _opt("Prior name for the model card.")] = None,
    steps: Annotated[Optional[int], _opt("Total optimiser steps.")] = None,
    phase2_steps: Annotated[Optional[int], _opt("Final steps with the contrastive term.")] = None,
    batch_size: Annotated[Optional[int], _opt("Minibatch size.")] = None,
    lr: Annotated[Optional[float], _opt("Adam learning rate.")] = None,
    ema_decay: Annotated[Optional[float], _opt("EMA decay of the weights used for inference.")] = None,
    eps_max: Annotated[Optional[float], _opt("Equilibrium temperature of the negatives.")] = None,
    tau_star: Annotated[Optional[float], _opt("tau* of the flow weight and eps(t).")] = None,
    lambda_cd: Annotated[Optional[float], _opt("Weight of the contrastive term.")] = None,
    beta: Annotated[Optional[float], _opt("Clamp of the contrastive term (>= -beta).")] = None,
    langevin_steps: Annotated[Optional[int], _opt("Langevin steps per negative chain.")] = None,
    dsm_weight: Annotated[Optional[float], _opt("Weight of the optional denoising-score term.")] = None,
    checkpoint_every: Annotated[Optional[int], _opt("Checkpoint every N steps.")] = None,
    sample_every: Annotated[Optional[int], _opt("Write plots every N steps (0: at the end).")] = None,
    init_from: Annotated[Optional[str], _opt("Run folder, or prior (bundled name or prior "
                                             "folder), whose weights and EMA this run starts "
                                             "from: a warm restart or a fine-tune (a "
                                             "narrower ConvEnergy is widened).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT's checkpoint.")] = False,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", callback=seed_in_range, help="Random seed, 0 to 2^32 - 1.")] = None,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
):
    """Train an energy prior with Energy Matching (checkpoints atomically; --resume continues)."""
    from em_inverse.devices import resolve_device
    from em_inverse.training import TrainConfig, Trainer
    from em_inverse.training.run_folder import check_run_folder

    check_run_folder(out, resume)  # before any work: nothing is written if it fails
    values = TrainConfig.from_file(config).to_dict() if config else {}
    overrides = {"data": data, "data_dir": data_dir, "crop": crop, "channels": channels,
                 "name": name, "steps": steps,
                 "phase2_steps": phase2_steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
                 "eps_max": eps_max, "tau_star": tau_star, "lambda_cd": lambda_cd, "beta": beta,
                 "langevin_steps": langevin_steps, "dsm_weight": dsm_weight,
                 "checkpoint_every": checkpoint_every, "sample_every": sample_every, "seed": seed,
                 "init_from": init_from}
    if scales is not None:
        try:
            overrides["scales"] = [float(s) for s in scales.split(",")]
        except ValueError:
            raise UserError(f"--scales must be numbers separated by commas, "
                            f"got {scales!r}") from None
    if arch is not None:
        try:
            overrides["arch"] = json.loads(arch)
        except json.JSONDecodeError as exc:
            raise UserError(f"--arch is not valid JSON: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig.from_dict(values, "options")
    trainer = Trainer(cfg, out, resolve_device(device), quiet=quiet)
    prior = trainer.fit(resume=resume)
    if trainer.step == trainer.first_step:  # a finished run resumed at its own --steps
        say(quiet, f"nothing left to train: {out} already holds all {trainer.step} steps; its "
                   f"prior and plots were written again from the checkpoint (pass a larger "
                   f"--steps to train on)")
        return
    say(quiet, f"trained {trainer.step} steps in {trainer.train_seconds:.1f} s "
               f"({trainer.step / max(trainer.train_seconds, 1e-9):.2f} steps/s); "
               f"prior written to {out} ({prior.num_parameters} parameters)")


def register(app: typer.Typer) -> None:
    app.command("train")(train)

"""``em-inverse tune PRIOR``: pick a prior's default solver settings on training images."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from em_inverse.cli.common import DeviceOption, QuietOption, say, user_errors
from em_inverse.errors import UserError


@user_errors
def tune(
    prior: Annotated[Path, typer.Argument(help="Prior folder to tune (its config.json is updated).")],
    size: Annotated[int, typer.Option(help="Validation crop size (pixels).")] = 128,
    count: Annotated[int, typer.Option(help="Validation crops per task.")] = 6,
    steps: Annotated[int, typer.Option(
        help="MAP iterations per trial (the best trial's budget becomes the default).")] = 100,
    families: Annotated[str, typer.Option(
        help="Task families (or single entries such as superres-clean) to tune, "
             "comma-separated (the others keep their settings).")]
        = "denoise,deblur,superres,inpaint",
    skip_grid: Annotated[bool, typer.Option(
        "--skip-grid", help="Start from the prior's tuned settings and run only the later "
                            "stages: V averaged over the image's symmetries, a shorter "
                            "iteration budget, the noise level where the clean deblurring "
                            "and super-resolution settings give way to those tuned at 0.01, "
                            "and the one above which those run their MAP.")]
        = False,
    map_switch_only: Annotated[bool, typer.Option(
        "--map-switch-only", help="Keep the tuned deblurring and super-resolution settings and "
                                  "measure only the noise level above which they run their "
                                  "tuned MAP instead of their HQS.")] = False,
    anscombe_only: Annotated[bool, typer.Option(
        "--anscombe-only", help="Keep the tuned denoising settings and measure only which of "
                                "them, HQS or MAP, denoises Poisson measurements (on their "
                                "Anscombe transform).")] = False,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
):
    """Choose a prior's default method and settings per task family on TRAINING images, and
    write them into its config.json.

    The method is map or hqs (for fixed-size priors also the annealed sampler's posterior mean),
    chosen on crops of TRAINING images (Fashion-MNIST training images for fixed-size priors).
    Inpainting is tuned twice for fully convolutional priors: on scattered missing pixels and on
    a solid hole (the settings solve() takes for masks with holes); deblurring and
    super-resolution at noise 0.01 and without noise (the settings solve() takes below the noise
    level where the two cross on the same crops, once the clean settings pay for their cost);
    deblurring at noise 0.01 on a Gaussian and, for fully convolutional priors, a motion kernel.
    Last, the noise level above which deblurring and super-resolution run their tuned MAP
    instead of their HQS, and which denoiser runs on the Anscombe transform of a Poisson
    measurement."""
    import numpy as np

    from em_inverse.bench.tuning import CROP_BORDER, MIN_CROP_SIZE, tune_prior, write_tuning
    from em_inverse.bench.validation_set import ENTRIES
    from em_inverse.devices import resolve_device
    from em_inverse.operators.noise import MIN_SIGMA
    from em_inverse.priors import load_prior_folder
    from em_inverse.solvers.tuned_entries import ANSCOMBE_METHOD_KEY, MAP_ABOVE_KEY, SWITCH_KEY

    chosen = tuple(f.strip() for f in families.split(",") if f.strip())
    unknown = [f for f in chosen if f not in ENTRIES]
    if unknown or not chosen:
        raise UserError(f"--families: unknown {', '.join(unknown) or '(none given)'}; "
                        f"choose from {', '.join(ENTRIES)}")
    if map_switch_only and anscombe_only:
        raise UserError("--map-switch-only and --anscombe-only each run one stage alone: "
                        "choose one")
    if anscombe_only and "denoise" not in chosen:
        raise UserError("--anscombe-only measures the denoise entry: --families must include "
                        "denoise")
    for name, value in (("--size", size), ("--count", count), ("--steps", steps)):
        if value < 1:
            raise UserError(f"{name} must be positive")
    if size < MIN_CROP_SIZE:
        raise UserError(f"--size must be at least {MIN_CROP_SIZE} pixels: the score ignores "
                        f"{CROP_BORDER} on each side")
    model = load_prior_folder(prior, device=resolve_device(device))
    tuning = tune_prior(model, size=size, count=count, steps=steps, families=chosen,
                        skip_grid=skip_grid, map_switch_only=map_switch_only,
                        anscombe_only=anscombe_only,
                        progress=None if quiet else (lambda m: say(False, m)))
    write_tuning(prior, tuning)
    for family, settings in tuning["solve_defaults"].items():
        say(quiet, f"{family}: {settings}")
    for key, switch in tuning["switches"].items():
        if ANSCOMBE_METHOD_KEY in switch:
            scores = ", ".join(f"{p:g}: {h:.2f} hqs / {m:.2f} map" for p, h, m
                               in zip(switch["photons"], switch["hqs"], switch["map"]))
            say(quiet, f"{key}: {switch[ANSCOMBE_METHOD_KEY]} (PSNR dB at photons {scores})")
            continue
        if MAP_ABOVE_KEY in switch:
            above = switch[MAP_ABOVE_KEY]
            when = f"MAP above noise {above:.3g}" if above is not None else "HQS at every level"
            scores = ", ".join(f"{n:g}: {h:.2f} hqs / {m:.2f} map" for n, h, m
                               in zip(switch["noise"], switch["hqs"], switch["map"]))
            say(quiet, f"{key}: {when} (PSNR dB at noise {scores})")
            continue
        below = switch[SWITCH_KEY]
        when = f"taken below noise {below:.3g}" if below > MIN_SIGMA else "never taken"
        scores = ", ".join(f"{n:g}: {c:.2f} clean / {d:.2f}" for n, c, d
                           in zip(switch["noise"], switch["clean"], switch["noisy"]))
        cost = (f"{np.mean(switch['clean_cost']):.0f} clean / "
                f"{np.mean(switch['noisy_cost']):.0f}")
        say(quiet, f"{key}: {when} (PSNR dB at noise {scores}; grad V per solve {cost})")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)

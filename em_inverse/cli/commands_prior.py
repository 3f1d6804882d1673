"""``em-inverse sample``, ``priors``, ``score`` and ``opponent``: using a prior on its own."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from em_inverse.cli.common import (DeviceOption, QuietOption, SeedOption, say, user_errors,
                                   warnings_said)
from em_inverse.errors import UserError

PriorOption = Annotated[str, typer.Option("--prior", "-p", help="Bundled prior name or folder.")]


@user_errors
def sample(
    prior: PriorOption,
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 64,
    output: Annotated[Path, typer.Option("--output", "-o", help=".npy (vectors) or .png grid.")] = Path("samples.png"),
    size: Annotated[Optional[int], typer.Option(help="Image size for fully convolutional priors.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Langevin steps (default: the training recipe).")] = None,
    denoise: Annotated[bool, typer.Option(
        help="End with one Tweedie step at each sample's estimated noise level (priors trained "
             "with the denoising-score term); --no-denoise: the chains' end states.")] = True,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
):
    """Draw unconditional samples from noise (transport along -grad V, Langevin, then one
    denoising step)."""
    from tqdm.auto import tqdm

    from em_inverse.atomic import atomic_write_bytes
    from em_inverse.devices import make_generator, resolve_device
    from em_inverse.image_io import check_writable
    from em_inverse.priors import load_prior
    from em_inverse.priors.sampling import sample_prior, sampler_settings

    if n <= 0:
        raise UserError("-n must be positive")
    if steps is not None and steps <= 0:
        raise UserError("--steps must be positive")
    if size is not None and size < 1:
        raise UserError(f"--size must be a positive number of pixels, got {size}")
    check_writable(output, suffixes=(".png", ".npy"))
    dev = resolve_device(device)
    model = load_prior(prior, device=dev)
    vector = model.data.get("kind") == "vector"
    as_array = output.suffix.lower() == ".npy"
    if vector and not as_array:
        raise UserError(f"prior {model.name!r} draws vectors: write them to a .npy file")
    if size is not None and (vector or model.image_size is not None):
        raise UserError(f"--size applies to fully convolutional priors; {model.name!r} draws "
                        f"{'vectors' if vector else 'images of one size'}")
    shape = None
    if not vector and model.image_size is None:
        side = size or (model.data.get("training_size") or [64])[0]
        shape = (model.channels, side, side)
    total = steps or sampler_settings(model)["steps"]
    with tqdm(total=total, disable=quiet, desc="sample") as bar:
        x = sample_prior(model, n, generator=make_generator(seed, dev), steps=total, shape=shape,
                         denoise=denoise, callback=lambda k: bar.update(1))
    x = x.cpu()
    if as_array:
        buffer = io.BytesIO()
        np.save(buffer, x.numpy())
        atomic_write_bytes(output, buffer.getvalue())
    else:
        from em_inverse.training.plots import image_grid, save_png_array
        save_png_array(image_grid(x).numpy(), output)
    say(quiet, f"wrote {n} samples to {output}")


@user_errors
def priors(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False):
    """List the bundled priors with their model cards."""
    from em_inverse.cli.card_text import card_lines
    from em_inverse.priors import list_priors

    cards = list_priors()
    if as_json:
        typer.echo(json.dumps(cards, indent=2))
        return
    if not cards:
        typer.echo("no bundled priors")
    for index, config in enumerate(cards):
        typer.echo(("\n" if index else "") + "\n".join(card_lines(config)))


@user_errors
def score(
    images: Annotated[list[Path], typer.Argument(help="Image files (or .npy) to score.")],
    prior: Annotated[Optional[str], typer.Option("--prior", "-p", help="Bundled prior name or folder (default by channels).")] = None,
    device: DeviceOption = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
):
    """Print the energy V(x) (unnormalised -log p, and per pixel) of each image."""
    import torch

    from em_inverse.devices import resolve_device
    from em_inverse.image_io import read_image
    from em_inverse.priors import default_prior_name, load_prior

    dev = resolve_device(device)
    rows = []
    for path in images:
        with warnings_said(quiet=False):
            x = read_image(path).to(dev)
        model = load_prior(prior or default_prior_name(x.shape[1]), device=dev)
        try:
            model.check_input(x)
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
        with torch.no_grad():
            energy = float(model.energy(x)[0])
        rows.append({"image": str(path), "prior": model.name, "energy": energy,
                     "energy_per_pixel": energy / x[0, 0].numel(),
                     "neg_log_prob": energy / model.eps})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            typer.echo(f"{row['image']}\tV={row['energy']:.6g}\tV/pixel={row['energy_per_pixel']:.6g}"
                       f"\t-log p={row['neg_log_prob']:.6g} (+const)\tprior={row['prior']}")


@user_errors
def opponent(
    gray: Annotated[str, typer.Argument(help="Gray prior: bundled name or folder.")],
    out: Annotated[Path, typer.Argument(help="Folder for the colour prior.")],
    chroma_weight: Annotated[float, typer.Option(
        "--chroma-weight", help="Weight of the two chroma terms (1: the plain sum).")] = 1.0,
    force: Annotated[bool, typer.Option("--force", help="Replace a prior already in OUT.")] = False,
    quiet: QuietOption = False,
):
    """Build a colour prior from a gray one: V(rgb) = the gray V summed over the luminance and
    the two chroma channels (no training). Tune it next with 'em-inverse tune OUT'."""
    from em_inverse.image_io import check_new_folder
    from em_inverse.priors import load_prior, save_prior
    from em_inverse.priors.checkpoint import CONFIG
    from em_inverse.priors.colour import opponent_prior

    if (out / CONFIG).exists() and not force:
        raise UserError(f"{out} already holds a prior: pass --force to replace it")
    if not chroma_weight > 0:
        raise UserError(f"--chroma-weight must be positive, got {chroma_weight:g}")
    check_new_folder(out)
    colour = opponent_prior(load_prior(gray), name=out.name, chroma_weight=chroma_weight)
    save_prior(colour, out)
    say(quiet, f"wrote {out}: {colour.card['colour']} ({colour.num_parameters} parameters)")


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
    app.command("priors")(priors)
    app.command("score")(score)
    app.command("opponent")(opponent)

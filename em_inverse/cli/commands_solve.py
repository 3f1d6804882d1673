"""``em-inverse solve`` (restore an image) and ``em-inverse degrade`` (simulate a measurement).

Both share the operator options, so ``degrade`` followed by ``solve`` with the same options
round-trips. Every output is written atomically, after all inputs have been validated: a run
that fails leaves no file behind.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from em_inverse.cli.common import (DeviceOption, QuietOption, SeedOption, check_outputs,
                                   require_file, say, user_errors, warnings_said)
from em_inverse.errors import UserError

OpOption = Annotated[str, typer.Option(
    "--op", help="Operator: inpaint, deblur, superres or denoise.")]
MaskOption = Annotated[Optional[str], typer.Option(
    "--mask", help="inpaint: mask file (white/non-zero = fill, as OpenCV/LaMa), or "
                   "random:FRACTION, box[:TOP,LEFT,HEIGHT,WIDTH], strokes[:N].")]
MaskKeepsOption = Annotated[bool, typer.Option(
    "--mask-keeps", help="Mask files mark the observed pixels instead of the holes.")]
KernelOption = Annotated[Optional[str], typer.Option(
    "--kernel", help="deblur: gaussian:SIGMA, motion:LENGTH[,ANGLE] or a kernel .png/.npy.")]
BoundaryOption = Annotated[str, typer.Option(
    "--boundary", help="deblur/superres boundary: reflect (photos) or circular.")]
FactorOption = Annotated[Optional[int], typer.Option(
    "--factor", help="superres: integer factor (the output is the high-resolution image).")]
NoiseOption = Annotated[Optional[float], typer.Option(
    "--noise", help="Gaussian noise std on the [0, 1] scale (solve: default estimated from "
                    "the image; degrade: default 0; with --photons: the read noise, default "
                    "0).")]
PhotonsOption = Annotated[Optional[float], typer.Option(
    "--photons", help="Poisson (shot) noise for low light: photons per unit intensity, the "
                      "mean count of a white pixel (noise variance I/photons at intensity "
                      "I).")]

BitsOption = Annotated[int, typer.Option(
    "--bits", help="Bits per sample of the PNG images written: 8 or 16 (.npy keeps float32 "
                   "values).")]


#: The largest noise std accepted, on the [0, 1] image scale: ten times the whole range.
MAX_NOISE = 10.0


def _operator_options(op, mask, kernel, factor, noise, photons) -> None:
    from em_inverse.operators import TASKS
    from em_inverse.operators.shot_noise import check_photons

    if op not in TASKS:
        raise UserError(f"unknown operator {op!r}: use one of {', '.join(TASKS)}")
    if noise is not None and not 0 <= noise <= MAX_NOISE:
        raise UserError(f"--noise must be in [0, {MAX_NOISE:g}] (a std on the [0, 1] image "
                        f"scale), got {noise:g}")
    if photons is not None:
        check_photons(photons, "--photons")
    for flag, given, needs in (("--mask", mask, "inpaint"), ("--kernel", kernel, "deblur"),
                               ("--factor", factor, "superres")):
        if given is not None and op != needs:
            raise UserError(f"{flag} applies to --op {needs}, not --op {op}")
    if op == "inpaint" and mask is None:
        raise UserError("--op inpaint needs --mask (a mask file, random:F, box or strokes)")
    if op == "deblur" and kernel is None:
        raise UserError("--op deblur needs --kernel (gaussian:SIGMA, motion:LEN[,ANGLE] or "
                        "a file)")
    if op == "superres" and factor is None:
        raise UserError("--op superres needs --factor N")


def _read(path: Path, quiet: bool, measurement: bool = False):
    from em_inverse.image_io import read_image

    with warnings_said(quiet):
        return read_image(path, measurement=measurement)


def _check_sampler_outputs(method: str, std, samples, tuned: bool = False) -> None:
    """--std and --samples need a sampler (``tuned``: the method is the prior's default)."""
    from em_inverse.solvers import SAMPLERS

    for flag, given in (("--std", std), ("--samples", samples)):
        if given is not None and method not in SAMPLERS:
            which = f"the prior's default for this task is {method}; " if tuned else ""
            raise UserError(f"{flag} needs a sampler ({which}--method "
                            f"{' or '.join(SAMPLERS)}): a point estimate has no uncertainty "
                            "or samples")


@user_errors
def solve_command(
    image: Annotated[Path, typer.Argument(help="The measurement: PNG/JPEG/TIFF or .npy.")],
    op: OpOption = "denoise",
    mask: MaskOption = None,
    mask_keeps: MaskKeepsOption = False,
    kernel: KernelOption = None,
    boundary: BoundaryOption = "reflect",
    factor: FactorOption = None,
    noise: NoiseOption = None,
    photons: PhotonsOption = None,
    prior: Annotated[Optional[str], typer.Option(
        "--prior", help="Bundled prior name or prior folder (default: by channels).")] = None,
    method: Annotated[Optional[str], typer.Option(
        "--method", help="map, hqs (annealed splitting), posterior (Langevin chains), anneal "
                         "(Langevin annealed over noise levels) or em (Energy Matching "
                         "sampler); default: the prior's tuned method for the task.")] = None,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", help="posterior/anneal/em: samples returned and shown (at least this many "
                          "chains run; default 4 chains, 16 for anneal).")] = None,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", help="Iterations (map), levels (hqs: tuned with the prior's sigma_start and "
                         "weight; fewer may fail) or steps per chain (default: method/prior).")]
    = None,
    mala: Annotated[bool, typer.Option("--mala", help="posterior: Metropolis correction.")]
    = False,
    prior_weight: Annotated[Optional[float], typer.Option(
        "--prior-weight", help="Weight w of V/eps (default: the prior's calibration).")] = None,
    symmetry: Annotated[Optional[str], typer.Option(
        "--symmetry", help="Average V over the image's flips ('flips', 4x the cost) or the 8 "
                           "symmetries of the square ('dihedral', 8x), or 'none'; default: "
                           "the prior's tuned setting for the task.")] = None,
    step_cap: Annotated[Optional[float], typer.Option(
        "--step-cap", help="hqs: hold each prior step's RMS to at most this many times its "
                           "level (default 1.5: keeps natural-rgb's deblurring of wide blur "
                           "from wrecking the image; inf: no cap).")] = None,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Estimate (.png, or .npy for float values); default "
                               "IMAGE.restored.png.")] = None,
    std: Annotated[Optional[Path], typer.Option(
        "--std", help="Uncertainty map (.png scaled to its maximum, or .npy raw).")] = None,
    figure: Annotated[Optional[Path], typer.Option(
        "--figure", help="Side-by-side PNG: measurement, estimate, std, samples.")] = None,
    bits: BitsOption = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
    = False,
):
    """Restore an image: MAP estimate or posterior mean with a learned energy prior."""
    require_file(image)  # before the imports below, which take seconds
    from em_inverse.devices import make_generator, resolve_device
    from em_inverse.image_io import FarOutsideWarning, check_writable, write_image
    from em_inverse.operators import build_operator, image_shape_for
    from em_inverse.priors import default_prior_name, load_prior
    from em_inverse.priors.symmetry import GROUPS
    from em_inverse.solvers import (CLEAN_SUFFIX, HOLE_KEY, METHODS, SAMPLERS, clean_below,
                                    hqs_fallback, noise_level, solve, stabilised_problem,
                                    tuned_defaults)

    _operator_options(op, mask, kernel, factor, noise, photons)
    _check_bits(bits)
    if method is not None and method not in METHODS:
        raise UserError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    for name, value in (("--steps", steps), ("--samples", samples)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    if prior_weight is not None and not prior_weight > 0:
        raise UserError(f"--prior-weight must be > 0, got {prior_weight:g}")
    if symmetry is not None and symmetry not in GROUPS:
        raise UserError(f"--symmetry must be one of {', '.join(GROUPS)}, got {symmetry!r}")
    if step_cap is not None and not step_cap > 0:
        raise UserError(f"--step-cap must be > 0, got {step_cap:g}")
    if step_cap is not None and method not in (None, "hqs"):
        raise UserError(f"--step-cap applies to --method hqs, not {method}")
    if method is not None:
        _check_sampler_outputs(method, std, samples)
    output = output or image.with_name(f"{image.stem}.restored.png")
    targets = [p for p in (output, std, figure) if p is not None]
    check_outputs(targets, [image, mask, kernel])
    for path in (output, std):
        if path is not None:
            check_writable(path)
    if figure is not None:
        check_writable(figure, suffixes=(".png",))

    y = _read(image, quiet, measurement=True)
    dev = resolve_device(device)
    model = load_prior(prior or default_prior_name(y.shape[1]), device=dev)
    generator = make_generator(seed, dev)
    shape = image_shape_for(op, tuple(y.shape), factor)
    with warnings_said(quiet):
        physics = build_operator(op, shape, mask=mask, mask_keeps=mask_keeps, kernel=kernel,
                                 boundary=boundary, factor=factor, noise=noise,
                                 photons=photons, generator=generator, device=dev)
    y = y.to(dev)
    declared = noise if photons is None else None  # --noise is then the read noise
    sigma, sigma_source = noise_level(y, physics, declared)
    if sigma_source == "estimated":
        say(quiet, f"noise sigma estimated from the image: {float(sigma.max()):.4g} "
                   f"(x 255 = {255 * float(sigma.max()):.3g}; --noise sets it)")
    if sigma_source == "poisson":
        say(quiet, f"Poisson noise, {photons:g} photons per unit intensity: a std per pixel, "
                   f"{float(sigma.max()):.4g} on average")
    # the settings solve will take: those of the Anscombe transform's Gaussian denoising, if any
    planned_physics, level, poisson = physics, float(sigma.max()), sigma_source == "poisson"
    stabilised = stabilised_problem(y, physics, model, method, op, {}) if poisson else None
    if stabilised is not None:
        say(quiet, f"solved as the Gaussian denoising of the measurement's Anscombe transform, "
                   f"at noise {stabilised.sigma:.4g}")
        planned_physics, level, poisson = stabilised.operator, stabilised.sigma, False
    tuned_key, tuned = tuned_defaults(model, planned_physics, level)
    planned = method or (stabilised and stabilised.method) or tuned.get("method") or "map"
    fallback = None if method else hqs_fallback(planned, model, level, op, poisson=poisson,
                                                entry=tuned)
    if fallback:
        say(quiet, f"note: {fallback}")
        planned = "map"
    _check_sampler_outputs(planned, std, samples, tuned=True)
    if tuned_key is not None:
        why = (" (most missing pixels lie in solid holes)" if tuned_key == HOLE_KEY else
               f" (noise below {clean_below(model, tuned_key.removesuffix(CLEAN_SUFFIX)):.2g})"
               if tuned_key.endswith(CLEAN_SUFFIX) else "")
        say(quiet, f"{planned}: {model.name}'s settings tuned for {tuned_key}{why}")
    # a declared level goes through as declared: --noise 0 makes an inpainting exact
    options = {"steps": steps, "prior_weight": prior_weight, "symmetry": symmetry, "seed": seed}
    if photons is None:
        options["sigma"] = noise if noise is not None else float(sigma.max())
    if step_cap is not None:
        if planned != "hqs":
            why = (f"the fallback: {fallback}" if fallback
                   else f"the prior's setting for {tuned_key or op}")
            raise UserError(f"--step-cap applies to hqs, but this solve runs {planned} ({why})")
        options["step_cap"] = step_cap
    if planned in SAMPLERS:
        options["samples"] = samples
    if mala:
        if planned != "posterior":
            raise UserError(f"--mala applies to --method posterior, but this solve runs "
                            f"{planned}")
        options["mala"] = True
    # solve takes the same fallback (settings["fallback"]) when the method is left to the prior
    with warnings_said(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore", FarOutsideWarning)  # said when the file was read
        solution = solve(y, physics, model, method, generator=generator, progress=not quiet,
                         **options)
    solution.settings["sigma_source"] = sigma_source  # solve was given the level found above
    if "observed_pixels" in solution.settings:
        say(quiet, "note: noise 0: the observed pixels are returned as measured")

    write_image(output, solution.estimate[:1], bits=bits)
    std_scale = None
    if std is not None:
        std_map = solution.std[:1]
        if std.suffix.lower() == ".png":
            std_scale = float(std_map.max()) or 1.0
            std_map = std_map / std_scale
        write_image(std, std_map, bits=bits)
    if figure is not None:
        _write_figure(figure, y, solution)
    for path in targets:
        say(quiet, f"wrote {path}")
    if std_scale is not None:
        say(quiet, f"{std}: black is a std of 0, white {std_scale:.3g} (image units)")
    if as_json:
        summary = solution.summary()
        summary.update(input=str(image), output=str(output),
                       std=str(std) if std else None, std_png_scale=std_scale,
                       figure=str(figure) if figure else None, op=op, device=str(dev),
                       prior=model.name)
        typer.echo(json.dumps(summary, indent=2))


@user_errors
def degrade_command(
    image: Annotated[Path, typer.Argument(help="A clean image: PNG/JPEG/TIFF or .npy.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The measurement (.png/.npy).")],
    op: OpOption = "denoise",
    mask: MaskOption = None,
    mask_keeps: MaskKeepsOption = False,
    kernel: KernelOption = None,
    boundary: BoundaryOption = "reflect",
    factor: FactorOption = None,
    noise: NoiseOption = None,
    photons: PhotonsOption = None,
    mask_out: Annotated[Optional[Path], typer.Option(
        "--mask-out", help="inpaint: save the mask used (white = fill) for `solve --mask`.")]
    = None,
    bits: BitsOption = 8,
    seed: SeedOption = 0,
    quiet: QuietOption = False,
):
    """Simulate a measurement y = A x + noise from a clean image (the benchmarks' path)."""
    require_file(image)
    from em_inverse.devices import make_generator
    from em_inverse.image_io import check_writable, write_image
    from em_inverse.operators import build_operator, degrade

    _operator_options(op, mask, kernel, factor, noise, photons)
    _check_bits(bits)
    if mask_out is not None and op != "inpaint":
        raise UserError("--mask-out only applies to --op inpaint")
    check_outputs([output, mask_out], [image, mask, kernel])
    for path in (output, mask_out):
        if path is not None:
            check_writable(path)
    x = _read(image, quiet)
    if op == "superres" and factor and factor >= 2:
        height, width = x.shape[-2] // factor * factor, x.shape[-1] // factor * factor
        if (height, width) != tuple(x.shape[-2:]) and min(height, width) > 0:
            say(quiet, f"note: cropped to {height}x{width}, a multiple of the factor {factor}")
            x = x[..., :height, :width]
    generator = make_generator(seed, "cpu")
    with warnings_said(quiet):
        physics = build_operator(op, tuple(x.shape), mask=mask, mask_keeps=mask_keeps,
                                 kernel=kernel, boundary=boundary, factor=factor,
                                 noise=noise or 0.0, photons=photons, generator=generator)
    y = degrade(x, physics, generator)
    write_image(output, y, bits=bits)
    if mask_out is not None:  # black and white: 8 bits hold it
        write_image(mask_out, (physics.mask[:1, :1] == 0).float())
    say(quiet, f"wrote {output}" + (f" and {mask_out}" if mask_out else ""))


def _check_bits(bits: int) -> None:
    if bits not in (8, 16):
        raise UserError(f"--bits must be 8 or 16, got {bits}")


def _write_figure(path: Path, y, solution) -> None:
    """Measurement | estimate | std | up to 4 samples, one row, saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from em_inverse.image_io import atomic_write, tensor_to_array

    panels = [("measurement", y[:1].clamp(0, 1), "gray"),
              ("estimate", solution.estimate[:1].clamp(0, 1), "gray")]
    if solution.std is not None:
        panels.append(("std", solution.std[:1].mean(dim=1, keepdim=True), "magma"))
    if solution.samples is not None:
        for k in range(min(4, solution.samples.shape[1])):
            panels.append((f"sample {k + 1}", solution.samples[:1, k].clamp(0, 1), "gray"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3), squeeze=False)
    for ax, (title, image, cmap) in zip(axes[0], panels):
        array = tensor_to_array(image.cpu())
        vmax = float(array.max()) or 1.0 if title == "std" else 1.0
        shown = ax.imshow(array, cmap=cmap if array.ndim == 2 else None, vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.axis("off")
        if title == "std":  # its own scale: say which
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def register(app: typer.Typer) -> None:
    app.command("solve")(solve_command)
    app.command("degrade")(degrade_command)

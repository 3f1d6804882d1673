"""``em-inverse solve`` and ``degrade`` end to end, with a tiny random-weight ConvEnergy prior."""
from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from em_inverse.cli import commands_solve
from em_inverse.image_io import encode_png, read_image, write_image
from em_inverse.priors import ConvEnergy, EnergyPrior, save_prior

runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    app = typer.Typer(pretty_exceptions_enable=False)
    commands_solve.register(app)
    return app


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clean 16x16 gray image, its 50%-masked noisy measurement, the mask, a prior folder."""
    import torch

    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tiny"),
               root / "prior")
    ramp = np.linspace(0.2, 0.8, 16)
    write_image(root / "clean.png", torch.tensor(np.add.outer(ramp, ramp) / 2)[None, None])
    return root


def run(app, *args):
    return runner.invoke(app, [str(a) for a in args])


def test_degrade_then_solve_posterior_writes_every_output(app, files, tmp_path):
    degraded = run(app, "degrade", files / "clean.png", "--op", "inpaint", "--mask",
                   "random:0.5", "--noise", "0.02", "--seed", "1", "-o", tmp_path / "y.png",
                   "--mask-out", tmp_path / "m.png", "--quiet")
    assert degraded.exit_code == 0, degraded.output
    args = ["solve", tmp_path / "y.png", "--op", "inpaint", "--mask", tmp_path / "m.png",
            "--prior", files / "prior", "--method", "posterior", "--samples", "4",
            "--steps", "150", "--seed", "7", "--quiet"]
    first = run(app, *args, "-o", tmp_path / "a.png", "--std", tmp_path / "s.npy",
                "--figure", tmp_path / "f.png", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["settings"]["method"] == "posterior" and summary["samples"] == 4
    assert summary["diagnostics"]["steps"] == 150 and summary["prior"] == "tiny"
    for name in ("a.png", "s.npy", "f.png"):
        assert (tmp_path / name).stat().st_size > 0
    second = run(app, *args, "-o", tmp_path / "b.png")
    assert second.exit_code == 0, second.output
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    holes = read_image(tmp_path / "m.png")[0, 0] > 0
    std = np.load(tmp_path / "s.npy")
    assert std[holes.numpy()].mean() > 2 * std[~holes.numpy()].mean()


def test_std_needs_no_method_where_the_priors_tuned_default_is_a_sampler(app, files, tmp_path):
    import torch

    torch.manual_seed(0)
    tuned = {"inpaint": {"method": "anneal", "anneal": {"steps": 6, "levels": 3}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           solve_defaults=tuned), tmp_path / "prior")
    degraded = run(app, "degrade", files / "clean.png", "--op", "inpaint", "--mask",
                   "random:0.5", "-o", tmp_path / "y.png", "--mask-out", tmp_path / "m.png",
                   "--quiet")
    assert degraded.exit_code == 0, degraded.output
    base = ["solve", tmp_path / "y.png", "--mask", tmp_path / "m.png", "--quiet", "--json"]
    sampled = run(app, *base, "--op", "inpaint", "--prior", tmp_path / "prior",
                  "-o", tmp_path / "a.png", "--std", tmp_path / "s.npy")
    assert sampled.exit_code == 0, sampled.output
    assert json.loads(sampled.stdout)["settings"]["method"] == "anneal"
    assert np.load(tmp_path / "s.npy").max() > 0
    point = run(app, "solve", tmp_path / "y.png", "--quiet", "--op", "denoise", "--prior",
                tmp_path / "prior", "-o", tmp_path / "b.png", "--std", tmp_path / "t.npy")
    assert point.exit_code == 2 and "the prior's default for this task is map" in point.stderr
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "t.npy").exists()


def test_solve_says_which_tuned_settings_it_runs_holes_or_scattered_pixels(app, tmp_path):
    import torch

    torch.manual_seed(0)
    tuned = {"inpaint": {"method": "hqs", "hqs": {"steps": 2}},
             "inpaint-hole": {"method": "map", "map": {"steps": 3, "prior_weight": 4.0}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           solve_defaults=tuned), tmp_path / "prior")
    write_image(tmp_path / "x.png", torch.rand(1, 1, 32, 32))
    for mask, entry, method in (("random:0.5", "inpaint", "hqs"), ("box", "inpaint-hole", "map")):
        solved = run(app, "solve", tmp_path / "x.png", "--op", "inpaint", "--mask", mask,
                     "--prior", tmp_path / "prior", "-o", tmp_path / "y.png", "--json")
        assert solved.exit_code == 0, solved.output
        assert f"{method}: tuned's settings tuned for {entry}" in solved.stderr
        settings = json.loads(solved.stdout)["settings"]
        assert settings["tuned_defaults"] == entry and settings["method"] == method
    assert "solid holes" in solved.stderr
    assert settings["prior_weight"] == 4.0 and settings["steps"] == 3


def test_solve_estimates_the_noise_first_and_takes_the_clean_settings_without_noise(app, tmp_path):
    import torch

    tuned = {"superres": {"method": "hqs", "hqs": {"steps": 2}},
             "superres-clean": {"method": "map", "map": {"steps": 3}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           solve_defaults=tuned), tmp_path / "prior")
    smooth = torch.linspace(0.2, 0.8, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    write_image(tmp_path / "small.png", smooth.contiguous())
    for noise, entry, method in (([], "superres-clean", "map"), (["--noise", "0.02"], "superres",
                                                                  "hqs")):
        solved = run(app, "solve", tmp_path / "small.png", "--op", "superres", "--factor", "2",
                     *noise, "--prior", tmp_path / "prior", "-o", tmp_path / "big.png", "--json")
        assert solved.exit_code == 0, solved.output
        assert f"{method}: tuned's settings tuned for {entry}" in solved.stderr
        settings = json.loads(solved.stdout)["settings"]
        assert settings["tuned_defaults"] == entry and settings["method"] == method
    assert settings["sigma_source"] == "given"
    first = run(app, "solve", tmp_path / "small.png", "--op", "superres", "--factor", "2",
                "--prior", tmp_path / "prior", "-o", tmp_path / "big.png", "--json")
    assert json.loads(first.stdout)["settings"]["sigma_source"] == "estimated"
    assert first.stderr.index("noise sigma estimated") < first.stderr.index("(noise below 0.0063)")


def test_a_grey_mask_file_is_one_warning_line_for_degrade_and_solve(app, files, tmp_path):
    import torch

    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 0.6  # a soft brush: every non-black pixel is to fill
    write_image(tmp_path / "soft.png", mask)
    for command, image, output, extra in (
            ("degrade", files / "clean.png", tmp_path / "y.png", []),
            ("solve", tmp_path / "y.png", tmp_path / "x.png",
             ["--prior", files / "prior", "--steps", "3"])):  # an untrained V runs off at length
        result = run(app, command, image, "--op", "inpaint", "--mask", tmp_path / "soft.png",
                     "-o", output, *extra)
        assert result.exit_code == 0, result.output
        warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert warned == ["warning: mask " + str(tmp_path / "soft.png") + ": 16 pixel(s) are "
                          "neither black nor white (JPEG artifacts or soft edges?); every "
                          "non-black pixel counts as one to fill"], result.stderr


def test_an_npy_on_the_0_255_scale_is_one_warning_line_that_solve_does_not_repeat(
        app, files, tmp_path):
    """The reader warns with the file's name; solve, which warns for the arrays and tensors
    passed to it in Python, does not say it again."""
    eight_bit = 255 * read_image(files / "clean.png").numpy()[0, 0]
    np.save(tmp_path / "y.npy", eight_bit)
    result = run(app, "solve", tmp_path / "y.npy", "--op", "denoise", "--noise", "0.02",
                 "--prior", files / "prior", "--method", "map", "--steps", "2",
                 "-o", tmp_path / "x.npy")
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {tmp_path / 'y.npy'}: values span [{eight_bit.min():.4g}, "
                      f"{eight_bit.max():.4g}], far outside the [0, 1] image scale (8-bit "
                      f"values must be divided by 255)"], result.stderr
    assert "UserWarning" not in result.stderr


def test_photons_simulate_and_solve_shot_noise_with_a_variance_per_pixel(app, files, tmp_path):
    """--photons: Poisson noise in degrade; in solve a data term weighted per pixel (--noise is
    the read noise), never the noise-free rule of --noise 0 alone."""
    degraded = run(app, "degrade", files / "clean.png", "--op", "inpaint", "--mask", "random:0.5",
                   "--photons", "30", "--noise", "0", "-o", tmp_path / "y.npy",
                   "--mask-out", tmp_path / "m.png", "--quiet")
    assert degraded.exit_code == 0, degraded.output
    y = np.load(tmp_path / "y.npy")
    assert np.all(np.round(y * 30, 4) % 1 == 0)  # whole photon counts
    result = run(app, "solve", tmp_path / "y.npy", "--op", "inpaint", "--mask", tmp_path / "m.png",
                 "--photons", "30", "--noise", "0", "--prior", files / "prior", "--method", "map",
                 "--steps", "3", "-o", tmp_path / "x.npy", "--json")
    assert result.exit_code == 0, result.output
    assert "Poisson noise, 30 photons per unit intensity" in result.stderr
    assert "observed pixels are returned as measured" not in result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["sigma_source"] == "poisson" and 0.05 < settings["sigma"][0] < 0.2


def test_a_poisson_denoising_says_it_runs_on_the_anscombe_transform(app, files, tmp_path):
    """The line that names the settings names those solve takes: the tuned HQS at the
    transform's one noise level 1 / (2 sqrt(P)), not a MAP fallback for Poisson noise."""
    tuned = {"denoise": {"method": "hqs", "hqs": {"steps": 2}, "map": {"steps": 3}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           solve_defaults=tuned), tmp_path / "prior")
    degraded = run(app, "degrade", files / "clean.png", "--photons", "25", "-o",
                   tmp_path / "y.npy", "--quiet")
    assert degraded.exit_code == 0, degraded.output
    result = run(app, "solve", tmp_path / "y.npy", "--photons", "25", "--prior",
                 tmp_path / "prior", "-o", tmp_path / "x.npy", "--json")
    assert result.exit_code == 0, result.output
    assert "Anscombe transform, at noise 0.1\n" in result.stderr
    assert "hqs: tuned's settings tuned for denoise" in result.stderr
    assert "MAP instead" not in result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["method"] == "hqs" and settings["stabilised"]["sigma"] == pytest.approx(0.1)
    assert np.load(tmp_path / "x.npy").shape == (16, 16)
    tuned["denoise"]["anscombe_method"] = "map"  # the tuner's Anscombe stage chose MAP
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           solve_defaults=tuned), tmp_path / "prior")
    result = run(app, "solve", tmp_path / "y.npy", "--photons", "25", "--prior",
                 tmp_path / "prior", "-o", tmp_path / "x.npy", "--json")
    assert result.exit_code == 0, result.output
    assert "map: tuned's settings tuned for denoise" in result.stderr
    assert json.loads(result.stdout)["settings"]["method"] == "map"


def test_solve_says_before_the_run_when_the_tuned_hqs_gives_way_to_map(app, tmp_path):
    """Above the noise levels the prior's denoiser learned, its tuned HQS is replaced by its
    tuned MAP: the note comes first, and the line that names the settings names MAP."""
    import torch

    recipe = {"dsm_weight": 1.0, "dsm_sigma_min": 0.02, "dsm_sigma_max": 0.1}  # image units 0.05
    tuned = {"denoise": {"method": "hqs", "hqs": {"steps": 2}, "map": {"steps": 3}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="tuned",
                           training=recipe, solve_defaults=tuned), tmp_path / "prior")
    write_image(tmp_path / "x.png", torch.full((1, 1, 16, 16), 0.5))
    for noise, method in (("0.01", "hqs"), ("0.2", "map")):
        solved = run(app, "solve", tmp_path / "x.png", "--noise", noise, "--prior",
                     tmp_path / "prior", "-o", tmp_path / "y.png", "--json")
        assert solved.exit_code == 0, solved.output
        assert json.loads(solved.stdout)["settings"]["method"] == method
        assert f"{method}: tuned's settings tuned for denoise" in solved.stderr
    lines = solved.stderr.splitlines()
    assert lines[0].startswith("note: noise sigma 0.2 is near or above the highest level")
    assert lines[1] == "map: tuned's settings tuned for denoise"
    assert solved.stderr.count("MAP instead") == 1


@pytest.mark.parametrize("op,extra", [("denoise", []), ("deblur", ["--kernel", "gaussian:1"]),
                                      ("superres", ["--factor", "2"])])
def test_map_for_every_operator(app, files, tmp_path, op, extra):
    made = run(app, "degrade", files / "clean.png", "--op", op, *extra, "--noise", "0.02",
               "-o", tmp_path / "y.png", "--quiet")
    assert made.exit_code == 0, made.output
    solved = run(app, "solve", tmp_path / "y.png", "--op", op, *extra, "--prior",
                 files / "prior", "--steps", "5", "-o", tmp_path / "x.png", "--quiet")
    assert solved.exit_code == 0, solved.output
    assert read_image(tmp_path / "x.png").shape == (1, 1, 16, 16)


def test_solve_reads_the_unclipped_npy_that_degrade_writes(app, files, tmp_path):
    made = run(app, "degrade", files / "clean.png", "--op", "denoise", "--noise", "0.3",
               "-o", tmp_path / "y.npy", "--quiet")
    assert made.exit_code == 0, made.output
    y = np.load(tmp_path / "y.npy")
    assert y.min() < 0 and y.max() > 1
    solved = run(app, "solve", tmp_path / "y.npy", "--op", "denoise", "--prior",
                 files / "prior", "--steps", "5", "-o", tmp_path / "x.png", "--quiet")
    assert solved.exit_code == 0, solved.output
    assert read_image(tmp_path / "x.png").shape == (1, 1, 16, 16)


def test_solve_caps_the_hqs_prior_step_at_1_5_levels_by_default_or_as_asked(app, files, tmp_path):
    degraded = run(app, "degrade", files / "clean.png", "--op", "deblur", "--kernel",
                   "gaussian:1", "--noise", "0.01", "-o", tmp_path / "y.npy", "--quiet")
    assert degraded.exit_code == 0, degraded.output
    args = ["solve", tmp_path / "y.npy", "--op", "deblur", "--kernel", "gaussian:1", "--prior",
            files / "prior", "--method", "hqs", "--steps", "5", "--quiet", "--json"]
    capped = run(app, *args, "--step-cap", "2.5", "-o", tmp_path / "a.png")
    assert capped.exit_code == 0, capped.output
    assert json.loads(capped.stdout)["settings"]["step_cap"] == 2.5
    default = run(app, *args, "-o", tmp_path / "b.png")
    assert json.loads(default.stdout)["settings"]["step_cap"] == 1.5
    free = run(app, *args, "--step-cap", "inf", "-o", tmp_path / "c.png")
    assert json.loads(free.stdout)["settings"]["step_cap"] is None


def _bad_inputs(files, tmp):
    """(name, argv) for every bad input of the issue's list; each must exit 2 cleanly."""
    (tmp / "text.png").write_text("not an image")
    (tmp / "trunc.png").write_bytes(encode_png(np.random.default_rng(0).random((16, 16)))[:90])
    np.save(tmp / "nan.npy", np.full((16, 16), np.nan))
    np.save(tmp / "five.npy", np.zeros((1, 1, 1, 16, 16)))
    write_image(tmp / "small_mask.png", read_image(files / "clean.png")[..., :8, :8])
    write_image(tmp / "one_row.png", read_image(files / "clean.png")[..., :1, :])
    write_image(tmp / "mask.png", (read_image(files / "clean.png") > 0.5).float())
    np.save(tmp / "int64.npy", np.arange(256, dtype=np.int64).reshape(16, 16))
    (tmp / "corrupt").mkdir(exist_ok=True)
    (tmp / "corrupt" / "config.json").write_text("{ not json")
    img, prior = files / "clean.png", files / "prior"
    base = ["solve", "--prior", prior]
    return {
        "missing file": [*base, tmp / "nope.png"],
        "text file named .png": [*base, tmp / "text.png"],
        "truncated png": [*base, tmp / "trunc.png"],
        "mask size mismatch": [*base, img, "--op", "inpaint", "--mask", tmp / "small_mask.png"],
        "inpaint without mask": [*base, img, "--op", "inpaint"],
        "unknown op": [*base, img, "--op", "dehaze"],
        "factor 0": [*base, img, "--op", "superres", "--factor", "0"],
        "negative noise": [*base, img, "--noise", "-0.1"],
        "unparsable kernel": [*base, img, "--op", "deblur", "--kernel", "gaussian:wide"],
        "nan in npy": [*base, tmp / "nan.npy"],
        "5-d array": [*base, tmp / "five.npy"],
        "corrupt prior folder": ["solve", img, "--prior", tmp / "corrupt"],
        "unknown prior name": ["solve", img, "--prior", "no-such-prior"],
        "steps 0": [*base, img, "--steps", "0"],
        "unknown symmetry": [*base, img, "--symmetry", "rotations"],
        "step cap 0": [*base, img, "--op", "deblur", "--kernel", "gaussian:1", "--method",
                       "hqs", "--step-cap", "0"],
        "step cap for map": [*base, img, "--method", "map", "--step-cap", "1.5"],
        "std from a point estimate": [*base, img, "--method", "hqs", "--std", tmp / "s.png"],
        "samples without a sampler": [*base, img, "--samples", "2"],
        "unwritable output": [*base, img, "-o", tmp / "no" / "such" / "dir" / "x.png"],
        "superres of one row": [*base, tmp / "one_row.png", "--op", "superres", "--factor", "2"],
        "degrade one row by superres": ["degrade", tmp / "one_row.png", "--op", "superres",
                                        "--factor", "2", "-o", tmp / "x.png"],
        "degrade factor 0": ["degrade", img, "--op", "superres", "--factor", "0", "-o",
                             tmp / "x.png"],
        "mask box with nan": [*base, img, "--op", "inpaint", "--mask", "box:nan,0,4,4"],
        "fractional stroke count": [*base, img, "--op", "inpaint", "--mask", "strokes:2.5"],
        "a million strokes": [*base, img, "--op", "inpaint", "--mask", "strokes:1000000"],
        "device mps": [*base, img, "--device", "mps"],
        "noise beyond float range": [*base, img, "--noise", "1e300"],
        "kernel for denoising": [*base, img, "--op", "denoise", "--kernel", "gaussian:1"],
        "mask for deblurring": [*base, img, "--op", "deblur", "--kernel", "gaussian:1",
                                "--mask", "box"],
        "mala with map": [*base, img, "--method", "map", "--mala"],
        "output over the mask file": [*base, img, "--op", "inpaint", "--mask", tmp / "mask.png",
                                      "-o", tmp / "mask.png"],
        "degrade output over its mask-out": ["degrade", img, "--op", "inpaint", "--mask", "box",
                                             "-o", tmp / "y.png", "--mask-out", tmp / "y.png"],
        "int64 npy": [*base, tmp / "int64.npy"],
        "missing kernel file": [*base, img, "--op", "deblur", "--kernel", tmp / "nope.npy"],
        "output inside a file": [*base, img, "-o", tmp / "mask.png" / "x.png"],
        "no photons": [*base, img, "--photons", "0"],
        "degrade with infinite photons": ["degrade", img, "--photons", "inf", "-o",
                                          tmp / "y.png"],
    }


def test_every_bad_input_exits_2_with_one_line_and_no_file(app, files, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    cases = _bad_inputs(files, bad)
    inputs = {path: path.read_bytes() for path in bad.iterdir() if path.is_file()}
    for name, argv in cases.items():
        if "-o" not in argv:
            argv = [*argv, "-o", out / "x.png"]
        result = run(app, *argv, "--quiet")
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (name, result.output, result.exception)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert "Traceback" not in result.output, name
        assert list(out.iterdir()) == [], name
        assert {path: path.read_bytes() for path in bad.iterdir() if path.is_file()} == inputs, \
            f"{name}: an input file was changed or a file was written beside the inputs"



@pytest.mark.parametrize("command", ["solve", "degrade"])
def test_a_missing_input_fails_before_torch_is_imported(command, tmp_path):
    """A typo in the path answers at once, not after the seconds torch and deepinv take."""
    import subprocess
    import sys

    argv = [command, str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.png")]
    script = ("import sys\nfrom typer.testing import CliRunner\nfrom em_inverse.cli.app import app\n"
              f"result = CliRunner().invoke(app, {argv!r})\n"
              "print(result.exit_code, 'torch' in sys.modules, result.stderr.strip())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=2)
    assert out[:2] == ["2", "False"] and out[2].startswith("error: no such file"), out


def test_solve_says_the_noise_level_it_estimated_and_not_one_it_was_given(app, files, tmp_path):
    base = ["solve", files / "clean.png", "--op", "denoise", "--prior", files / "prior",
            "--method", "map", "--steps", "5", "-o", tmp_path / "x.png"]
    estimated = run(app, *base)
    assert estimated.exit_code == 0, estimated.output
    assert "noise sigma estimated from the image: " in estimated.output
    given = run(app, *base, "--noise", "0.05")
    assert given.exit_code == 0 and "estimated" not in given.output


def test_a_std_png_says_what_white_means(app, files, tmp_path):
    result = run(app, "solve", files / "clean.png", "--op", "denoise", "--noise", "0.05",
                 "--prior", files / "prior", "--method", "posterior", "--steps", "20",
                 "-o", tmp_path / "x.png", "--std", tmp_path / "std.png", "--json")
    assert result.exit_code == 0, result.output
    scale = json.loads(result.stdout[result.stdout.index("{"):])["std_png_scale"]
    assert f"black is a std of 0, white {scale:.3g}" in result.output


@pytest.mark.parametrize("args, message", [
    (["priors", "--quiet"], "No such option"),
    (["solve"], "Missing argument 'image'"),
    (["solve", "x.png", "--steps", "many"], "Invalid value for '--steps'"),
    (["degrade", "x.png", "-o", "y.png", "--seed", str(2**64)], "Invalid value for '--seed'"),
    (["sample", "-p", "natural-gray", "--seed", "-1"], "Invalid value for '--seed'"),
    (["train", "--out", "run", "--seed", str(2**32)], "not in 0 to 2^32 - 1"),
])
def test_usage_mistakes_are_one_error_line_with_exit_status_2(args, message):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "em_inverse", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert lines[0].endswith(f"{args[0]} --help')")  # where to look next


def test_bits_16_writes_16_bit_pngs_and_other_depths_are_refused(app, files, tmp_path):
    import imageio.v3 as iio

    degraded = run(app, "degrade", files / "clean.png", "--op", "denoise", "--noise", "0.02",
                   "--bits", "16", "-o", tmp_path / "y.png", "--quiet")
    assert degraded.exit_code == 0, degraded.output
    y = iio.imread(tmp_path / "y.png")
    assert y.dtype == np.uint16 and (y % 257 != 0).any()  # not 8-bit values widened
    solved = run(app, "solve", tmp_path / "y.png", "--op", "denoise", "--prior", files / "prior",
                 "--method", "posterior", "--steps", "20", "--bits", "16", "-o",
                 tmp_path / "x.png", "--std", tmp_path / "s.png", "--quiet")
    assert solved.exit_code == 0, solved.output
    assert iio.imread(tmp_path / "x.png").dtype == np.uint16
    assert iio.imread(tmp_path / "s.png").dtype == np.uint16
    for command, *prior in (("degrade",), ("solve", "--prior", files / "prior")):
        refused = run(app, command, files / "clean.png", "--op", "denoise", "--bits", "12",
                      "-o", tmp_path / "z.png", *prior)
        assert refused.exit_code != 0 and "--bits must be 8 or 16, got 12" in refused.output
        assert not (tmp_path / "z.png").exists()


@pytest.mark.parametrize("command", ["solve", "degrade", "train", "sample", "priors", "score",
                                     "bench", "tune", "opponent"])
def test_help_in_an_80_column_terminal_cuts_no_word(command):
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "em_inverse", command, "--help"],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "\u2026" not in result.stdout  # rich's ellipsis, where a word did not fit its column


def test_the_command_list_summarises_each_command_in_one_paragraph_that_wraps_freely():
    import os
    import subprocess
    import sys

    from em_inverse.cli.app import app

    result = subprocess.run([sys.executable, "-m", "em_inverse", "--help"], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    listed = " ".join(result.stdout.split())  # rich's box drawing stays; only spaces collapse
    for command in app.registered_commands:
        summary = " ".join(command.callback.__doc__.split("\n\n")[0].split())
        assert len(summary) < 200 - 20, command.name  # a summary, not a manual page
        assert f"{command.name} {summary}" in listed, command.name  # no docstring line breaks


def test_the_command_line_starts_without_torch_for_help_and_usage_errors():
    import subprocess
    import sys

    code = ("import sys, em_inverse.cli.app; "
            "print('torch' in sys.modules, 'deepinv' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.split() == ["False", "False"], loaded.stderr
    from em_inverse import EnergyPrior, Solution, load_prior, operators, solve  # on first use
    assert callable(solve) and callable(load_prior) and callable(operators.build_operator)
    assert EnergyPrior.__name__ == "EnergyPrior" and Solution.__name__ == "Solution"


def test_an_inpainting_solved_with_noise_0_returns_its_observed_pixels_as_measured(app, files,
                                                                                    tmp_path):
    made = run(app, "degrade", files / "clean.png", "--op", "inpaint", "--mask", "random:0.5",
               "--seed", "2", "-o", tmp_path / "y.npy", "--mask-out", tmp_path / "m.png",
               "--quiet")
    assert made.exit_code == 0, made.output
    base = ["solve", tmp_path / "y.npy", "--op", "inpaint", "--mask", tmp_path / "m.png",
            "--prior", files / "prior", "--method", "map", "--steps", "5"]
    exact = run(app, *base, "--noise", "0", "-o", tmp_path / "exact.npy")
    assert exact.exit_code == 0, exact.output
    assert "observed pixels are returned as measured" in exact.output
    estimated = run(app, *base, "-o", tmp_path / "estimated.npy")
    assert "observed pixels" not in estimated.output
    observed = (read_image(tmp_path / "m.png")[0, 0] == 0).numpy()  # the mask marks the holes
    y, exact, estimated = (np.load(tmp_path / f"{name}.npy").squeeze()
                           for name in ("y", "exact", "estimated"))
    assert np.array_equal(exact[observed], y[observed])
    assert not np.array_equal(estimated[observed], y[observed])


@pytest.mark.parametrize("exhausted", [
    MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: "
                                "can't allocate memory: you tried to allocate 4000000000 bytes")])
def test_running_out_of_memory_is_one_error_line_and_other_bugs_still_raise(exhausted):
    from em_inverse.cli.common import user_errors

    @user_errors
    def command():
        raise exhausted

    app = typer.Typer(pretty_exceptions_enable=False)
    app.command()(command)
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and result.stderr.startswith("error: out of memory")
    assert len(result.stderr.strip().splitlines()) == 1

    @user_errors
    def buggy():
        raise RuntimeError("a genuine bug")

    with pytest.raises(RuntimeError, match="a genuine bug"):
        buggy()

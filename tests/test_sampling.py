"""Unconditional sampling (``em-inverse sample``): chains from noise, then one Tweedie step."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from conftest import quadratic_prior
from em_inverse.cli import commands_prior
from em_inverse.priors.sampling import denoise_samples, sample_prior

MU, S = 0.5, 0.05
SHAPE = (1, 32, 32)


def point_mass_prior():
    """V/eps = ||x - MU||^2 / (2 S^2): what the denoising-score term learns for data that is the
    single image MU seen at noise level S. Its Boltzmann samples are MU + S z, and Tweedie's
    step at level S, x - S^2 grad V(x)/eps, returns MU exactly."""
    prior = quadratic_prior(MU, S)
    prior.training = {"dsm_weight": 1.0, "dsm_sigma_min": 0.01, "dsm_sigma_max": 0.5,
                      "langevin_dt": 0.0005, "tau_star": 0.0, "eps_max": 1.0}
    return prior


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def test_samples_end_with_a_tweedie_step_that_removes_the_noise_the_chains_end_with():
    prior = point_mass_prior()
    raw = sample_prior(prior, 8, generator=torch.Generator().manual_seed(0), shape=SHAPE,
                       denoise=False)
    clean = sample_prior(prior, 8, generator=torch.Generator().manual_seed(0), shape=SHAPE)
    assert 0.9 * S < rms(raw - MU) < 1.2 * S      # the chains reached exp(-V/eps): MU + S z
    assert rms(clean - MU) < 0.25 * S             # the step took them back to the data
    assert torch.equal(denoise_samples(prior, raw), clean)  # one step, after the same chains


def test_priors_without_the_denoising_score_term_and_vectors_are_not_denoised():
    x = MU + S * torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1))
    assert torch.equal(denoise_samples(quadratic_prior(MU, S), x), x)  # no denoising levels
    vectors = x.flatten(1)
    assert torch.equal(denoise_samples(point_mass_prior(), vectors), vectors)


def test_the_cli_denoises_by_default_and_keeps_the_chains_with_no_denoise(tmp_path):
    app = typer.Typer(pretty_exceptions_enable=False)
    commands_prior.register(app)
    runner = CliRunner()
    outputs = {}
    for flag in ("--denoise", "--no-denoise"):
        out = tmp_path / f"{flag[2:]}.npy"
        result = runner.invoke(app, ["sample", "--prior", "fashion-mnist", "-n", "2", "--steps",
                                     "3", "--seed", "0", "-o", str(out), flag, "--quiet"])
        assert result.exit_code == 0, result.output
        outputs[flag] = np.load(out)
    assert outputs["--denoise"].shape == outputs["--no-denoise"].shape == (2, 1, 28, 28)
    assert not np.array_equal(outputs["--denoise"], outputs["--no-denoise"])


@pytest.mark.parametrize("args, message", [
    (["--prior", "natural-gray", "--size", "0"], "--size must be a positive"),
    (["--prior", "natural-gray", "--size", "-5"], "--size must be a positive"),
    (["--prior", "fashion-mnist", "--size", "16"], "--size applies to fully convolutional"),
    (["--prior", "natural-gray", "-o", "{tmp}/grid.png"], "it is a directory"),
    (["--prior", "natural-gray", "-o", "{tmp}/no/such/x.png"], "does not exist"),
])
def test_bad_sample_options_fail_before_sampling_with_one_line(tmp_path, args, message):
    app = typer.Typer(pretty_exceptions_enable=False)
    commands_prior.register(app)
    (tmp_path / "grid.png").mkdir()  # a folder where the grid would go
    argv = ["sample", "-n", "1", "--steps", "1", "--quiet"]
    argv += [a.format(tmp=tmp_path) for a in args]
    if "-o" not in args:
        argv += ["-o", str(tmp_path / "x.png")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["grid.png"]


def test_an_upper_case_npy_suffix_gets_an_array(tmp_path):
    app = typer.Typer(pretty_exceptions_enable=False)
    commands_prior.register(app)
    out = tmp_path / "x.NPY"
    result = CliRunner().invoke(app, ["sample", "--prior", "fashion-mnist", "-n", "1", "--steps",
                                      "1", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (1, 1, 28, 28)

"""Unconditional sampling (``em-inverse sample``): chains from noise, then one Tweedie step."""
from __future__ import annotations

import numpy as np
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

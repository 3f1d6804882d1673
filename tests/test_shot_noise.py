"""Poisson (shot) noise: simulated counts, the per-pixel variance the data term uses, and solve.

A measurement y = Poisson(P A x) / P + N(0, sigma^2) has mean A x and variance A x / P + sigma^2
per pixel; ``solve`` weighs each value by the inverse of that variance, read from y, except in
a denoising by MAP or HQS, which it runs on y's Anscombe transform (one Gaussian noise level).
"""
from __future__ import annotations

import warnings

import pytest
import torch
from conftest import dense_matrix, quadratic_prior
from deepinv.physics import PoissonNoise

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.errors import UserError
from em_inverse.image_io import FarOutsideWarning
from em_inverse.operators.anscombe import anscombe, inverse_anscombe, stabilised_sigma
from em_inverse.operators.shot_noise import (effective_sigma, noise_photons, pixel_variance,
                                             read_noise_sigma)
from em_inverse.solvers import noise_level

MU, S = 0.5, 0.2


def test_simulated_counts_have_the_mean_and_variance_of_poisson_noise_plus_read_noise():
    x = torch.cat([torch.full((1, 1, 128, 128), 0.2), torch.full((1, 1, 128, 128), 0.8)])
    physics = op.build_operator("denoise", tuple(x.shape), photons=50, noise=0.02)
    y = op.degrade(x, physics, torch.Generator().manual_seed(0))
    assert torch.equal(y, op.degrade(x, physics, torch.Generator().manual_seed(0)))
    for image, intensity in zip(y, (0.2, 0.8)):
        assert float(image.mean()) == pytest.approx(intensity, rel=0.01)
        assert float(image.var()) == pytest.approx(intensity / 50 + 0.02**2, rel=0.05)


def test_missing_pixels_stay_0_and_a_bicubic_undershoot_counts_as_no_light():
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    inpaint = op.build_operator("inpaint", tuple(x.shape), mask="box", photons=20)
    y = op.degrade(x, inpaint, torch.Generator().manual_seed(0))
    assert float(y[inpaint.mask.expand_as(y) == 0].abs().max()) == 0.0
    edge = torch.zeros(1, 1, 32, 32)
    edge[..., 15:] = 1.0
    superres = op.build_operator("superres", (1, 1, 32, 32), factor=2, photons=20)
    assert float(superres.A(edge).min()) < 0  # the bicubic filter's negative lobe
    assert float(op.degrade(edge, superres, torch.Generator()).min()) >= 0


def test_the_variance_is_read_from_y_averaged_over_3x3_observed_pixels():
    y = torch.full((1, 1, 8, 8), 0.4)
    y[..., 4:, :] = 0.0  # no light: one photon's worth, not zero variance
    variance = pixel_variance(y, photons=10, sigma=0.1)
    assert float(variance[0, 0, 1, 1]) == pytest.approx(0.01 + 0.04)
    assert float(variance[0, 0, 6, 6]) == pytest.approx(0.01 + 0.01)
    assert float(variance[0, 0, 3, 3]) == pytest.approx(0.01 + 0.4 * 2 / 3 / 10)
    keep = torch.ones(1, 1, 8, 8)
    keep[..., 2, 2] = 0.0
    holed = y.clone()
    holed[..., 2, 2] = 0.0  # a missing pixel reads 0 but does not darken its neighbours
    assert float(pixel_variance(holed, 10, 0.1, keep)[0, 0, 1, 1]) == pytest.approx(0.05)
    assert effective_sigma(variance).shape == (1,)


def test_photons_come_from_the_noise_model_and_bad_values_are_refused():
    physics = op.build_operator("denoise", (1, 1, 8, 8), photons=25, noise=0.01)
    assert noise_photons(physics) == pytest.approx(25)
    assert read_noise_sigma(physics) == pytest.approx(0.01)
    assert noise_photons(op.build_operator("denoise", (1, 1, 8, 8), noise=0.1)) is None
    counts = op.denoising()
    counts.noise_model = PoissonNoise(gain=0.1, normalize=False)
    with pytest.raises(UserError, match="photon counts"):
        noise_photons(counts)
    for bad in (0, -5, float("inf"), float("nan"), "many", True):
        with pytest.raises(UserError, match="photons"):
            op.build_operator("denoise", (1, 1, 8, 8), photons=bad)


def test_map_with_poisson_noise_is_the_posterior_mean_under_the_per_pixel_variance():
    """Quadratic prior: the posterior under F = sum (A x - y)^2 / (2 v) is Gaussian with
    precision A^T diag(1/v) A + I / s^2."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 8, 8, generator=g)
    physics = op.build_operator("deblur", (1, 1, 8, 8), kernel="gaussian:1", photons=30)
    y = op.degrade(x, physics, g)
    variance = pixel_variance(y, 30)
    a = dense_matrix(physics, (1, 8, 8))
    precision = a.T @ torch.diag(1 / variance.flatten().double()) @ a + torch.eye(64) / S**2
    rhs = a.T @ (y.flatten().double() / variance.flatten().double()) + MU / S**2
    mean = torch.linalg.solve(precision, rhs).view(1, 1, 8, 8).float()
    solution = solve(y, physics, quadratic_prior(MU, S), "map", steps=500, gtol=1e-7,
                     progress=False)
    assert float((solution.estimate - mean).norm() / mean.norm()) < 1e-4
    sigma, source = noise_level(y, physics)
    assert source == "poisson" and solution.settings["sigma_source"] == "poisson"
    assert float(sigma) == pytest.approx(float(variance.mean().sqrt()))
    given = solve(y, physics, quadratic_prior(MU, S), "map", sigma=0.1, progress=False)
    assert given.settings["sigma_source"] == "given"  # one Gaussian level, as asked
    assert not torch.allclose(given.estimate, solution.estimate, atol=1e-3)


@pytest.mark.parametrize("method", ["hqs", "posterior", "anneal", "em"])
def test_every_method_runs_with_poisson_noise(method):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 8, 8, generator=g)
    physics = op.build_operator("inpaint", (2, 1, 8, 8), mask="random:0.3", photons=40,
                                generator=g)
    y = op.degrade(x, physics, g)
    options = {} if method == "hqs" else {"chains": 2}
    solution = solve(y, physics, quadratic_prior(MU, S), method, steps=20, progress=False,
                     **options)
    assert solution.estimate.shape == x.shape and torch.isfinite(solution.estimate).all()
    assert "observed_pixels" not in solution.settings  # shot noise is never noise-free


def test_under_poisson_noise_the_denoisers_hqs_gives_way_to_map_and_the_others_switch_by_level():
    """Without the Anscombe route (``stabilise=False``) denoising's tuned HQS, Tweedie's step at
    one level per image, gives way to MAP (``POISSON_MAP_FAMILIES``); deblurring follows its
    MAP switch at the root-mean level, and inpainting keeps its HQS."""
    entry = {"method": "hqs", "hqs": {"steps": 5}, "map": {"steps": 7}}
    switched = {**entry, "map_above": 0.03}
    prior = quadratic_prior(MU, S).copy_with(solve_defaults={"denoise": entry, "inpaint": entry,
                                                             "deblur": switched})
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 1, 8, 8, generator=g)
    for task, options, method in (("denoise", {}, "map"),
                                  ("inpaint", {"mask": "random:0.5"}, "hqs")):
        physics = op.build_operator(task, (1, 1, 8, 8), photons=40, generator=g, **options)
        solution = solve(op.degrade(x, physics, g), physics, prior, progress=False,
                         stabilise=False)
        assert solution.settings["method"] == method
        assert ("Poisson noise varies per pixel" in solution.settings.get("fallback", "")) == (
            method == "map")
    for photons, method in ((40, "map"), (5000, "hqs")):  # root-mean std ~0.1 and ~0.008
        physics = op.build_operator("deblur", (1, 1, 8, 8), kernel="gaussian:1", photons=photons)
        solution = solve(op.degrade(x, physics, g), physics, prior, progress=False)
        assert solution.settings["method"] == method, photons
    gaussian = op.build_operator("denoise", (1, 1, 8, 8), noise=0.1)
    assert solve(op.degrade(x, gaussian, g), gaussian, prior,
                 progress=False).settings["method"] == "hqs"


def _denoising_prior():
    entry = {"method": "hqs", "hqs": {"steps": 3, "sigma_start": 0.2}, "map": {"steps": 7}}
    return quadratic_prior(MU, S).copy_with(solve_defaults={"denoise": entry})


def test_a_poisson_denoising_is_the_gaussian_denoising_of_its_anscombe_transform():
    """By default MAP and HQS denoise z = anscombe(y), white noise of std 1 / (2 sqrt(P)), with
    the prior's tuned settings at that level, and map the estimate back to intensities."""
    prior = _denoising_prior()
    g = torch.Generator().manual_seed(6)
    x = torch.rand(2, 1, 8, 8, generator=g)
    physics = op.build_operator("denoise", (2, 1, 8, 8), photons=25, noise=0.01)
    y = op.degrade(x, physics, g)
    z = anscombe(y, 25, 0.01)
    gaussian = op.build_operator("denoise", (2, 1, 8, 8), noise=stabilised_sigma(25))
    start = torch.full((1, 1, 8, 8), 0.4)
    for method, options in ((None, {}), ("map", {"init": start})):
        solution = solve(y, physics, prior, method, progress=False, **options)
        inner = {"init": anscombe(start, 25, 0.01)} if options else {}
        direct = solve(z, gaussian, prior, method, progress=False, **inner)
        assert torch.equal(solution.estimate, inverse_anscombe(direct.estimate, 25, 0.01))
        assert solution.settings["method"] == direct.settings["method"] == (method or "hqs")
        assert solution.settings["stabilised"]["sigma"] == pytest.approx(0.1)
        assert solution.settings["sigma_source"] == "poisson"
        assert solution.settings["sigma"] == pytest.approx(noise_level(y, physics)[0].tolist())


def test_samplers_a_given_sigma_and_stabilise_false_keep_the_variance_per_pixel():
    prior = _denoising_prior()
    g = torch.Generator().manual_seed(7)
    x = torch.rand(1, 1, 8, 8, generator=g)
    physics = op.build_operator("denoise", (1, 1, 8, 8), photons=25)
    y = op.degrade(x, physics, g)
    for method, options in (("anneal", {"chains": 2, "steps": 10}), ("map", {"sigma": 0.1}),
                            ("hqs", {"stabilise": False})):
        solution = solve(y, physics, prior, method, progress=False, **options)
        assert "stabilised" not in solution.settings, method
    sampled = prior.copy_with(solve_defaults={"denoise": {"method": "anneal"}})
    assert "stabilised" not in solve(y, physics, sampled, progress=False, steps=5,
                                     chains=2).settings
    with pytest.raises(UserError, match="stabilise must be True or False"):
        solve(y, physics, prior, "map", stabilise="yes", progress=False)


def test_a_bright_low_light_measurement_is_not_mistaken_for_an_8_bit_one():
    """At 10 photons a white pixel's count reaches twice its mean: y > 2 is shot noise, not a
    0-255 image (``image_io.FAR_OUTSIDE``)."""
    g = torch.Generator().manual_seed(8)
    physics = op.build_operator("denoise", (1, 1, 64, 64), photons=10)
    y = op.degrade(torch.ones(1, 1, 64, 64), physics, g)
    assert float(y.max()) > 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarOutsideWarning)
        solve(y, physics, _denoising_prior(), "map", steps=2, progress=False)

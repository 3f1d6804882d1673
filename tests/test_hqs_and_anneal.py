"""Annealed half-quadratic splitting and the annealed Langevin sampler, on the Gaussian
(quadratic-energy) prior of ``test_solvers`` whose posterior is known in closed form."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import quadratic_prior
from test_solvers import MU, S, SHAPE, SIGMA, problem

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.errors import UserError
from em_inverse.operators.linear_solve import conjugate_gradient
from em_inverse.solvers import SolverError
from em_inverse.solvers.hqs import sigma_schedule


def test_conjugate_gradient_solves_each_row_of_a_batch_independently():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(2, 6, 6, generator=g, dtype=torch.float64)
    spd = m @ m.transpose(1, 2) + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(2, 6, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: (spd @ v.unsqueeze(-1)).squeeze(-1), b,
                           torch.zeros_like(b), iterations=50, rtol=1e-12)
    assert torch.allclose(x, torch.linalg.solve(spd, b), atol=1e-9)


def test_the_schedule_is_geometric_and_one_iteration_uses_the_final_level():
    levels = sigma_schedule(0.2, 0.0125, 5)
    assert levels[0] == pytest.approx(0.2) and levels[-1] == pytest.approx(0.0125)
    assert all(a / b == pytest.approx(2.0) for a, b in zip(levels, levels[1:]))
    assert sigma_schedule(0.2, 0.05, 1) == [0.05]


def test_one_hqs_iteration_on_denoising_is_tweedies_formula():
    """x_1 = y and s_1 = sigma_y, so the output is y - sigma^2 grad V(y)/eps exactly, also
    where the noise has pushed y outside [0, 1] (the start is y itself, not y clipped)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(SHAPE, generator=g)
    x[..., 0, :], x[..., -1, :] = 0.0, 1.0  # black and white rows
    y = x + SIGMA * torch.randn(SHAPE, generator=g)
    assert (y < 0).any() and (y > 1).any()
    prior = quadratic_prior(MU, S)
    solution = solve(y, op.denoising(SIGMA), prior, method="hqs", steps=1, progress=False)
    tweedie = y - SIGMA**2 * (y - MU) / S**2
    assert torch.allclose(solution.estimate, tweedie, atol=1e-6)
    assert solution.diagnostics.evaluations == 1


@pytest.mark.parametrize("task", ["inpaint", "deblur", "superres"])
def test_the_fixed_point_of_hqs_is_the_map_estimate(task):
    """At a fixed level s, x = prox(z), z = x - s^2 grad V/eps stops moving exactly where
    grad F + grad V/eps = 0: x is the MAP and the output z is the prior step from it."""
    physics, y, map_estimate, _ = problem(task)
    level = 0.1
    solution = solve(y, physics, quadratic_prior(MU, S), method="hqs", steps=200,
                     sigma_start=level, sigma_end=level, cg_steps=100, progress=False)
    expected = map_estimate - level**2 * (map_estimate - MU) / S**2
    assert torch.allclose(solution.estimate, expected, atol=5e-4)  # CG stops at rtol 1e-5


def test_hqs_starts_at_the_measurement_noise_or_above_and_validates_its_options():
    """The first prior step removes noise of the measurement's level; a deblurring's levels
    then go on below it, down to sigma_end (``end_level`` ``fixed``)."""
    physics, y, _, _ = problem("deblur")
    prior = quadratic_prior(MU, S)
    solution = solve(y, physics, prior, method="hqs", steps=3, sigma_start=0.001,
                     sigma_end=0.001, progress=False)
    assert solution.settings["sigma_start"] == pytest.approx(SIGMA)
    assert solution.settings["sigma_end"] == pytest.approx(0.001)
    assert solution.settings["end_level"] == "fixed"
    for bad in ({"sigma_start": 0}, {"sigma_end": -1.0}, {"cg_steps": 0}):
        with pytest.raises(UserError):
            solve(y, physics, prior, method="hqs", progress=False, **bad)


def test_the_step_cap_holds_each_images_prior_step_to_its_bound_and_leaves_smaller_ones_alone():
    from em_inverse.solvers.hqs import cap_step

    step = torch.stack([torch.full((1, 4, 4), 3.0), torch.full((1, 4, 4), 0.5)])
    held, count = cap_step(step, 1.5)
    assert held[0].pow(2).mean().sqrt() == pytest.approx(1.5)  # scaled to the bound
    assert torch.equal(held[1], step[1])  # within it: unchanged to the bit
    assert int(count) == 1


def test_hqs_caps_a_prior_step_larger_than_its_level_by_default_and_reports_it():
    """A prior pulling towards a mean far from y takes a first step far larger than the
    level s: by default (step_cap=1.5) the step moves y by exactly 1.5 s (RMS); with
    step_cap=inf (no cap), by all of it."""
    g = torch.Generator().manual_seed(3)
    y = torch.rand(SHAPE, generator=g)
    prior = quadratic_prior(MU + 5.0, S)  # grad V/eps = (x - mu')/S^2, mu' 5 above the data
    physics = op.denoising(SIGMA)
    capped = solve(y, physics, prior, method="hqs", steps=1, progress=False)
    moved = (y - capped.estimate).pow(2).mean().sqrt()
    assert float(moved) == pytest.approx(1.5 * SIGMA, rel=1e-4)
    assert capped.diagnostics.capped_steps == 1 and "capped" in capped.diagnostics.message
    assert capped.settings["step_cap"] == 1.5
    free = solve(y, physics, prior, method="hqs", steps=1, step_cap=math.inf, progress=False)
    assert torch.allclose(free.estimate, y - SIGMA**2 * (y - MU - 5.0) / S**2, atol=1e-6)
    assert free.diagnostics.capped_steps == 0 and free.settings["step_cap"] is None
    for bad in (0, -1.0, math.nan, "big", True):
        with pytest.raises(UserError, match="step_cap"):
            solve(y, physics, prior, method="hqs", step_cap=bad, progress=False)


def test_hqs_ends_its_levels_at_sigma_end_at_the_noise_or_4x_below_it_as_end_level_says():
    """end_level: ``fixed`` ends at sigma_end whatever the noise, ``noise`` (denoising's
    default) raises it to the noise sigma, ``below-noise`` lowers it to min(sigma_end,
    sigma/4); the first level is never below the noise. Two levels on denoising with
    ``below-noise`` are Tweedie's formula, then the exact data step and one more prior step at
    the finer level."""
    g = torch.Generator().manual_seed(1)
    y = torch.rand(SHAPE, generator=g) + SIGMA * torch.randn(SHAPE, generator=g)
    prior = quadratic_prior(MU, S)
    for rule, asked, expected in ((None, 0.04, SIGMA), ("noise", 0.04, SIGMA),
                                  ("fixed", 0.04, 0.04), ("below-noise", 0.001, 0.001),
                                  ("below-noise", 0.04, SIGMA / 4)):
        solution = solve(y, op.denoising(SIGMA), prior, method="hqs", steps=2, sigma_start=1 / 255,
                         sigma_end=asked, end_level=rule, progress=False)
        assert solution.settings["sigma_start"] == pytest.approx(SIGMA)
        assert solution.settings["sigma_end"] == pytest.approx(expected)
        assert solution.settings["end_level"] == (rule or "noise")
    finer = 0.001
    tweedie = y - SIGMA**2 * (y - MU) / S**2
    x2 = (finer**2 * y + SIGMA**2 * tweedie) / (SIGMA**2 + finer**2)
    solution = solve(y, op.denoising(SIGMA), prior, method="hqs", steps=2, sigma_start=1 / 255,
                     sigma_end=finer, end_level="below-noise", progress=False)
    assert torch.allclose(solution.estimate, x2 - finer**2 * (x2 - MU) / S**2, atol=1e-6)
    with pytest.raises(UserError, match="end_level"):
        solve(y, op.denoising(SIGMA), prior, method="hqs", end_level="no", progress=False)


def test_settings_from_before_end_level_keep_the_rule_their_end_at_noise_flag_meant():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(SHAPE, generator=g) + SIGMA * torch.randn(SHAPE, generator=g)
    for flag, rule, level in ((False, "below-noise", SIGMA / 4), (True, "noise", SIGMA)):
        entry = {"method": "hqs", "hqs": {"steps": 2, "sigma_end": 0.04, "end_at_noise": flag}}
        prior = quadratic_prior(MU, S).copy_with(solve_defaults={"denoise": entry})
        solution = solve(y, op.denoising(SIGMA), prior, progress=False)
        assert solution.settings["end_level"] == rule
        assert solution.settings["sigma_end"] == pytest.approx(level)
        called = solve(y, op.denoising(SIGMA), quadratic_prior(MU, S), method="hqs", steps=2,
                       sigma_end=0.04, end_at_noise=flag, progress=False)
        assert called.settings["end_level"] == rule and "end_at_noise" not in called.settings


def test_the_tuned_hqs_gives_way_to_map_above_the_levels_the_denoiser_learned():
    """Tweedie's step at a noise level the denoising-score term never saw is no denoiser: the
    prior's own method switches to its tuned MAP there, and says so; a named method runs."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(SHAPE, generator=g)
    recipe = {"dsm_weight": 1.0, "dsm_sigma_min": 0.01, "dsm_sigma_max": 0.1}  # scale 1
    tuned = {"denoise": {"method": "hqs", "hqs": {"steps": 1}, "map": {"prior_weight": 0.5}}}
    prior = quadratic_prior(MU, S).copy_with(training=recipe, solve_defaults=tuned)
    assert prior.denoising_levels == (0.01, 0.1)
    within, beyond = 0.05, 0.2  # trusted up to TRUSTED_SHARE = 0.8 of the top: 0.08
    solution = solve(x + within * torch.randn(SHAPE, generator=g), op.denoising(within), prior,
                     progress=False)
    assert solution.settings["method"] == "hqs" and "fallback" not in solution.settings
    y = x + beyond * torch.randn(SHAPE, generator=g)
    solution = solve(y, op.denoising(beyond), prior, progress=False)
    assert solution.settings["method"] == "map"
    assert solution.settings["prior_weight"] == 0.5  # the tuned MAP entry
    assert "above the highest level" in solution.settings["fallback"]
    near_the_top = solve(x + 0.09 * torch.randn(SHAPE, generator=g), op.denoising(0.09), prior,
                         progress=False)
    assert near_the_top.settings["method"] == "map"
    named = solve(y, op.denoising(beyond), prior, method="hqs", progress=False)
    assert named.settings["method"] == "hqs" and "fallback" not in named.settings
    untrained = prior.copy_with(training={})  # no denoising-score term: no known levels
    assert untrained.denoising_levels is None
    assert solve(y, op.denoising(beyond), untrained, progress=False).settings["method"] == "hqs"


def test_annealed_chains_end_near_the_posterior_and_spread_more_in_the_holes():
    physics, y, mean, std = problem("inpaint")
    solution = solve(y, physics, quadratic_prior(MU, S), method="anneal", chains=128,
                     steps=400, levels=10, sigma_start=0.2, sigma_end=0.02, seed=3,
                     progress=False)
    assert solution.samples.shape == (1, 128, *SHAPE[1:])
    assert (solution.estimate - mean).abs().max() < 0.05
    holes = physics.mask.expand(SHAPE) == 0
    assert solution.std[holes].mean() > 3 * solution.std[~holes].mean()
    assert 0.7 < float(solution.std[holes].mean() / std[holes].mean()) < 1.3
    again = solve(y, physics, quadratic_prior(MU, S), method="anneal", chains=128,
                  steps=400, levels=10, sigma_start=0.2, sigma_end=0.02, seed=3,
                  progress=False)
    assert torch.equal(solution.estimate, again.estimate)


def test_annealed_chains_are_kept_within_three_levels_of_the_image_range():
    """A prior stiffer than the step (curvature 100, first step 0.7 * 0.5^2): unprojected
    chains diverge; projected onto [-3 s_k, 1 + 3 s_k] they stay bounded and still end near
    the posterior mean."""
    physics, y, _, _ = problem("inpaint")
    stiff = quadratic_prior(MU, 0.1)
    ladder = dict(method="anneal", chains=8, steps=200, levels=10, sigma_start=0.5,
                  sigma_end=0.05, step_factor=0.7, seed=0, progress=False)
    with pytest.raises(SolverError, match="diverged"):
        solve(y, physics, stiff, box_margin=math.inf, **ladder)
    projected = solve(y, physics, stiff, **ladder)
    # the final Tweedie step x - s_K^2 (x - MU)/S^2 moves a quarter of the way to MU
    assert projected.samples.min() >= 0.75 * -0.15 + 0.25 * MU - 1e-6
    assert projected.samples.max() <= 0.75 * 1.15 + 0.25 * MU + 1e-6
    _, _, mean, _ = problem("inpaint", s=0.1)
    holes = physics.mask.expand(SHAPE) == 0
    assert (projected.estimate - mean)[holes].abs().mean() < 0.1
    with pytest.raises(UserError, match="box_margin"):
        solve(y, physics, stiff, box_margin=-1.0, **ladder)


def test_the_prior_chooses_the_method_and_its_tuned_settings_per_task():
    physics, y, _, _ = problem("deblur")
    prior = quadratic_prior(MU, S)
    prior.solve_defaults = {"deblur": {"method": "hqs", "hqs": {"steps": 7},
                                       "map": {"prior_weight": 3.0}}}
    chosen = solve(y, physics, prior, progress=False)
    assert chosen.settings["method"] == "hqs" and chosen.diagnostics.steps == 7
    named = solve(y, physics, prior, method="map", steps=5, progress=False)
    assert named.settings["prior_weight"] == 3.0 and named.settings["steps"] == 5


def test_masks_with_holes_take_the_priors_hole_settings_where_it_has_them():
    """A box hole runs ``inpaint-hole``'s settings, scattered pixels ``inpaint``'s; a prior
    tuned without a hole entry uses its ``inpaint`` settings for every mask."""
    prior = quadratic_prior(MU, S)
    shape = (1, 1, 32, 32)
    scattered = op.inpainting(
        op.random_mask(shape[-2:], 0.5, torch.Generator().manual_seed(0)), shape)
    hole = op.inpainting(op.box_mask(shape[-2:]), shape)  # 16x16
    y = torch.full(shape, MU)
    prior.solve_defaults = {"inpaint": {"method": "hqs", "hqs": {"steps": 3}},
                            "inpaint-hole": {"method": "map", "map": {"steps": 4}}}
    for physics, method, entry in ((scattered, "hqs", "inpaint"), (hole, "map", "inpaint-hole")):
        chosen = solve(physics.A(y), physics, prior, progress=False)
        assert chosen.settings["method"] == method
        assert chosen.settings["tuned_defaults"] == entry
    prior.solve_defaults = {"inpaint": {"method": "hqs", "hqs": {"steps": 3}}}
    chosen = solve(hole.A(y), hole, prior, progress=False)
    assert chosen.settings["method"] == "hqs" and chosen.settings["tuned_defaults"] == "inpaint"
    prior.solve_defaults = {}
    assert solve(hole.A(y), hole, prior, steps=2, progress=False).settings["tuned_defaults"] \
        is None


@pytest.mark.parametrize("family,options", [("deblur", {"kernel": "gaussian:1"}),
                                            ("superres", {"factor": 2})])
def test_nearly_noiseless_deblurring_and_superres_take_the_priors_clean_settings(family, options):
    """A clean entry without a measured switch (``below_noise``, see test_clean_switch)
    serves below the geometric mean of the two tuning levels (1/255 and 0.01: 0.0063):
    ``solve`` runs ``FAMILY-clean``'s settings there, above it ``FAMILY``'s; a prior without
    a clean entry uses ``FAMILY``'s at every level."""
    from em_inverse.solvers.tuned_entries import CLEAN_BELOW

    assert CLEAN_BELOW == pytest.approx(0.0063, abs=1e-4)
    prior = quadratic_prior(MU, S)
    x = torch.full((1, 1, 32, 32), MU)
    prior.solve_defaults = {family: {"method": "hqs", "hqs": {"steps": 3}},
                            f"{family}-clean": {"method": "map", "map": {"steps": 4}}}
    for noise, entry, method in ((0.0, f"{family}-clean", "map"), (0.006, f"{family}-clean", "map"),
                                 (0.0065, family, "hqs"), (0.01, family, "hqs")):
        physics = op.build_operator(family, x.shape, noise=noise, **options)
        chosen = solve(physics.A(x), physics, prior, progress=False)
        assert (chosen.settings["tuned_defaults"], chosen.settings["method"]) == (entry, method)
    # the level decides, whether the operator carries it, the caller gives it or y shows it
    physics = op.build_operator(family, x.shape, **options)
    assert solve(physics.A(x), physics, prior, sigma=0.02, progress=False
                 ).settings["tuned_defaults"] == family
    estimated = solve(physics.A(x), physics, prior, progress=False).settings
    assert (estimated["sigma_source"], estimated["tuned_defaults"]) == ("estimated",
                                                                        f"{family}-clean")
    prior.solve_defaults = {family: {"method": "hqs", "hqs": {"steps": 3}}}
    assert solve(physics.A(x), physics, prior, progress=False).settings["tuned_defaults"] \
        == family

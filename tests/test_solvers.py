"""Solvers against the closed-form posterior of a Gaussian (quadratic-energy) prior.

Prior V(x) = 0.5 ||x - mu||^2 / s^2 with eps = 1 (mu = 0.5, s = 0.2); noise sigma = 0.05;
8x8 gray images. p(x|y) is Gaussian with precision A^T A / sigma^2 + I / s^2.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import exact_posterior, quadratic_prior
from deepinv.physics import CompressedSensing, GaussianNoise
from torch import nn

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.errors import UserError
from em_inverse.priors import EnergyPrior
from em_inverse.solvers import Solution, SolverError

SIGMA, MU, S = 0.05, 0.5, 0.2
SHAPE = (1, 1, 8, 8)
TASKS = {"inpaint": dict(mask="random:0.5"), "deblur": dict(kernel="gaussian:1"),
         "superres": dict(factor=2)}


def problem(task, seed=0, sigma=SIGMA, s=S, eps=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(SHAPE, generator=g)
    physics = op.build_operator(task, SHAPE, noise=sigma, generator=g, **TASKS.get(task, {}))
    y = op.degrade(x, physics, g)
    mean, std = exact_posterior(physics, y, sigma, MU, s, eps=eps)
    return physics, y, mean, std


@pytest.mark.parametrize("task", TASKS)
def test_map_equals_the_closed_form_posterior_mean(task):
    physics, y, mean, _ = problem(task)
    solution = solve(y, physics, quadratic_prior(MU, S), method="map", steps=500, gtol=1e-7,
                     progress=False)
    assert isinstance(solution, Solution) and solution.std is None
    error = (solution.estimate - mean).norm() / mean.norm()
    assert error < 1e-4, (float(error), solution.diagnostics)
    assert solution.diagnostics.converged and solution.energy_trace.shape[1] == 1
    assert solution.settings["sigma_source"] == "operator"


@pytest.mark.parametrize("task", TASKS)
def test_mala_mean_and_std_within_5_percent(task):
    """64 chains x 1500 kept steps (500 burn-in): per-pixel mean and std within 5%."""
    physics, y, mean, std = problem(task)
    solution = solve(y, physics, quadratic_prior(MU, S), method="posterior", mala=True,
                     chains=64, steps=2000, burn_in=500, progress=False)
    rel_mean = ((solution.estimate - mean).abs() / mean.abs()).max()
    rel_std = ((solution.std - std).abs() / std).max()
    assert rel_mean < 0.05 and rel_std < 0.05, (float(rel_mean), float(rel_std))
    d = solution.diagnostics
    assert 0.4 < d.acceptance < 0.8 and d.ess > 100 and d.evaluations > 2000
    assert solution.samples.shape == (1, 64, 1, 8, 8)


def test_ula_mean_and_std_within_5_percent_on_inpainting():
    """ULA at its default step (0.1 / L): 256 chains x 2000 kept steps."""
    physics, y, mean, std = problem("inpaint")
    solution = solve(y, physics, quadratic_prior(MU, S), method="posterior", chains=256,
                     steps=3000, burn_in=1000, progress=False)
    assert float(((solution.estimate - mean).abs() / mean.abs()).max()) < 0.05
    assert float(((solution.std - std).abs() / std).max()) < 0.05
    assert solution.diagnostics.acceptance is None


def test_mala_is_less_biased_than_ula_at_a_large_step():
    """At h = 0.5 / L, ULA's stationary std is ~15% too large on observed pixels (variance
    factor 1 / (1 - hL/2)); MALA's Metropolis correction removes that bias (64 chains x
    1200 kept steps, fixed step, no adaptation)."""
    physics, y, mean, std = problem("inpaint")
    lips = 1 / SIGMA**2 + 1 / S**2
    common = dict(method="posterior", chains=64, steps=1500, burn_in=300, step=0.5 / lips,
                  precondition=False, progress=False)
    ula = solve(y, physics, quadratic_prior(MU, S), **common)
    mala = solve(y, physics, quadratic_prior(MU, S), mala=True, adapt=False, **common)
    ula_bias = float(((ula.std - std).abs() / std).mean())
    mala_bias = float(((mala.std - std).abs() / std).mean())
    assert mala_bias < 0.03 and ula_bias > 0.05 and mala_bias < ula_bias / 3
    assert 0.2 < mala.diagnostics.acceptance < 0.9


def test_preconditioned_chains_explore_an_inpainting_hole_at_the_prior_pace():
    """Nearly noise-free inpainting (sigma 0.005: the measured pixels' curvature 1/sigma^2 is
    1600x the prior's 1/s^2). One scalar step set by that stiffness leaves the hole frozen in
    300 steps; per-pixel steps (the default) sample it: posterior std in the hole = s."""
    physics, y, mean, std = problem("inpaint", sigma=0.005)
    hole = (physics.mask == 0).expand(SHAPE)
    common = dict(method="posterior", chains=64, steps=400, burn_in=100, seed=1, progress=False)
    per_pixel = solve(y, physics, quadratic_prior(MU, S), **common)
    scalar = solve(y, physics, quadratic_prior(MU, S), precondition=False, **common)
    assert float((per_pixel.std[hole] / std[hole]).mean()) == pytest.approx(1.0, abs=0.1)
    assert float((per_pixel.estimate - mean).abs().max()) < 0.1 * S
    assert float((scalar.std[hole] / std[hole]).mean()) < 0.3
    assert per_pixel.diagnostics.step_size > 100 * scalar.diagnostics.step_size


def test_diagonal_preconditioner_is_one_in_the_hole_and_l_over_l_plus_c_elsewhere():
    from em_inverse.operators.fidelity import GaussianFidelity
    from em_inverse.solvers.objective import Objective
    from em_inverse.solvers.posterior import diagonal_preconditioner

    physics, y, _, _ = problem("inpaint")
    objective = Objective(quadratic_prior(MU, S), GaussianFidelity(physics, y, SIGMA))
    x = torch.full(SHAPE, MU)
    p = diagonal_preconditioner(objective, x, objective(x))
    prior_curvature, data_curvature = 1 / S**2, 1 / SIGMA**2
    expected = torch.where(physics.mask.expand(SHAPE) > 0,
                           prior_curvature / (prior_curvature + data_curvature), 1.0)
    torch.testing.assert_close(p, expected, rtol=1e-3, atol=1e-6)
    denoising = Objective(quadratic_prior(MU, S), GaussianFidelity(op.build_operator(
        "denoise", SHAPE, noise=SIGMA), y, SIGMA))
    assert diagonal_preconditioner(denoising, x, denoising(x)) is None  # a scalar suffices


def test_interaction_spreads_chains_inside_the_region_only():
    """W = -||B(x_i - x_j)||^2 / sigma_w^2 with B = the holes: chains spread more inside B,
    while pixels outside B (independent here) follow exactly the same trajectories."""
    physics, y, _, _ = problem("inpaint")
    holes = (physics.mask == 0).expand(SHAPE)
    common = dict(method="posterior", chains=8, steps=1500, burn_in=300, step=1e-3, seed=3,
                  progress=False)
    free = solve(y, physics, quadratic_prior(MU, S), **common)
    pushed = solve(y, physics, quadratic_prior(MU, S), interaction_sigma=1.5, **common)
    inside_free, inside_pushed = free.std[holes].mean(), pushed.std[holes].mean()
    assert inside_pushed > 1.1 * inside_free
    torch.testing.assert_close(pushed.std[~holes], free.std[~holes], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(pushed.estimate[~holes], free.estimate[~holes], rtol=1e-4,
                               atol=1e-6)


def test_em_annealed_sampler_reaches_the_posterior():
    """Start from noise, transport with the data term on (tau* = 0.5) until t = 1, then
    equilibrate at eps_max = eps: mean and std over 32 chains x 1000 states at t >= 1 match
    p(x|y) (sigma = 0.1, dt = 0.001 so the Langevin discretisation bias stays small)."""
    physics, y, mean, std = problem("inpaint", sigma=0.1)
    solution = solve(y, physics, quadratic_prior(MU, S), method="em", chains=32, steps=2000,
                     dt=0.001, tau_star=0.5, progress=False)
    assert float(((solution.estimate - mean).abs() / mean.abs()).max()) < 0.05
    assert float(((solution.std - std).abs() / std).mean()) < 0.05
    assert solution.settings["eps_max"] == 1.0 and "1001 states" in solution.diagnostics.message


def test_seed_reproducibility_numpy_input_and_defaults_from_the_prior():
    physics, y, _, _ = problem("inpaint")
    prior = quadratic_prior(MU, S)
    a = solve(y, physics, prior, method="posterior", steps=50, seed=4, progress=False)
    b = solve(y.numpy()[0, 0], physics, prior, method="posterior", steps=50, seed=4,
              progress=False)
    assert torch.equal(a.estimate, b.estimate) and torch.equal(a.samples, b.samples)
    prior.solve_defaults = {"inpaint": {"method": "posterior",
                                        "posterior": {"steps": 30, "chains": 2}}}
    c = solve(y, physics, prior, progress=False)
    assert c.settings["method"] == "posterior" and c.diagnostics.steps == 30
    assert solve(y, physics, prior, steps=40, progress=False).diagnostics.steps == 40
    steps_seen = []
    solve(y, physics, prior, method="map", steps=5, gtol=0, ftol=0, progress=False,
          callback=lambda step, total, info: steps_seen.append((step, total)))
    assert steps_seen and steps_seen[-1][1] == 5


def test_noise_is_estimated_when_the_operator_has_none():
    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 1, 64, 64), 0.5)
    y = x + 0.08 * torch.randn(x.shape, generator=g)
    solution = solve(y, op.denoising(), quadratic_prior(MU, S), steps=20, progress=False)
    assert solution.settings["sigma_source"] == "estimated"
    assert solution.settings["sigma"][0] == pytest.approx(0.08, rel=0.1)


def test_bad_options_and_divergence_give_clear_errors():
    physics, y, _, _ = problem("inpaint")
    prior = quadratic_prior(MU, S)
    with pytest.raises(UserError, match="steps"):
        solve(y, physics, prior, steps=0)
    with pytest.raises(UserError, match="unknown method"):
        solve(y, physics, prior, method="magic")
    with pytest.raises(TypeError, match="unknown option"):
        solve(y, physics, prior, method="map", chains=3)
    with pytest.raises(UserError, match="expects images .* a colour image needs a colour prior"):
        solve(torch.rand(1, 3, 8, 8), op.denoising(0.1), prior)
    with pytest.raises(SolverError, match="diverged"):
        solve(y, physics, prior, method="posterior", step=1e6, steps=10, progress=False)
    with pytest.raises(SolverError, match="anneal estimate lies .* outside the image range"):
        solve(y, physics, prior, method="anneal", prior_weight=1e6, chains=2, steps=5,
              progress=False)
    with pytest.raises(UserError, match="NaN or infinite"):
        solve(y * np.nan, physics, prior, progress=False)
    with pytest.raises(UserError, match="unsupported data type"):
        solve(torch.complex(y, y), physics, prior, progress=False)
    with pytest.raises(UserError, match="init: contains NaN"):
        solve(y, physics, prior, init=y * np.inf, progress=False)
    for task, small in (("inpaint", (1, 1, 4, 4)), ("superres", (1, 1, 2, 2))):
        with pytest.raises(UserError, match="does not fit the operator"):
            solve(torch.rand(small), problem(task)[0], prior, progress=False)


def test_wrong_objects_and_out_of_range_options_are_user_errors_not_torch_errors():
    physics, y, _, _ = problem("inpaint")
    prior = quadratic_prior(MU, S)
    for bad_prior in ("natural-gray", None):
        with pytest.raises(UserError, match="prior must be an EnergyPrior"):
            solve(y, physics, bad_prior)
    with pytest.raises(UserError, match="operator must be a deepinv LinearPhysics"):
        solve(y, "inpaint", prior)
    with pytest.raises(UserError, match="generator must be a torch.Generator"):
        solve(y, physics, prior, generator=5)
    bad_options = [("map", dict(first_step=0)), ("map", dict(history=0)),
                   ("posterior", dict(steps=8, thin=10)), ("posterior", dict(burn_in=1.5)),
                   ("posterior", dict(lipschitz_iterations=0)), ("posterior", dict(mala="no")),
                   ("map", dict(first_step=2.0)), ("em", dict(tau_star="x")),
                   ("em", dict(t_start=float("nan"))), ("hqs", dict(step_cap="1")),
                   ("anneal", dict(box_margin="3"))]
    for method, options in bad_options:
        with pytest.raises(UserError):
            solve(y, physics, prior, method, progress=False, **options)
    with pytest.raises(UserError, match="init of shape .1, 3, 8, 8. does not fit"):
        solve(y, physics, prior, "map", init=torch.rand(1, 3, 8, 8), progress=False)
    for region in (torch.ones(4, 4), torch.ones(3, 8, 8), "holes"):
        with pytest.raises(UserError, match="interaction_region"):
            solve(y, physics, prior, "posterior", chains=2, steps=4, interaction_sigma=1.0,
                  interaction_region=region, progress=False)
    with pytest.raises(UserError, match="interaction_region must hold finite weights >= 0"):
        solve(y, physics, prior, "em", chains=2, steps=4, interaction_sigma=1.0,
              interaction_region=-torch.ones(8, 8), progress=False)
    with pytest.raises(UserError, match="empty tensor"):
        solve(torch.rand(1, 1, 0, 8), physics, prior, progress=False)
    with pytest.raises(UserError, match="unknown method ''"):
        solve(y, physics, prior, "")
    with pytest.raises(UserError, match="sigma must be a finite number"):
        solve(y, physics, prior, sigma=True)
    weight = np.float32(0.5)  # numpy scalars are numbers like any other
    solve(y, physics, prior, "map", prior_weight=weight, steps=2, progress=False)


def test_a_measurement_that_is_not_an_image_is_solved_by_every_method():
    """deepinv's compressed sensing maps an image to a vector: the noise level must then be
    declared (it is estimated from images only), and MAP finds the exact posterior mean."""
    g = torch.Generator().manual_seed(0)
    physics = CompressedSensing(m=40, img_size=SHAPE[1:], rng=g)
    physics.noise_model = GaussianNoise(SIGMA, rng=g)
    y = physics(torch.rand(SHAPE, generator=g))
    assert y.shape == (1, 40)
    prior = quadratic_prior(MU, S)
    mean, _ = exact_posterior(physics, y, SIGMA, MU, S)
    assert torch.allclose(solve(y, physics, prior, "map", progress=False).estimate, mean,
                          atol=1e-4)
    for method in ("hqs", "posterior", "anneal", "em"):
        options = {} if method == "hqs" else {"chains": 2}
        estimate = solve(y, physics, prior, method, steps=20, progress=False, **options).estimate
        assert estimate.shape == SHAPE and torch.isfinite(estimate).all()
    physics.noise_model = None
    with pytest.raises(UserError, match="not an image .* cannot be estimated: give sigma"):
        solve(y, physics, prior, "map", progress=False)
    assert solve(y, physics, prior, "map", sigma=SIGMA, steps=2, progress=False).settings[
        "sigma_source"] == "given"


def test_map_that_cannot_leave_its_start_says_so_instead_of_claiming_convergence():
    """An energy that is infinite one pixel-step away: no trial from the start decreases U."""
    physics, y, _, _ = problem("inpaint")
    start = torch.full(SHAPE, 0.5)
    prior = EnergyPrior(Cliff(start), eps=1.0, scale=1.0, offset=0.0,
                        data={"kind": "image", "channels": 1, "image_size": None},
                        name="cliff").frozen()
    with pytest.warns(UserWarning, match="MAP took no step, so its estimate is the start: U is "
                                         "not finite at any trial point"):
        solution = solve(y, physics, prior, "map", init=start, progress=False)
    assert solution.diagnostics.steps == 0 and solution.diagnostics.converged is False
    assert torch.equal(solution.estimate, start)
    with pytest.raises(SolverError, match="norm of grad U overflows"):
        solve(y, physics, quadratic_prior(MU, S), "map", prior_weight=1e30, progress=False)


class Cliff(nn.Module):
    """V = 0 at ``start`` and +inf anywhere else."""

    def __init__(self, start: torch.Tensor):
        super().__init__()
        self.start = start
        self.dummy = nn.Parameter(torch.zeros(()))
        self.config = {"type": "Cliff"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        moved = (x != self.start).flatten(1).any(1)
        return torch.where(moved, torch.inf, 0.0) + 0 * x.flatten(1).sum(1) + 0 * self.dummy


def test_a_given_generator_is_recorded_instead_of_the_default_seed():
    physics, y, _, _ = problem("inpaint")
    prior = quadratic_prior(MU, S)
    generator = torch.Generator().manual_seed(4)
    drawn = solve(y, physics, prior, "anneal", chains=2, steps=3, generator=generator,
                  progress=False)
    assert drawn.settings["seed"] is None
    assert solve(y, physics, prior, "anneal", chains=2, steps=3,
                 progress=False).settings["seed"] == 0


def test_per_image_masks_run_with_every_sampler_each_chain_under_its_own_image_mask():
    """A (B, 1, H, W) mask is repeated for each image's chains; em's chains draw their noise
    image by image, so its first image matches a solve of that image alone."""
    g = torch.Generator().manual_seed(5)
    masks = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    batch = op.build_operator("inpaint", (2, 1, 8, 8), mask=masks, noise=SIGMA)
    y = op.degrade(torch.rand(2, 1, 8, 8, generator=g), batch, g)
    prior = quadratic_prior(MU, S)
    for method in ("posterior", "anneal", "em"):
        both = solve(y, batch, prior, method, chains=2, steps=6, seed=1, progress=False)
        assert both.estimate.shape == (2, 1, 8, 8) and both.samples.shape == (2, 2, 1, 8, 8)
    first = op.build_operator("inpaint", (1, 1, 8, 8), mask=masks[:1], noise=SIGMA)
    alone = solve(y[:1], first, prior, "em", chains=2, steps=6, seed=1, progress=False)
    both = solve(y, batch, prior, "em", chains=2, steps=6, seed=1, progress=False)
    torch.testing.assert_close(both.estimate[:1], alone.estimate)


def test_per_image_kernels_run_with_every_method():
    """(B, 1, h, w) kernels: each image is blurred by its own, and chains repeat them."""
    from em_inverse.operators.kernels import gaussian_kernel

    blur = gaussian_kernel(1.0)
    identity = torch.zeros_like(blur)
    identity[..., blur.shape[-2] // 2, blur.shape[-1] // 2] = 1
    physics = op.build_operator("deblur", (2, 1, 8, 8), kernel=torch.cat([blur, identity]),
                                noise=SIGMA)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    blurred = physics.A(x)
    torch.testing.assert_close(blurred[1], x[1], atol=1e-5, rtol=0)  # the identity kernel
    assert float((blurred[0] - x[0]).abs().max()) > 0.05
    y = op.degrade(x, physics, torch.Generator().manual_seed(7))
    for method in ("map", "hqs", "posterior", "anneal", "em"):
        chains = {"chains": 2} if method in ("posterior", "anneal", "em") else {}
        solution = solve(y, physics, quadratic_prior(MU, S), method, steps=4, progress=False,
                         **chains)
        assert solution.estimate.shape == (2, 1, 8, 8), method


def test_a_batch_with_unequal_noise_levels_warns_that_it_shares_one_set_of_settings():
    x = torch.full((2, 1, 8, 8), 0.5)
    y = x + torch.tensor([0.01, 0.2]).view(2, 1, 1, 1) * torch.randn(
        2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="noise levels differ"):
        solve(y, op.denoising(), quadratic_prior(MU, S), "map", steps=2, progress=False)


def test_a_noisy_measurement_may_leave_0_1_as_a_tensor_and_as_an_array():
    """Gaussian noise carries a measurement outside [0, 1]; clipping it would bias the data
    term, so every way of passing y takes it as it is."""
    physics = op.denoising(0.2)
    y = op.degrade(torch.full(SHAPE, 0.95), physics, torch.Generator().manual_seed(0))
    assert float(y.max()) > 1
    prior = quadratic_prior(MU, S)
    as_tensor = solve(y, physics, prior, method="map", progress=False)
    as_array = solve(y.numpy()[0, 0], physics, prior, method="map", progress=False)
    assert torch.equal(as_tensor.estimate, as_array.estimate)


def test_a_float_measurement_on_the_0_255_scale_warns_once_as_a_tensor_or_an_array():
    """An 8-bit image passed as floats would be solved towards white without a word."""
    physics, y, _, _ = problem("inpaint", sigma=0.0)
    prior = quadratic_prior(MU, S)
    for measurement in (y * 255, (y * 255).numpy()):
        with warnings.catch_warnings(record=True) as caught, pytest.raises(SolverError):
            warnings.simplefilter("always")  # then the estimate leaves [0, 1] by over 10
            solve(measurement, physics, prior, "map", steps=2, progress=False)
        assert [str(w.message) for w in caught if "divided by 255" in str(w.message)] == [
            f"measurement: values span [0, {float(y.max()) * 255:.4g}], far outside the [0, 1] "
            "image scale (8-bit values must be divided by 255)"]


def test_an_integer_measurement_is_an_image_in_its_full_range_like_an_image_file():
    physics, y, _, _ = problem("inpaint", sigma=0.0)
    eight_bit = (y * 255).round().to(torch.uint8)
    prior = quadratic_prior(MU, S)
    expected = solve(eight_bit.float() / 255, physics, prior, method="map", progress=False)
    for given in (eight_bit, eight_bit.numpy(), eight_bit.numpy()[0, 0]):
        solution = solve(given, physics, prior, method="map", progress=False)
        assert torch.equal(solution.estimate, expected.estimate)


@pytest.mark.filterwarnings("ignore:Deprecated ULA.forward:DeprecationWarning")
def test_energy_prior_inside_deepinv_gradient_descent_and_ula():
    """EnergyPrior is a deepinv.optim.Prior: deepinv's own GD and ULA use it unchanged."""
    import deepinv as dinv

    physics, y, mean, _ = problem("denoise")
    prior = quadratic_prior(MU, S)
    data = dinv.optim.L2(sigma=SIGMA)
    lips = op.lipschitz(physics, SHAPE) / SIGMA**2 + 1 / S**2
    model = dinv.optim.GD(data_fidelity=data, prior=prior, stepsize=1.0 / lips, lambda_reg=1.0,
                          max_iter=3000, crit_conv="residual", thres_conv=1e-9)
    estimate = model(y, physics, x_init=torch.full(SHAPE, 0.5))
    assert float((estimate - mean).norm() / mean.norm()) < 1e-3
    ula = dinv.sampling.ULA(prior, data, step_size=0.1 / lips, sigma=SIGMA, alpha=1.0,
                            max_iter=2000, burnin_ratio=0.2, thinning=1, verbose=False)
    post_mean, _ = ula(y, physics, seed=0)
    assert float((post_mean - mean).norm() / mean.norm()) < 0.02


def test_running_moments_and_effective_sample_size():
    from em_inverse.solvers.stats import RunningMoments, effective_sample_size

    g = torch.Generator().manual_seed(0)
    draws = torch.randn(50, 2, 3, 4, generator=g)  # 50 steps, 2 images, 3 chains, 4 pixels
    moments = RunningMoments()
    for step in draws:
        moments.update(step)
    pooled = draws.permute(1, 0, 2, 3).reshape(2, 150, 4)
    torch.testing.assert_close(moments.mean, pooled.mean(1))
    torch.testing.assert_close(moments.std, pooled.std(1))
    iid = torch.randn(2000, 1, 4, generator=g)
    assert 0.8 * 8000 < float(effective_sample_size(iid)[0]) <= 8000
    rho, ar = 0.9, torch.zeros(4000, 1, 4)
    for t in range(1, 4000):
        ar[t] = rho * ar[t - 1] + torch.randn(1, 4, generator=g)
    expected = 16000 * (1 - rho) / (1 + rho)
    assert 0.6 * expected < float(effective_sample_size(ar)[0]) < 1.5 * expected


def test_em_stays_stable_when_the_data_term_is_stiff():
    """sigma = 0.01 with dt = 0.01: a single explicit data step would overshoot (dt * lam /
    sigma^2 = 4); the sampler integrates the data drift in sub-steps instead."""
    physics, y, mean, _ = problem("inpaint", sigma=0.01, s=1.0, eps=0.04)
    prior = quadratic_prior(MU, 1.0, eps=0.04)
    solution = solve(y, physics, prior, method="em", chains=8, steps=150, progress=False)
    observed = (physics.mask > 0).expand(SHAPE)
    assert solution.diagnostics.retries == 0
    assert float((solution.estimate - mean)[observed].abs().max()) < 0.02


def test_a_batch_is_solved_image_by_image():
    """Two images in one call give the same MAP as two separate calls; samplers return
    (B, S, C, H, W) samples with chains grouped per image (interaction included)."""
    g = torch.Generator().manual_seed(2)
    physics = op.build_operator("inpaint", SHAPE, noise=SIGMA, mask="random:0.5", generator=g)
    y = op.degrade(torch.rand(2, 1, 8, 8, generator=g), physics, g)
    prior = quadratic_prior(MU, S)
    both = solve(y, physics, prior, steps=300, gtol=1e-7, progress=False).estimate
    for i in range(2):
        alone = solve(y[i:i + 1], physics, prior, steps=300, gtol=1e-7, progress=False)
        torch.testing.assert_close(both[i:i + 1], alone.estimate, rtol=1e-3, atol=1e-4)
    for method in ("posterior", "em"):
        result = solve(y, physics, prior, method, chains=3, steps=20, interaction_sigma=2.0,
                       progress=False)
        assert result.samples.shape == (2, 3, 1, 8, 8) and result.std.shape == (2, 1, 8, 8)
        assert result.energy_trace.shape == (20, 2)


def test_the_credible_interval_widens_for_few_chains_and_needs_a_sampler():
    """estimate -+ t_{n-1} sqrt(1 + 1/n) std, n the independent draws: 8 annealed chains give
    a half-width of 2.01 std at 90% (the Gaussian 1.645 would cover 0.835 of posterior draws);
    Langevin chains count their effective sample size."""
    from em_inverse.solvers.stats import predictive_factor

    physics, y, _, _ = problem("inpaint")
    prior = quadratic_prior(MU, S)
    annealed = solve(y, physics, prior, method="anneal", chains=8, steps=20, progress=False)
    lower, upper = annealed.interval(0.9)
    assert annealed.draws == 8
    assert torch.allclose(upper - annealed.estimate, 2.0095 * annealed.std, rtol=1e-4)
    assert torch.allclose(annealed.estimate - lower, upper - annealed.estimate)
    langevin = solve(y, physics, prior, method="posterior", chains=4, steps=200,
                     progress=False)
    assert langevin.draws == pytest.approx(max(langevin.diagnostics.ess, 2.0))
    assert predictive_factor(0.9, 1e9) == pytest.approx(1.6449, abs=1e-4)
    with pytest.raises(ValueError, match="no posterior std"):
        solve(y, physics, prior, method="map", steps=5, progress=False).interval()
    with pytest.raises(ValueError, match="at least 2 draws"):
        predictive_factor(0.9, 1)
    one_chain = solve(y, physics, prior, method="anneal", chains=1, steps=5, progress=False)
    assert one_chain.draws == 1
    with pytest.raises(ValueError, match="one anneal chain has no spread"):
        one_chain.interval()


def test_the_progress_bar_shows_the_values_of_the_step_it_reaches(capsys):
    """Solvers report values every 10 steps; the line drawn for a step carries its own values,
    not those of the report before (an HQS run used to end on the level of step 30)."""
    from em_inverse.solvers.progress import SolveProgress

    progress = SolveProgress(True, 2, "hqs", None)
    progress.bar.mininterval = progress.bar.miniters = 0  # draw every update
    progress.update(1, {"sigma": 0.5})
    progress.update(2, {"sigma": 0.25})
    drawn = capsys.readouterr().err.split("\r")
    assert any("2/2" in line and "sigma=0.25" in line for line in drawn)
    assert not any("2/2" in line and "sigma=0.5" in line for line in drawn)
    progress.close()


@pytest.mark.parametrize("method", ["map", "hqs", "posterior"])
def test_a_noise_free_inpainting_returns_its_observed_pixels_as_measured(method):
    """With noise 0 an observed pixel is known: the estimate and every sample take it from y
    and its std is 0; the missing pixels still come from the solver (not from y's zeros)."""
    g = torch.Generator().manual_seed(4)
    physics = op.build_operator("inpaint", SHAPE, noise=0.0, mask="random:0.5", generator=g)
    y = op.degrade(torch.rand(SHAPE, generator=g), physics, g)
    observed, missing = (physics.mask > 0).expand(SHAPE), (physics.mask == 0).expand(SHAPE)
    solution = solve(y, physics, quadratic_prior(MU, S), method, steps=50, progress=False)
    assert torch.equal(solution.estimate[observed], y[observed])
    assert float(solution.estimate[missing].min()) > 0.2  # near the prior mean 0.5
    assert solution.settings["observed_pixels"].startswith("as measured")
    if method == "posterior":
        assert float(solution.std[observed].abs().max()) == 0.0
        assert float(solution.std[missing].min()) > 0.05
        assert torch.equal(solution.samples[:, :, observed[0]],
                           y[observed].expand(1, 4, -1))
    without = solve(y, physics, quadratic_prior(MU, S), method, steps=50, progress=False,
                    keep_observed=False)
    assert not torch.equal(without.estimate[observed], y[observed])
    assert "observed_pixels" not in without.settings


def test_only_a_declared_noise_level_of_zero_keeps_the_observed_pixels():
    g = torch.Generator().manual_seed(5)
    noisy = op.build_operator("inpaint", SHAPE, noise=SIGMA, mask="random:0.5", generator=g)
    y = op.degrade(torch.rand(SHAPE, generator=g), noisy, g)
    prior = quadratic_prior(MU, S)
    assert "observed_pixels" not in solve(y, noisy, prior, steps=20, progress=False).settings
    assert "observed_pixels" in solve(y, noisy, prior, steps=20, sigma=0.0,
                                      progress=False).settings
    unmodelled = op.build_operator("inpaint", SHAPE, mask="random:0.5", generator=g)
    assert "observed_pixels" not in solve(y, unmodelled, prior, steps=20,
                                          progress=False).settings  # estimated: never exact
    with pytest.raises(UserError, match="keep_observed"):
        solve(y, noisy, prior, steps=20, keep_observed="yes", progress=False)

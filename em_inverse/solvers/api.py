"""``solve(y, operator, prior, method, **options) -> Solution``: the one entry point.

Options are resolved in this order: what the caller passes, then the prior's
``solve_defaults[key][method]`` (calibrated for that prior by ``em-inverse tune``), then the
method's defaults below. ``solve_defaults[key]["method"]`` is the method used when the caller
names none, e.g. ``{"denoise": {"method": "hqs", "hqs": {"steps": 1}, "map": {...}}}``. The
key is the operator's task family (``denoise``, ``inpaint``, ``deblur``, ``superres``), except
that an inpainting mask with solid holes (``operators.masks.has_holes``) takes the prior's
``inpaint-hole`` settings, and a deblurring or super-resolution with little noise (below the
entry's ``below_noise`` level) its ``deblur-clean`` / ``superres-clean`` ones, where it has
them (``solvers.tuned_entries``).

The methods' defaults and their validation live in ``solvers.options``; what is read from the
measurement (the tensor, the images' shape, the noise level) in ``solvers.measurement``.
"""
from __future__ import annotations

import copy
import time
import warnings
from typing import Callable

import numpy as np
import torch
from deepinv.physics import Inpainting, LinearPhysics

from em_inverse.devices import check_generator_device, make_generator
from em_inverse.errors import UserError
from em_inverse.operators.fidelity import GaussianFidelity
from em_inverse.operators.physics import lipschitz, task_of
from em_inverse.priors.prior import EnergyPrior
from em_inverse.solvers.anneal import run_anneal
from em_inverse.solvers.em import run_annealed
from em_inverse.solvers.hqs import run_hqs
from em_inverse.solvers.init import initial_estimate
from em_inverse.solvers.interaction import Interaction
from em_inverse.solvers.map import minimise_lbfgs
from em_inverse.solvers.measurement import (as_measurement, image_shape_of, noise_level,
                                            noise_model)
from em_inverse.solvers.objective import Objective, SolverError, hessian_norm
from em_inverse.solvers.observed import keep_observed, noise_free_observed
from em_inverse.solvers.options import COMMON, DEFAULTS, METHODS, SAMPLERS, resolve_options
from em_inverse.solvers.posterior import diagonal_preconditioner, run_langevin
from em_inverse.solvers.progress import SolveProgress
from em_inverse.solvers.solution import Diagnostics, Solution
from em_inverse.solvers.stabilised import StabilisedProblem, stabilised_problem
from em_inverse.solvers.tuned_entries import hqs_fallback, tuned_defaults

__all__ = ["DEFAULTS", "METHODS", "SAMPLERS", "noise_level", "solve"]

#: With ``end_level="below-noise"``, HQS levels below the noise stay at least this factor below it.
#: A Tweedie step at a level close to the noise smooths an image the first step has denoised: on
#: natural-gray's tuning crops a second level at 0.01 loses 0.18 dB at sigma 5/255 (0.0196) without
#: the factor and gains 0.03 with it; at 25/255 it gains 0.31 either way (``python
#: benchmarks/denoiser_refinement_check.py natural-gray [--below-noise 1]``).
LEVELS_BELOW_NOISE = 4.0

#: An estimate further than this outside [0, 1] (in image units) is a divergence, not a result:
#: noise never carries an image that far.
RANGE_SLACK = 10.0

#: A batch whose noise levels span more than this factor is solved with a warning: the tuned
#: entry, the MAP fallback and HQS's levels follow the batch's largest noise level.
MIXED_NOISE_RATIO = 1.5


def solve(y, operator, prior, method: str | None = None, *,
          generator: torch.Generator | None = None, progress: bool | None = None,
          callback: Callable[[int, int, dict], None] | None = None, **options) -> Solution:
    """Solve the inverse problem y = A x + noise with the energy prior p(x) ∝ exp(-V(x)/eps).

    Args:
        y: measurements, a tensor (B, C, h, w) in [0, 1] units or a numpy array ((h, w),
            (h, w, C) or (B, C, h, w)); moved to the prior's device. A batch shares one set
            of settings, chosen at its largest noise level (a warning says so when the levels
            differ by more than ``MIXED_NOISE_RATIO``); the data terms stay per image, and
            the operator may hold one mask or kernel per image. Floats are used as they
            are (noise may leave [0, 1]); uint8 and uint16 integers are scaled by their
            type's maximum (other integer types are refused).
        operator: any ``deepinv.physics.LinearPhysics`` (see ``em_inverse.operators``).
        prior: an ``EnergyPrior``.
        method: ``map``, ``hqs`` (annealed half-quadratic splitting), ``posterior``
            (Langevin/MALA chains at the prior's temperature), ``anneal`` (Langevin chains
            annealed over the prior's noise levels) or ``em`` (the Energy Matching sampler);
            default ``prior.solve_defaults[key]["method"]`` (``key``: see
            ``tuned_defaults``; recorded as ``settings["tuned_defaults"]``), else ``map``.
        generator: a ``torch.Generator`` on the prior's device (else one seeded with ``seed``;
            given without ``seed``, ``settings["seed"]`` records None).
        progress: tqdm bar on stderr (None: only when stderr is a terminal; False: never).
        callback: called as ``callback(step, total, info)`` after every step.

    Options (caller > prior.solve_defaults[key][method] > defaults):
        common: ``prior_weight`` w (1.0), ``sigma`` noise std (default: the operator's
            Gaussian sigma, else estimated from y; at least 1/255), ``samples`` (number of
            chain end states returned, default: all chains), ``init`` (a tensor; default: a
            back-projection, see ``initial_estimate``), ``seed`` (0), ``profile`` (False),
            ``symmetry`` ("none"; "flips" or "dihedral": V averaged over the image's flips or
            the 8 symmetries of the square, ``em_inverse.priors.symmetry``; costs 4x or 8x),
            ``keep_observed`` (True: a noise-free inpainting, one whose noise level is given
            or modelled as 0, returns its observed pixels as measured, with std 0 there;
            ``solvers.observed``), ``stabilise`` (True: a denoising under Poisson noise by
            ``map`` or ``hqs`` is solved as the Gaussian denoising of y's Anscombe transform,
            with the prior's tuned settings at that level, ``solvers.stabilised``; False keeps
            a variance per pixel in the data term).
        map: ``steps`` (200, max L-BFGS iterations), ``history`` (10), ``gtol`` (1e-5,
            relative gradient norm), ``ftol`` (1e-8, relative energy decrease),
            ``first_step`` (0.05, first move in [0, 1] pixel units; at most 1).
        hqs: ``steps`` (40 iterations, one grad V each), ``sigma_start`` (0.1; never below
            the noise sigma) and ``sigma_end`` (0.01) bound the geometric schedule of coupling
            levels s_k; ``end_level`` (``fixed``, the default but for denoising: the schedule
            ends at ``sigma_end`` whatever the noise; ``noise``, denoising's default:
            ``sigma_end`` is raised to the noise sigma, the usual rule of plug-and-play HQS,
            which leaves a noisy inpainting many prior steps at one level, see
            ``last_level``; ``below-noise``: at most noise / ``LEVELS_BELOW_NOISE``, which
            lets a denoising run refine Tweedie's estimate at a finer level; the former flag
            ``end_at_noise`` True / False still reads as ``noise`` / ``below-noise``);
            ``cg_steps`` (20, data step for non-diagonal A^T A);
            ``step_cap`` (1.5: each prior step's RMS is held to at most 1.5 s_k per image, a
            trust region that keeps a nearly clean image from being thrown far out of [0, 1],
            which repairs natural-rgb's deblurring of wide Gaussian blur, ``solvers.hqs``;
            ``math.inf`` turns it off and is recorded as None). ``steps``, ``sigma_start``
            and the prior weight are tuned together: fewer levels from the same
            ``sigma_start`` descend faster and may not repair a large first prior step
            (natural-rgb deblurring at 20 levels, without the cap: 17.8 dB instead of 30.0,
            ``benchmarks/hqs_budget_check.py natural-rgb --steps 20,40 --tasks deblur-gauss
            --step-cap inf``;
            benchmarks/experiments.md, "The budget stage").
        posterior: ``steps`` (1000), ``burn_in`` (steps // 4), ``thin`` (1), ``chains`` (4),
            ``mala`` (False), ``step`` (h; default step_factor / L with L the local Lipschitz
            constant of grad U from a power iteration), ``step_factor`` (0.1 ULA, 0.5 MALA),
            ``adapt`` (True: MALA tunes h during burn-in towards 57% acceptance),
            ``precondition`` (True: per-pixel steps where the data's curvature is known per
            pixel, so an inpainting hole is not frozen by the measured pixels' stiffness;
            L is then that of the preconditioned Hessian), ``interaction_sigma`` /
            ``interaction_region`` (see below).
        anneal: annealed Langevin over the prior's noise levels (``solvers.anneal``):
            ``steps`` (200 per chain), ``chains`` (16), ``levels`` (20, geometric from
            ``sigma_start`` 0.25 to ``sigma_end`` 0.01), ``step_factor`` (0.2: step
            0.2 s_k^2 at level s_k), ``box_margin`` (3: after each step the chains are
            projected onto [-3 s_k, 1 + 3 s_k]; 0 clips to [0, 1], ``math.inf`` turns the
            projection off).
        em: ``steps`` (150), ``chains`` (4), ``dt`` (0.01), ``tau_star`` (0.9), ``eps_max``
            (eps / w), ``data_weight`` (eps_max), ``t_start`` (0: start from noise),
            ``interaction_sigma`` (None: off) and ``interaction_region`` (B; default the
            holes for inpainting, else every pixel) for W = -||B(x_i - x_j)||^2 / sigma_w^2.
    Returns:
        a ``Solution`` (estimate, std, samples, energy_trace, diagnostics, settings).
    """
    start = time.perf_counter()
    if not isinstance(prior, EnergyPrior):
        raise UserError(f"prior must be an EnergyPrior (e.g. load_prior('natural-gray')), got "
                        f"{type(prior).__name__}")
    if not isinstance(operator, LinearPhysics):
        raise UserError(f"operator must be a deepinv LinearPhysics (e.g. "
                        f"operators.build_operator(...)), got {type(operator).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise UserError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    task = task_of(operator) or "generic"
    device = prior.device
    if generator is not None:
        check_generator_device(generator, device)
    y = as_measurement(y).to(device)
    operator = operator.to(device)
    image_shape = image_shape_of(y, operator)
    # variance: one per value under Poisson noise, else None (one level per image)
    sigma, sigma_source, variance = noise_model(y, operator, options.get("sigma"))
    stabilised = stabilised_problem(y, operator, prior, method, task, options)
    if stabilised is not None:
        return _solve_stabilised(stabilised, sigma, prior, generator, progress, callback,
                                 options, start)
    if float(sigma.max()) > MIXED_NOISE_RATIO * float(sigma.min()):
        warnings.warn(f"the batch's noise levels differ ({float(sigma.min()):.3g} to "
                      f"{float(sigma.max()):.3g}): one set of settings, chosen for the largest, "
                      "solves them all; solve such images separately", UserWarning,
                      stacklevel=2)
    tuned_key, tuned = tuned_defaults(prior, operator, float(sigma.max()))
    named = method is not None
    method = method if named else (tuned.get("method") or "map")
    settings = resolve_options(method, tuned, options, task)
    fallback = None if named else hqs_fallback(method, prior, float(sigma.max()), task,
                                               poisson=variance is not None, entry=tuned)
    if fallback and set(options) <= set(COMMON) | set(DEFAULTS["map"]):
        method, settings = "map", resolve_options("map", tuned, options, task)
    else:
        fallback = None
    try:
        prior.check_input(torch.empty(image_shape, device="meta"))
        energy_prior = (prior if settings["symmetry"] == "none"
                        else prior.symmetrized(settings["symmetry"]))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if generator is None:
        generator = make_generator(settings["seed"], device)
    elif "seed" not in options:
        settings["seed"] = None  # the caller's generator, not the default seed, draws

    x0 = settings["init"]
    x0 = (initial_estimate(y, operator, image_shape) if x0 is None
          else _given_start(x0, image_shape, device))
    chains = int(settings["chains"]) if method in SAMPLERS else 1
    rows = torch.arange(y.shape[0], device=device).repeat_interleave(chains)
    chain_operator = _operator_for_rows(operator, rows)
    fidelity = GaussianFidelity(chain_operator, y[rows], sigma[rows],
                                None if variance is None else variance[rows])
    interaction = _interaction(settings, chain_operator, image_shape, chains, device) \
        if method in SAMPLERS else None
    objective = Objective(energy_prior, fidelity, settings["prior_weight"], interaction,
                          profile=settings["profile"])
    total = int(settings["steps"])
    bar = SolveProgress(progress, total, method, callback)
    try:
        result = _run(method, objective, x0[rows], chains, settings, generator, bar, prior)
    finally:
        bar.close()
    estimate, std, samples, trace, diag = result
    if method == "map" and diag.steps == 0 and not diag.converged:
        warnings.warn(f"MAP took no step, so its estimate is the start: {diag.message}",
                      UserWarning, stacklevel=2)
    outside = float((estimate - 0.5).abs().max()) - 0.5  # beyond [0, 1], in image units
    if outside > RANGE_SLACK:
        raise SolverError(f"solver diverged: the {method} estimate lies {outside:.3g} outside "
                          f"the image range [0, 1]; lower the prior weight or the step size")
    observed = noise_free_observed(operator, options.get("sigma"))
    if settings["keep_observed"] and observed is not None:
        estimate, std, samples = keep_observed(observed, y, estimate, std, samples)
        settings["observed_pixels"] = "as measured (noise-free inpainting)"
    diag.evaluations = objective.evaluations
    diag.prior_time = objective.prior_time
    diag.wall_time = time.perf_counter() - start
    settings.update(method=method, task=task, tuned_defaults=tuned_key, sigma=sigma.tolist(),
                    sigma_source=sigma_source, prior=getattr(prior, "name", ""),
                    eps=float(prior.eps),
                    init="given" if settings["init"] is not None else "auto")
    if fallback:
        settings["fallback"] = fallback
    return Solution(estimate=estimate, std=std, samples=samples,
                    energy_trace=torch.stack(trace) if trace else torch.zeros(0, y.shape[0]),
                    diagnostics=diag, settings=settings)


def _solve_stabilised(problem: StabilisedProblem, sigma, prior, generator, progress, callback,
                      options: dict, start: float) -> Solution:
    """``solve`` of a Poisson denoising as the Gaussian denoising ``problem``
    (``solvers.stabilised``): a given ``init`` moves to the transformed scale, the estimate
    back to intensities."""
    options = dict(options)
    if options.get("init") is not None:
        options["init"] = problem.forward(as_measurement(options["init"], "init"))
    solution = solve(problem.z, problem.operator, prior, problem.method, generator=generator,
                     progress=progress, callback=callback, **options)
    solution = problem.back(solution, sigma.tolist())
    solution.diagnostics.wall_time = time.perf_counter() - start
    return solution


def _given_start(init, image_shape: tuple[int, ...], device) -> torch.Tensor:
    """The caller's ``init`` as images of ``image_shape`` (one image is used for the batch)."""
    start = as_measurement(init, "init").to(device)
    try:
        return start.expand(image_shape).clone()
    except RuntimeError:
        raise UserError(f"init of shape {tuple(start.shape)} does not fit the images, of shape "
                        f"{tuple(image_shape)}") from None


def last_level(sigma_end: float, noise: float, rule: str) -> float:
    """HQS's last coupling level for a measurement of noise std ``noise``, by ``end_level``'s
    ``rule``: ``fixed``: ``sigma_end`` itself (the schedule descends below the noise: the data
    step keeps each observed value's weight 1 / noise^2, and small late levels refine the
    estimate; natural-gray's tuning crops, 50% random pixels missing plus noise 0.05 / 0.1 /
    0.15: 32.09 / 29.32 / 27.02 dB against 29.46 / 24.34 / 22.33 with ``noise``,
    ``benchmarks/hqs_end_level_check.py``); ``noise``: raised to the noise (plug-and-play HQS's
    usual rule); ``below-noise``: at most noise / ``LEVELS_BELOW_NOISE`` (a denoiser's
    refinement)."""
    if rule == "noise":
        return max(sigma_end, noise)
    if rule == "below-noise":
        return min(sigma_end, noise / LEVELS_BELOW_NOISE)
    return sigma_end


def _run(method, objective, x0, chains, s, generator, bar, prior):
    if method == "map":
        r = minimise_lbfgs(objective, x0, steps=s["steps"], history=s["history"],
                           gtol=s["gtol"], ftol=s["ftol"], first_step=s["first_step"],
                           progress=bar.update)
        diag = Diagnostics(steps=r.steps, converged=r.converged, retries=r.retries,
                           message=r.message)
        return r.x, None, None, r.trace, diag
    if method == "hqs":
        noise = float(objective.fidelity.sigma.max())
        sigma_start = max(float(s["sigma_start"]), noise)
        sigma_end = last_level(float(s["sigma_end"]), noise, s["end_level"])
        r = run_hqs(objective, x0, iterations=s["steps"], sigma_start=sigma_start,
                    sigma_end=sigma_end, cg_steps=s["cg_steps"], step_cap=s["step_cap"],
                    progress=bar.update)
        s["sigma_start"], s["sigma_end"] = sigma_start, sigma_end
        capped = f"; {r.capped} prior step(s) capped at {s['step_cap']:g} s" if r.capped else ""
        diag = Diagnostics(steps=len(r.sigmas), capped_steps=r.capped,
                           message=f"coupling sigma {r.sigmas[0]:.3g} -> {r.sigmas[-1]:.3g}"
                                   f"{capped}")
        return r.x, None, None, r.trace, diag
    samples = s["samples"] or chains
    if method == "anneal":
        r = run_anneal(objective, x0, chains, steps=s["steps"],
                       levels=min(s["levels"], s["steps"]),
                       sigma_start=s["sigma_start"], sigma_end=s["sigma_end"],
                       step_factor=s["step_factor"], box_margin=s["box_margin"],
                       generator=generator, progress=bar.update)
        diag = Diagnostics(steps=s["steps"], step_size=s["step_factor"] * r.sigmas[-1] ** 2,
                           message=f"levels {r.sigmas[0]:.3g} -> {r.sigmas[-1]:.3g}")
        return r.mean, r.std, r.final[:, :samples], r.trace, diag
    if method == "posterior":
        mala = bool(s["mala"])
        at_start = objective(x0)
        preconditioner = (diagonal_preconditioner(objective, x0, at_start, generator,
                                                  s["lipschitz_iterations"])
                          if s["precondition"] else None)
        if s["step"] is not None:
            step = torch.full((x0.shape[0],), float(s["step"]), device=x0.device)
        else:
            factor = s["step_factor"] or (0.5 if mala else 0.1)
            step = factor / hessian_norm(lambda z: objective(z).grad, x0, at_start.grad,
                                         generator, iterations=s["lipschitz_iterations"],
                                         preconditioner=preconditioner)
        burn_in = s["burn_in"] if s["burn_in"] is not None else s["steps"] // 4
        r = run_langevin(objective, x0, chains, step, steps=s["steps"], burn_in=burn_in,
                         thin=s["thin"], mala=mala, adapt=s["adapt"], generator=generator,
                         progress=bar.update, preconditioner=preconditioner, start=at_start)
        s["burn_in"] = burn_in
        diag = Diagnostics(steps=s["steps"], acceptance=r.acceptance,
                           ess=float(r.ess.min()), step_size=float(r.step.mean()),
                           retries=r.retries, message=f"{r.kept} kept states per chain")
        return r.mean, r.std, r.final[:, :samples], r.trace, diag
    eps_max = s["eps_max"] if s["eps_max"] is not None else prior.eps / s["prior_weight"]
    data_weight = s["data_weight"] if s["data_weight"] is not None else eps_max
    s.update(eps_max=eps_max, data_weight=data_weight)
    fidelity = objective.fidelity
    data_lipschitz = lipschitz(fidelity.physics, x0.shape) / fidelity.smallest_variance()
    if objective.interaction is not None:
        inter = objective.interaction
        data_lipschitz += 2 * inter.chains * float(inter.region2.max()) / inter.sigma_w**2
    r = run_annealed(objective, x0, chains, steps=s["steps"], dt=s["dt"],
                     tau_star=s["tau_star"], eps_max=eps_max, data_weight=data_weight,
                     data_lipschitz=data_lipschitz, t_start=s["t_start"],
                     generator=generator, progress=bar.update)
    diag = Diagnostics(steps=s["steps"], step_size=r.dt, retries=r.retries,
                       message=f"{r.kept} states per chain at t >= 1")
    return r.mean, r.std, r.final[:, :samples], r.trace, diag


#: Operator parameters that may hold one value per image (a batch of masks or of kernels).
PER_IMAGE_PARAMETERS = ("mask", "filter")


def _operator_for_rows(operator, rows: torch.Tensor):
    """``operator`` for the chains' rows (image ``rows[i]`` in row i): an operator whose mask
    or blur kernel differs per image (a first dimension B > 1) is copied with those parameters
    repeated for each chain; an operator shared by the batch is returned as it is."""
    batch = int(rows.max()) + 1
    per_image = {name: value[rows] for name in PER_IMAGE_PARAMETERS
                 if torch.is_tensor(value := getattr(operator, name, None))
                 and value.ndim == 4 and value.shape[0] == batch > 1 and len(rows) > batch}
    if not per_image:
        return operator
    chained = copy.deepcopy(operator)
    try:
        chained.update_parameters(**per_image)
    except (AttributeError, TypeError, ValueError) as exc:
        raise UserError(f"cannot run chains with {type(operator).__name__}'s per-image "
                        f"{', '.join(per_image)}: {exc}") from None
    return chained


def _interaction(s, operator, image_shape, chains, device) -> Interaction | None:
    """The chain interaction, if ``interaction_sigma`` is set; region B defaults to the holes
    of an inpainting mask, else every pixel."""
    if s.get("interaction_sigma") is None:
        return None
    region = s["interaction_region"]
    if region is None:
        region = (1 - operator.mask) if isinstance(operator, Inpainting) \
            else torch.ones(1, 1, *image_shape[-2:])
    else:
        region = _interaction_region(region, image_shape)
    return Interaction(torch.as_tensor(region, device=device), s["interaction_sigma"], chains)


def _interaction_region(region, image_shape: tuple[int, ...]) -> torch.Tensor:
    """The caller's ``interaction_region`` as float weights that fit one image of
    ``image_shape`` (B, C, H, W): shape (H, W), (1|C, H, W) or (1, 1|C, H, W), finite, >= 0."""
    try:
        weights = (region.detach().cpu().float() if torch.is_tensor(region)
                   else torch.from_numpy(np.asarray(region, dtype=np.float32)))
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"interaction_region must be an array of weights, got "
                        f"{type(region).__name__}") from None
    one_image = (1, *image_shape[1:])
    try:
        fits = weights.ndim >= 2 and torch.broadcast_shapes(weights.shape, one_image) == one_image
    except RuntimeError:
        fits = False
    if not fits:
        raise UserError(f"interaction_region of shape {tuple(weights.shape)} does not fit the "
                        f"images, of shape {tuple(image_shape)}: give (H, W) or (C, H, W) "
                        f"weights")
    if not (torch.isfinite(weights).all() and (weights >= 0).all()):
        raise UserError("interaction_region must hold finite weights >= 0")
    return weights

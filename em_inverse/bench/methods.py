"""The methods a quality suite compares, behind one interface.

``Method.run(case) -> Outcome``: a :class:`Case` holds one measurement (y, physics, the
:class:`~em_inverse.bench.baselines.Problem`, the truth for oracle tuning and metrics, the prior
and the seed); an :class:`Outcome` holds the estimate (1, C, H, W) in [0, 1] and, for sampling
methods, the posterior std and samples, plus the number of solver steps.

Methods:
- every offline baseline of :mod:`em_inverse.bench.baselines` (oracle ones labelled so);
- ``em-inverse MAP``: ``em_inverse.solve(..., method="map")``;
- ``em-inverse HQS``: ``em_inverse.solve(..., method="hqs")`` (annealed half-quadratic
  splitting; for denoising with the tuned defaults, Tweedie's denoiser);
- ``em-inverse MAP (no symmetry)`` / ``em-inverse HQS (no symmetry)``: the same with
  ``symmetry="none"``: ablation rows for the tuned defaults that average V over the image's
  symmetries (``priors.symmetry``);
- ``em-inverse HQS (end at noise)``: HQS with ``end_level="noise"``, its last level raised to the
  measurement's noise (plug-and-play HQS's usual rule, and the default before the fixed end):
  the ablation row of that rule, for the tasks with noise (denoising's default already ends
  there);
- ``em-inverse MAP (no Anscombe)``: MAP with ``stabilise=False`` on denoising under Poisson
  noise, a variance per pixel in the data term instead of the Gaussian denoising of y's
  Anscombe transform (``solvers.stabilised``): the ablation row of that rule, and the default
  before it;
- ``em-inverse MAP [LABEL]`` / ``em-inverse HQS [LABEL]``: the same with another prior
  (``--extra-prior LABEL=PATH``) and its own tuned defaults: an ablation row, e.g. the Energy
  Matching recipe alone vs with an addition;
- ``em-inverse posterior mean``: ``em_inverse.solve(..., method="posterior")``;
- ``em-inverse annealed posterior mean``: ``em_inverse.solve(..., method="anneal")``;
- ``deepinv PGD + prior``: the same ``EnergyPrior`` inside deepinv's own proximal gradient
  solver (``deepinv.optim.optim_builder("PGD", g_first=True)``: a gradient step on the prior,
  then the data term's proximal map), with the same data term, prior weight, symmetry and
  initialisation as our MAP: a cross-check that the prior, not our solver, is what the numbers
  measure.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import torch

from em_inverse.bench.baselines import BASELINES, Baseline, Problem, initial_guess


@dataclass
class Case:
    """One measurement to reconstruct."""

    y: torch.Tensor
    physics: object
    problem: Problem
    truth: torch.Tensor
    prior: object = None
    seed: int = 0
    options: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """A method's answer: ``estimate`` (1, C, H, W); optional ``std`` (same shape) and
    ``samples`` (S, C, H, W); ``steps`` (solver iterations, None for closed-form methods);
    ``seconds`` (wall time, filled in by :meth:`Method.timed`)."""

    estimate: torch.Tensor
    std: torch.Tensor | None = None
    samples: torch.Tensor | None = None
    steps: int | None = None
    seconds: float = math.nan
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A named method. ``families``: task families it applies to; ``needs_prior``: uses the
    energy prior; ``oracle``: tuned on the ground truth (labelled in tables);
    ``poisson_only``: runs on tasks with Poisson noise only (an ablation of a Poisson rule);
    ``noisy_only``: on tasks with Gaussian noise only (an ablation of a rule that acts there)."""

    name: str
    run: Callable[[Case], Outcome]
    families: tuple[str, ...] = ("denoise", "inpaint", "deblur", "superres")
    needs_prior: bool = False
    oracle: bool = False
    available: bool = True
    poisson_only: bool = False
    noisy_only: bool = False

    def applies_to(self, task) -> bool:
        """Whether the method runs on ``task`` (a ``bench.tasks.Task``)."""
        return (task.family in self.families and self.available
                and (task.photons is not None or not self.poisson_only)
                and (task.sigma > 0 or not self.noisy_only))

    def timed(self, case: Case) -> Outcome:
        """Run and record the wall time (including any oracle grid search)."""
        start = time.perf_counter()
        outcome = self.run(case)
        outcome.seconds = time.perf_counter() - start
        return outcome


def baseline_methods() -> list[Method]:
    """The offline baselines, one Method per (name, families) entry; oracle ones say so."""
    def wrap(b: Baseline):
        def run(case: Case) -> Outcome:
            options = case.options.get("baselines", {}).get(b.fn.__name__, {})
            return Outcome(b.fn(case.y, case.physics, case.problem,
                                case.truth if b.oracle else None, **options))
        return run

    return [Method(b.label, wrap(b), b.families, oracle=b.oracle, available=b.available)
            for b in BASELINES]


# -- the energy prior ------------------------------------------------------------------------------
MAP = "em-inverse MAP"
MAP_NO_SYMMETRY = "em-inverse MAP (no symmetry)"
HQS = "em-inverse HQS"
HQS_NO_SYMMETRY = "em-inverse HQS (no symmetry)"
HQS_END_AT_NOISE = "em-inverse HQS (end at noise)"
MAP_NO_ANSCOMBE = "em-inverse MAP (no Anscombe)"
POSTERIOR = "em-inverse posterior mean"
ANNEAL = "em-inverse annealed posterior mean"
DEEPINV = "deepinv PGD + prior (cross-check)"
#: The rows computed with the suite's own prior (not an ``--extra-prior``).
OWN_PRIOR_METHODS = (MAP, MAP_NO_SYMMETRY, HQS, HQS_NO_SYMMETRY, HQS_END_AT_NOISE,
                     MAP_NO_ANSCOMBE, POSTERIOR, ANNEAL, DEEPINV)


def _solve(case: Case, method: str, overrides: dict | None = None):
    from em_inverse import solve

    options = {**case.options.get(method, {}), **(overrides or {})}
    return solve(case.y, case.physics, case.prior, method=method, seed=case.seed,
                 progress=False, **options)


def _steps(solution) -> int | None:
    diagnostics = getattr(solution, "diagnostics", None)
    steps = getattr(diagnostics, "steps", None)
    return int(steps) if steps is not None else None


def _samples(solution) -> torch.Tensor | None:
    """(S, C, H, W) samples of the first image, or None."""
    samples = getattr(solution, "samples", None)
    return None if samples is None else samples[0]


def run_point_estimate(case: Case, method: str = "map", overrides: dict | None = None
                       ) -> Outcome:
    """A point estimate (``map`` or ``hqs``; ``overrides``: options that replace the suite's
    and the prior's): no std, no samples."""
    solution = _solve(case, method, overrides)
    return Outcome(solution.estimate.clamp(0, 1), steps=_steps(solution),
                   info={"settings": getattr(solution, "settings", {})})


def run_posterior(case: Case, method: str = "posterior") -> Outcome:
    solution = _solve(case, method)
    return Outcome(solution.estimate.clamp(0, 1), std=getattr(solution, "std", None),
                   samples=_samples(solution), steps=_steps(solution),
                   info={"settings": getattr(solution, "settings", {}),
                         "diagnostics": getattr(solution, "diagnostics", {})})


def hessian_norm(prior, x: torch.Tensor, iterations: int = 10, seed: int = 0) -> float:
    """Largest eigenvalue of the Hessian of V/eps at x, by power iteration on Hessian-vector
    products (double backward). Used to pick a stable step size for the deepinv cross-check."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    v = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    value = 1.0
    for _ in range(iterations):
        v = v / v.norm().clamp_min(1e-30)
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            _, grad = prior.energy_and_grad(xr, create_graph=True)
            (hv,) = torch.autograd.grad((grad * v).sum(), xr)
        hv = hv / prior.eps
        value = float((hv * v).sum())
        v = hv.detach()
    return abs(value)


def run_deepinv_pgd(case: Case) -> Outcome:
    """The energy prior inside deepinv's PGD: x <- prox_{gamma f}(x - gamma * weight * grad V/eps).

    f is deepinv's ``L2(sigma)`` data fidelity ||Ax - y||^2 / (2 sigma^2) with sigma the task's
    noise (at least ``MIN_SIGMA``); gamma = 1 / (weight * ||Hess V/eps||) at the initial point,
    halved on divergence; ``steps`` iterations (default 100). Options: ``steps``,
    ``prior_weight`` (default 1) and ``symmetry`` ("none"; the suites pass those our MAP used),
    ``hessian_iterations`` (10).
    """
    from deepinv.optim import L2, optim_builder

    from em_inverse.operators import MIN_SIGMA

    options = dict(case.options.get("deepinv", {}))
    steps = int(options.get("steps", 100))
    weight = float(options.get("prior_weight", 1.0))
    sigma = max(case.problem.sigma, MIN_SIGMA)
    prior = case.prior.symmetrized(options.get("symmetry", "none"))
    x0 = initial_guess(case.y, case.physics, case.problem)
    curvature = weight * hessian_norm(prior, x0, int(options.get("hessian_iterations", 10)))
    stepsize = 1.0 / max(curvature, 1e-8)
    for _ in range(5):
        solver = optim_builder("PGD", prior=prior, data_fidelity=L2(sigma=sigma),
                               params_algo={"stepsize": stepsize, "lambda": weight},
                               max_iter=steps, g_first=True, early_stop=False,
                               custom_init=lambda y, physics, _x=x0: {"est": (_x.clone(), _x.clone())})
        with torch.no_grad():
            x = solver(case.y, case.physics)
        if bool(torch.isfinite(x).all()):
            return Outcome(x.clamp(0, 1), steps=steps, info={"stepsize": stepsize})
        stepsize /= 2
    raise RuntimeError("deepinv PGD diverged even with a 32x smaller step")


def prior_methods() -> list[Method]:
    """MAP and HQS (with the tuned symmetry and without), HQS ending at the noise, MAP without
    the Anscombe route, the two posterior means and the deepinv cross-check (all need the
    energy prior)."""
    return [Method(MAP, run_point_estimate, needs_prior=True),
            Method(MAP_NO_SYMMETRY, partial(run_point_estimate, overrides={"symmetry": "none"}),
                   needs_prior=True),
            Method(HQS, partial(run_point_estimate, method="hqs"), needs_prior=True),
            Method(HQS_NO_SYMMETRY, partial(run_point_estimate, method="hqs",
                                            overrides={"symmetry": "none"}), needs_prior=True),
            Method(HQS_END_AT_NOISE, partial(run_point_estimate, method="hqs",
                                             overrides={"end_level": "noise"}),
                   families=("inpaint", "deblur", "superres"), needs_prior=True, noisy_only=True),
            Method(MAP_NO_ANSCOMBE, partial(run_point_estimate, overrides={"stabilise": False}),
                   families=("denoise",), needs_prior=True, poisson_only=True),
            Method(POSTERIOR, run_posterior, needs_prior=True),
            Method(ANNEAL, partial(run_posterior, method="anneal"), needs_prior=True),
            Method(DEEPINV, run_deepinv_pgd, needs_prior=True)]


def extra_prior_methods(label: str, prior) -> list[Method]:
    """``em-inverse MAP [label]`` and ``em-inverse HQS [label]``: our MAP and HQS on the same
    measurement with another ``prior`` (the same suite options; that prior's own
    ``solve_defaults``): ablation rows."""
    def runner(method: str):
        def run(case: Case) -> Outcome:
            return run_point_estimate(dataclasses.replace(case, prior=prior), method)
        return run

    return [Method(f"{name} [{label}]", runner(method), needs_prior=True)
            for name, method in ((MAP, "map"), (HQS, "hqs"))]

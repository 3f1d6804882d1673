"""The Energy Matching annealed sampler for inverse problems (Balcerak et al. 2025, Alg. 3).

Chains start from Gaussian noise on the prior's internal scale (z = scale * x + offset, the
space V was trained in) - or from a point x_t = (1 - t0) z0 + t0 z(x_init) on the noise-to-data
path when ``t_start`` = t0 > 0 - and follow the learned transport -grad_z V with the data term
switched on, adding Langevin noise once the time passes tau*:

  z <- z - dt [grad_z V(z) + lam (grad_z F + grad_z W)] + sqrt(2 dt eps(t)) n,   t += dt
  (the data/interaction part in stable sub-steps, see ``run_annealed``)
  eps(t) = 0 for t < tau*, eps_max (t - tau*) / (1 - tau*) up to t = 1, eps_max after.

With lam = eps_max = eps / w (the defaults) the chains at t >= 1 sample the posterior
exp(-F - w V/eps - W), the same target as ``posterior``; with tau* < 1 the data term steers the
transport before the noise starts. Statistics: Welford over the states at t >= 1 (all chains).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from em_inverse.solvers.objective import Objective, diverged
from em_inverse.solvers.stats import RunningMoments


def temperature(t: float, tau_star: float, eps_max: float) -> float:
    """eps(t): 0 before tau*, a linear ramp to eps_max at t = 1, eps_max after."""
    if t < tau_star:
        return 0.0
    if t >= 1.0 or tau_star >= 1.0:
        return eps_max
    return eps_max * (t - tau_star) / (1.0 - tau_star)


@dataclass
class AnnealResult:
    mean: torch.Tensor
    std: torch.Tensor
    final: torch.Tensor           # (N, K, C, H, W) in [0, 1] units
    trace: list
    retries: int
    dt: float
    kept: int


def run_annealed(objective: Objective, x_init: torch.Tensor, chains: int, *, steps: int,
                 dt: float = 0.01, tau_star: float = 0.9, eps_max: float,
                 data_weight: float, data_lipschitz: float, t_start: float = 0.0,
                 max_retries: int = 8, generator: torch.Generator | None = None,
                 progress=None) -> AnnealResult:
    """Run the annealed sampler for N*K chains (x_init: (N*K, C, H, W) in [0, 1] units).

    One prior.value_and_grad per step. When the data term is stiff (low noise: with
    sigma = 0.01 a step of dt = 0.01 would overshoot), i.e. dt * data_weight * data_lipschitz /
    scale^2 > 0.5, the step is split: a prior step with the Langevin noise, then the data (and
    interaction) drift over dt in m cheap stable sub-steps (A and A^T only).
    data_lipschitz: Lipschitz constant of grad (F + W) in [0, 1] units, e.g. ||A||^2 / sigma^2.

    Divergence guard: a non-finite energy halves dt for the rest of the run (time then moves
    more slowly) and retries the step, up to ``max_retries`` times.
    """
    prior = objective.prior
    scale = prior.scale
    n_total, k = x_init.shape[0], chains
    n = n_total // k
    noise0 = torch.randn(x_init.shape, generator=generator, device=x_init.device,
                         dtype=x_init.dtype)
    z = (1.0 - t_start) * noise0 + t_start * prior.to_internal(x_init)
    t = float(t_start)
    moments = RunningMoments()
    trace, retries = [], 0
    ev = objective(prior.from_internal(z))
    if not _finite(ev):
        raise diverged("at the initial point of the annealed sampler")
    for it in range(1, steps + 1):
        eps_t = temperature(t, tau_star, eps_max)
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        grad_v = prior.eps * ev.prior_grad / scale  # grad_z V: d/dz = (1/scale) d/dx
        substeps = _substeps(dt, data_weight * data_lipschitz / scale**2)
        if substeps == 1:  # not stiff: one explicit step with the whole drift
            drift = grad_v + data_weight * (ev.grad - objective.prior_weight * ev.prior_grad) \
                / scale
        while True:
            if substeps == 1:
                z_new = z - dt * drift + (2 * dt * eps_t) ** 0.5 * noise
            else:  # stiff data term: prior step, then the data flow in stable sub-steps
                z_new = z - dt * grad_v + (2 * dt * eps_t) ** 0.5 * noise
                z_new = _data_flow(objective, z_new, dt, data_weight, substeps)
            ev_new = objective(prior.from_internal(z_new))
            if _finite(ev_new):
                break
            if retries >= max_retries:
                raise diverged("in the annealed sampler", dt)
            retries += 1
            dt *= 0.5
        z, ev = z_new, ev_new
        t += dt
        trace.append(ev.total.view(n, k).mean(dim=1))
        if t >= 1.0 - 1e-9:
            moments.update(prior.from_internal(z).view(n, k, *z.shape[1:]))
        if progress is not None:
            show = it % 10 == 0 or it == steps
            progress(it, {"U": float(trace[-1].mean()), "t": t} if show else {})
    final = prior.from_internal(z).view(n, k, *z.shape[1:])
    if moments.mean is None:  # never reached t = 1: statistics of the final states only
        moments.update(final)
    return AnnealResult(mean=moments.mean, std=moments.std, final=final,
                        trace=[u.cpu() for u in trace],
                        retries=retries, dt=dt, kept=moments.count // k)


def _substeps(dt: float, stiffness: float) -> int:
    """Sub-steps needed so that (dt / m) * stiffness <= 0.5 (at most 1000)."""
    return min(1000, max(1, math.ceil(dt * stiffness / 0.5)))


def _data_flow(objective: Objective, z: torch.Tensor, dt: float, weight: float,
               substeps: int) -> torch.Tensor:
    """Integrate dz/dt = -weight * grad_z (F + W) over dt in ``substeps`` explicit steps."""
    prior = objective.prior
    h = dt / substeps
    for _ in range(substeps):
        x = prior.from_internal(z)
        grad = objective.fidelity.grad(x)
        if objective.interaction is not None:
            grad = grad + objective.interaction.value_and_grad(x)[1]
        z = z - h * weight * grad / prior.scale
    return z


def _finite(ev) -> bool:
    return bool(ev.finite().all()) and bool(torch.isfinite(ev.grad).all())

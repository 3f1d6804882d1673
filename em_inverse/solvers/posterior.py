"""Posterior sampling with batched Langevin chains: ULA, or MALA (Metropolis-adjusted).

All chains of all images form one batch (N = images x K chains), so each step costs one
prior.value_and_grad on that batch; MALA reuses the accepted proposal's energy and gradient.

  proposal  x' = x - h P grad U(x) + sqrt(2 h P) z,   z ~ N(0, I)   (h per chain)
  MALA      accept with prob min(1, exp(U(x) - U(x') + log q(x|x') - log q(x'|x))),
            log q(a|b) = -sum (a - b + h P grad U(b))^2 / (4 h P)

P is a fixed per-pixel preconditioner (1 without one; ``diagonal_preconditioner``): where the
data pin some pixels hard (the measured pixels of noise-free inpainting, curvature 1/sigma^2)
and leave others to the prior (the hole), one scalar step set by the stiffest pixel would
freeze the hole; P lets each pixel move at the pace of its own curvature. Any fixed positive P
leaves exp(-U) invariant (for ULA up to the usual discretisation bias).

Statistics: Welford mean/std over the kept states (after ``burn_in`` steps, every ``thin``-th,
never the initial state), acceptance rate over the kept steps, effective sample size of two
scalar summaries (U and a fixed random projection of x), minimum reported.
Divergence guard: chains whose proposal has a non-finite energy halve their step and retry the
same step (up to ``max_retries`` times), then a ``SolverError``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from em_inverse.solvers.objective import Evaluation, Objective, diverged, hessian_norm
from em_inverse.solvers.stats import RunningMoments, effective_sample_size


@dataclass
class ChainResult:
    mean: torch.Tensor            # (N, C, H, W)
    std: torch.Tensor             # (N, C, H, W)
    final: torch.Tensor           # (N, K, C, H, W): last state of every chain
    trace: list                   # U per step, each (N,) mean over chains
    acceptance: float | None
    ess: torch.Tensor             # (N,)
    step: torch.Tensor            # (N*K,) final step sizes
    retries: int
    kept: int                     # states folded into the statistics per chain


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *[1] * (like.ndim - 1))


def run_langevin(objective: Objective, x0: torch.Tensor, chains: int, step: torch.Tensor, *,
                 steps: int, burn_in: int, thin: int = 1, mala: bool = False,
                 adapt: bool = True, target_accept: float = 0.574, max_retries: int = 8,
                 generator: torch.Generator | None = None, progress=None,
                 preconditioner: torch.Tensor | None = None,
                 start: Evaluation | None = None) -> ChainResult:
    """Run ``steps`` Langevin steps from x0 (N*K, C, H, W), chains of one image consecutive.

    step: (N*K,) initial step sizes h (in [0, 1]-units squared per unit energy). With
    ``mala`` and ``adapt``, h is tuned during burn-in only (Robbins-Monro towards
    ``target_accept``), then frozen so the kept chain is a valid MALA chain.
    preconditioner: P, positive, broadcastable to x0 (None: 1); pixel i steps h P_i.
    start: objective(x0) if the caller already has it (saves one evaluation).
    """
    if steps <= burn_in:
        raise ValueError(f"steps ({steps}) must exceed burn_in ({burn_in})")
    x = x0.detach().clone()
    n_total, k = x.shape[0], chains
    n = n_total // k
    h = step.detach().clone().to(x.device, x.dtype)
    current = objective(x) if start is None else start
    if not bool(current.finite().all()):
        raise diverged("at the initial point")
    moments = RunningMoments()
    probe = torch.randn(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype)
    probe = probe / probe.norm()
    monitors_u, monitors_p = [], []
    trace, retries, accepted_sum, proposals = [], 0, 0.0, 0
    for it in range(1, steps + 1):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        proposal, proposed, h, step_map, tries = _propose(objective, x, current, h,
                                                          preconditioner, noise, max_retries)
        retries += tries
        if mala:
            accept = _mh_accept(x, current, proposal, proposed, step_map, generator, objective)
            x = torch.where(_bcast(accept, x), proposal, x)
            current = _select(accept, proposed, current)
            rate = accept.to(x.dtype)
            if adapt and it <= burn_in:
                h = h * torch.exp(0.5 * (rate - target_accept) / math.sqrt(it))
            elif it > burn_in:
                accepted_sum = accepted_sum + rate.sum()  # stays on the device: no sync
                proposals += rate.numel()
        else:
            x, current = proposal, proposed
        trace.append(current.total.view(n, k).mean(dim=1))
        if it > burn_in and (it - burn_in) % thin == 0:
            moments.update(x.view(n, k, *x.shape[1:]))
            monitors_u.append(current.total.view(n, k))
            monitors_p.append((x * probe).flatten(1).sum(1).view(n, k))
        if progress is not None:
            show = it % 10 == 0 or it == steps
            progress(it, {"U": float(trace[-1].mean())} if show else {})
    ess = torch.minimum(effective_sample_size(torch.stack(monitors_u).cpu()),
                        effective_sample_size(torch.stack(monitors_p).cpu()))
    return ChainResult(mean=moments.mean, std=moments.std, final=x.view(n, k, *x.shape[1:]),
                       trace=[u.cpu() for u in trace],
                       acceptance=float(accepted_sum) / proposals if mala else None,
                       ess=ess, step=h, retries=retries, kept=moments.count // k)


def _step_map(h: torch.Tensor, preconditioner: torch.Tensor | None, x: torch.Tensor
              ) -> torch.Tensor:
    """Per-pixel step sizes h P, broadcastable to x (h: (N*K,) per chain)."""
    hb = _bcast(h, x)
    return hb if preconditioner is None else hb * preconditioner


def _propose(objective, x, current, h, preconditioner, noise, max_retries):
    """One Langevin proposal under the divergence guard.

    Returns (x', U-evaluation at x', step sizes (halved for chains that hit a non-finite
    energy), the per-pixel steps h P used, number of retries)."""
    retries = 0
    while True:
        steps = _step_map(h, preconditioner, x)
        proposal = x - steps * current.grad + (2 * steps).sqrt() * noise
        evaluation = objective(proposal)
        bad = ~(evaluation.finite() & torch.isfinite(evaluation.grad).flatten(1).all(dim=1))
        if not bool(bad.any()):
            return proposal, evaluation, h, steps, retries
        if retries >= max_retries:
            raise diverged("in Langevin sampling", float(h[bad].min()))
        retries += 1
        h = torch.where(bad, h * 0.5, h)


def _select(accept: torch.Tensor, new: Evaluation, old: Evaluation) -> Evaluation:
    """Per-chain choice between two evaluations (accepted proposals take the new one)."""
    grad_mask = _bcast(accept, new.grad)
    return Evaluation(total=torch.where(accept, new.total, old.total),
                      grad=torch.where(grad_mask, new.grad, old.grad),
                      prior=torch.where(accept, new.prior, old.prior),
                      prior_grad=torch.where(grad_mask, new.prior_grad, old.prior_grad))


def _mh_accept(x, current, proposal, proposal_eval, steps, generator, objective):
    """Metropolis-Hastings decision per chain (per image group when chains interact);
    ``steps``: the per-pixel step sizes h P of the proposal."""
    forward = ((proposal - x + steps * current.grad) ** 2 / (4 * steps)).flatten(1).sum(1)
    backward = ((x - proposal + steps * proposal_eval.grad) ** 2 / (4 * steps)).flatten(1).sum(1)
    log_ratio = current.total - proposal_eval.total + forward - backward
    if objective.interaction is not None:  # coupled chains: one joint decision per image
        k = objective.interaction.chains
        log_ratio = log_ratio.view(-1, k).sum(1).repeat_interleave(k)
    uniform = torch.rand(log_ratio.shape, generator=generator, device=x.device, dtype=x.dtype)
    if objective.interaction is not None:
        k = objective.interaction.chains
        uniform = uniform.view(-1, k)[:, :1].expand(-1, k).reshape(-1)
    return torch.log(uniform) < log_ratio


def diagonal_preconditioner(objective: Objective, x: torch.Tensor, at: Evaluation,
                            generator: torch.Generator | None = None,
                            iterations: int = 10) -> torch.Tensor | None:
    """P = l / (l + c) per pixel, shape of x (N*K, C, H, W), or None where it is not needed.

    c = diag(A^T A)/sigma^2 is the data term's curvature (known where A^T A is diagonal), l the
    Hessian norm of the prior term w V/eps at x (power iteration, ``iterations`` evaluations;
    ``at`` = objective(x), whose prior gradient it reuses).
    Pixels the data pin (c >> l) get steps scaled down by l/c, the others (c = 0: an inpainting
    hole) the prior's own step. None when c is unknown (blur, downsampling: there A^T A spreads
    over pixels) or the same for every pixel of a row (a scalar step is then already right).
    """
    curvature = objective.fidelity.curvature_diagonal()
    if curvature is None:
        return None
    curvature = curvature.expand_as(x).flatten(1)
    if bool((curvature.amax(1) == curvature.amin(1)).all()):
        return None

    def prior_grad(z: torch.Tensor) -> torch.Tensor:
        return objective.prior_weight * objective.prior_terms(z)[1]

    at_grad = objective.prior_weight * at.prior_grad
    prior_curvature = _bcast(hessian_norm(prior_grad, x, at_grad, generator, iterations), x)
    return prior_curvature / (prior_curvature + curvature.view_as(x))

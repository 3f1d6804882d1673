"""MAP estimation: minimise U(x) = F(x) + w V(x)/eps with L-BFGS and a backtracking line search.

One evaluation of U (one prior.value_and_grad) per trial point; no gradient is recomputed.
The batch is optimised jointly (U summed over images, whose Hessian is block diagonal).
Stopping rule: ||grad U|| <= gtol * ||grad U(x0)||, or a relative decrease of U below ftol on
three consecutive iterations, or ``steps`` iterations, or no further decrease possible (a line
search exhausted: converged when U rose at its trial points, down to moves at U's rounding;
a failure when U was infinite at every trial point that moved x).
Divergence guard: a non-finite trial energy halves the step; a non-finite start is an error.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch

from em_inverse.solvers.objective import Objective, SolverError, diverged


@dataclass
class MapResult:
    x: torch.Tensor
    trace: list          # U per accepted iterate, each (N,)
    steps: int           # accepted iterations
    converged: bool
    retries: int
    message: str


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def minimise_lbfgs(objective: Objective, x0: torch.Tensor, *, steps: int = 200,
                   history: int = 10, gtol: float = 1e-5, ftol: float = 1e-8,
                   armijo: float = 1e-4, max_backtracks: int = 30,
                   first_step: float = 0.05, progress=None) -> MapResult:
    """L-BFGS on sum_n U(x_n). ``first_step``: size (in [0, 1] pixel units, max over pixels)
    of the very first trial move along -grad U, before curvature pairs exist."""
    x = x0.detach().clone()
    current = objective(x)
    if not bool(current.finite().all()):
        raise diverged("at the initial point")
    u, g = float(current.total.sum()), current.grad
    g0_norm = max(g.norm().item(), 1e-30)
    if not math.isfinite(g0_norm):  # every entry finite, their norm not: U is badly scaled
        raise SolverError("MAP cannot start: the norm of grad U overflows at the start; "
                          "lower the prior weight")
    pairs: deque = deque(maxlen=history)
    trace = [current.total.cpu()]
    retries, small, converged, message = 0, 0, False, "reached the step limit"
    it = 0
    for it in range(1, steps + 1):
        if g.norm().item() <= gtol * g0_norm:
            converged, message, it = True, "gradient tolerance reached", it - 1
            break
        direction = _two_loop(g, pairs)
        slope = _dot(g, direction)
        if not slope < 0:  # lost descent (numerical noise): restart from steepest descent
            pairs.clear()
            direction, slope = -g, -_dot(g, g)
        t = 1.0 if pairs else first_step / max(direction.abs().max().item(), 1e-30)
        accepted, finite_moves = None, 0  # trials that moved x to a finite U, too high
        for _ in range(max_backtracks):
            trial_x = x + t * direction
            trial = objective(trial_x)
            if not bool(trial.finite().all()):
                retries += 1
                t *= 0.5
                continue
            if float(trial.total.sum()) <= u + armijo * t * slope:
                accepted = trial
                break
            finite_moves += bool((trial_x != x).any())
            t *= 0.5
        if accepted is None:
            it -= 1  # no step taken
            if finite_moves:  # no decrease down to 2^-29 of the first move: a minimum
                converged, message = True, "no further decrease (line search exhausted)"
            else:  # U infinite wherever the trials moved x: a cliff, not a minimum
                message = (f"U is not finite at any trial point of the line search "
                           f"(exhausted after {max_backtracks} trials)")
            break
        s = trial_x - x
        yk = accepted.grad - g
        sy = _dot(s, yk)
        if sy > 1e-10 * s.norm().item() * yk.norm().item():
            pairs.append((s, yk, 1.0 / sy))
        new_u = float(accepted.total.sum())
        decrease = u - new_u
        x, u, g = trial_x, new_u, accepted.grad
        trace.append(accepted.total.cpu())
        if progress is not None:
            progress(it, {"U": new_u})
        small = small + 1 if decrease <= ftol * max(abs(u), 1.0) else 0
        if small >= 3:
            converged, message = True, "energy tolerance reached"
            break
    return MapResult(x=x, trace=trace, steps=it, converged=converged, retries=retries,
                     message=message)


def _two_loop(g: torch.Tensor, pairs) -> torch.Tensor:
    """-H g with the L-BFGS inverse-Hessian approximation H from the stored (s, y) pairs."""
    q = g.clone()
    alphas = []
    for s, yk, rho in reversed(pairs):
        alpha = rho * _dot(s, q)
        q.add_(yk, alpha=-alpha)
        alphas.append(alpha)
    if pairs:
        s, yk, _ = pairs[-1]
        q.mul_(_dot(s, yk) / max(_dot(yk, yk), 1e-30))
    for (s, yk, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * _dot(yk, q)
        q.add_(s, alpha=alpha - beta)
    return -q

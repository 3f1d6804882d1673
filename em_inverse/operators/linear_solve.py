"""Conjugate gradients for the symmetric positive definite systems that data terms produce,
e.g. (A^T A / sigma^2 + rho I) x = b. Batched: each row of the batch (N, ...) is solved
independently (its own step lengths), and the loop stops once every row has converged."""
from __future__ import annotations

from typing import Callable

import torch


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       x0: torch.Tensor, iterations: int = 100,
                       rtol: float = 1e-6) -> torch.Tensor:
    """Solve ``apply(x) = b`` per row from ``x0``; stop when ||r|| <= rtol ||b|| in every row."""
    def dot(u, v):
        return (u * v).flatten(1).sum(1).view(-1, *[1] * (u.ndim - 1))

    x = x0.clone()
    r = b - apply(x)
    p = r.clone()
    rr = dot(r, r)
    threshold = rtol**2 * dot(b, b)
    for _ in range(iterations):
        if bool((rr <= threshold).all()):
            break
        ap = apply(p)
        alpha = rr / dot(p, ap).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        rr_next = dot(r, r)
        p = r + (rr_next / rr.clamp_min(1e-30)) * p
        rr = rr_next
    return x

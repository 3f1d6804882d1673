"""Energy Matching losses (Balcerak et al. 2025), on the prior's internal scale.

Shapes: ``x0``, ``x1`` are (B, *D) batches (vectors or images); energies are (B,).
``energy_fn`` maps (B, *D) -> (B,). Phase 1 is flow matching on -grad V along minibatch-OT
straight paths; phase 2 adds a contrastive term with Langevin negatives.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def ot_pair(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Reorder noise ``x0`` so (x0[i], x1[i]) is the exact minibatch OT coupling (squared L2)."""
    cost = torch.cdist(x0.flatten(1).double(), x1.flatten(1).double()).pow(2)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    order = torch.empty(len(cols), dtype=torch.long)
    order[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return x0[order.to(x0.device)]


def flow_weight(t: torch.Tensor, tau_star: float) -> torch.Tensor:
    """1 for t < tau*, then a linear ramp to 0 at t = 1 (all ones when tau* >= 1)."""
    if tau_star >= 1.0:
        return torch.ones_like(t)
    return ((1.0 - t) / (1.0 - tau_star)).clamp(0.0, 1.0)


def grad_energy(energy_fn, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(V(x) (B,), grad_x V (B, *D)); keeps the graph for a second backward if asked."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        v = energy_fn(x)
        (g,) = torch.autograd.grad(v.sum(), x, create_graph=create_graph)
    return v, g


def per_sample_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


def flow_matching_loss(grad_v: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor,
                       t: torch.Tensor, tau_star: float) -> torch.Tensor:
    """mean_i w(t_i) ||-grad V(x_t) - (x1 - x0)||^2 / D, with grad V taken at x_t."""
    residual = per_sample_mean((-grad_v - (x1 - x0)).pow(2))
    return (flow_weight(t, tau_star) * residual).mean()


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1 with t of shape (B,) broadcast over the data dims."""
    t = t.view(-1, *([1] * (x0.ndim - 1)))
    return (1.0 - t) * x0 + t * x1


def trimmed_mean(values: torch.Tensor, drop_top: float) -> torch.Tensor:
    """Mean after dropping the top ``drop_top`` fraction (e.g. 0.1) of the values."""
    keep = max(1, int(round(values.numel() * (1.0 - drop_top))))
    return values.sort().values[:keep].mean()


def contrastive_loss(v_data: torch.Tensor, v_neg: torch.Tensor, drop_top: float,
                     beta: float) -> torch.Tensor:
    """mean V(data) - trimmed_mean V(negatives), clamped below at -beta."""
    return (v_data.mean() - trimmed_mean(v_neg, drop_top)).clamp(min=-beta)


def denoising_score_loss(grad_v: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor,
                         eps: float) -> torch.Tensor:
    """Optional near-data term: -grad V(x + sigma z)/eps should be the noisy score -z/sigma.

    ``sigma``-weighted: mean || sigma * grad V / eps - z ||^2 / D. ``eps`` is the equilibrium
    temperature (eps_max), so the term agrees with the Boltzmann reading exp(-V/eps).
    """
    s = sigma.view(-1, *([1] * (noise.ndim - 1)))
    return per_sample_mean((s * grad_v / eps - noise).pow(2)).mean()

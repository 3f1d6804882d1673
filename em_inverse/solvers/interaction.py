"""Interaction energy between the chains of one image, for diverse completions.

W = -(1 / sigma_w^2) * sum_{i<j} ||B (x_i - x_j)||^2 over the K chains of an image, with B a
per-pixel weight (a region: 1 inside, 0 outside). Writing d_i = x_i - mean_k x_k,
W = -(K / sigma_w^2) * sum_i ||B d_i||^2 and grad_{x_i} W = -(2K / sigma_w^2) B^2 d_i: a
repulsion of each chain from the chains' mean inside B, exactly zero outside B. The attributed
per-chain energy W_i = -(K / sigma_w^2) ||B d_i||^2 sums to W.

Stability: the repulsion adds curvature -2K B^2/sigma_w^2 to U; it must stay below the
posterior's own curvature inside B (e.g. the prior precision), so choose sigma_w^2 > 2K / that.
"""
from __future__ import annotations

import torch


class Interaction:
    """Chains are consecutive rows: x has shape (N * K, C, H, W) with K = ``chains``.

    Args:
        region: B, broadcastable to one image (1 or C, H, W) or (1, 1|C, H, W); weights >= 0.
        sigma_w: interaction length scale on the [0, 1] scale (> 0).
        chains: K, the number of chains per image.
    """

    def __init__(self, region: torch.Tensor, sigma_w: float, chains: int):
        if sigma_w <= 0:
            raise ValueError(f"sigma_w must be > 0, got {sigma_w}")
        self.region2 = region.float() ** 2
        if self.region2.ndim == 3:
            self.region2 = self.region2.unsqueeze(0)
        self.sigma_w = float(sigma_w)
        self.chains = int(chains)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_i per chain (N*K,), grad W of x's shape)."""
        k = self.chains
        grouped = x.view(-1, k, *x.shape[1:])
        d = (grouped - grouped.mean(dim=1, keepdim=True)).view_as(x)
        b2d = self.region2.to(x.device) * d
        coef = k / self.sigma_w**2
        value = -coef * (b2d * d).flatten(1).sum(1)
        return value, -2 * coef * b2d

"""Shared fixtures: a Gaussian (quadratic-energy) prior whose posterior is known in closed form."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from em_inverse.priors import EnergyPrior


class QuadraticEnergy(nn.Module):
    """V(x) = 0.5 * ||x - mu||^2 / s^2 summed per image: a Gaussian prior N(mu, eps s^2 I)."""

    def __init__(self, mu: float = 0.5, s: float = 0.2):
        super().__init__()
        self.mu, self.s = mu, s
        self.dummy = nn.Parameter(torch.zeros(()))  # EnergyPrior.device reads a parameter
        self.config = {"type": "QuadraticEnergy"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x - self.mu) ** 2).flatten(1).sum(1) / self.s**2 + 0 * self.dummy


def quadratic_prior(mu: float = 0.5, s: float = 0.2, eps: float = 1.0) -> EnergyPrior:
    return EnergyPrior(QuadraticEnergy(mu, s), eps=eps, scale=1.0, offset=0.0,
                       data={"kind": "image", "channels": 1, "image_size": None},
                       name="quadratic").frozen()


def dense_matrix(physics, shape) -> torch.Tensor:
    """The matrix of A acting on flattened images of ``shape`` (C, H, W), float64."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n).view(n, *shape)
    with torch.no_grad():
        return physics.A(basis).reshape(n, -1).T.double()


def exact_posterior(physics, y, sigma, mu, s, eps=1.0, weight=1.0):
    """Mean and per-pixel std of p(x|y) ∝ exp(-||Ax-y||^2/(2 sigma^2) - w V(x)/eps)."""
    shape = physics.A_adjoint(y).shape[1:]
    a = dense_matrix(physics, shape)
    n = a.shape[1]
    precision = a.T @ a / sigma**2 + weight / (eps * s**2) * torch.eye(n, dtype=torch.float64)
    rhs = a.T @ y.flatten().double() / sigma**2 + weight * mu / (eps * s**2)
    cov = torch.linalg.inv(precision)
    mean = cov @ rhs
    return mean.view(1, *shape).float(), cov.diagonal().sqrt().view(1, *shape).float()


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny tensors: OpenMP thread spinning costs far more than it gains (and other jobs
    share the machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

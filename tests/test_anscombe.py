"""The generalised Anscombe transform: Poisson-Gaussian noise in, Gaussian noise of one level out.

y = Poisson(P x) / P + N(0, sigma^2) has variance x / P + sigma^2; anscombe(y) has variance
1 / (4 P) at every intensity, and the unbiased inverse of its mean is x.
"""
from __future__ import annotations

import pytest
import torch

from em_inverse.operators.anscombe import (ZERO_COUNT, anscombe, inverse_anscombe,
                                           stabilised_sigma)
from em_inverse.operators.shot_noise import draw_shot_noise

DRAWS = 200_000


def _measure(intensity: float, photons: float, read: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    clean = torch.full((DRAWS,), intensity, dtype=torch.float64)
    y = draw_shot_noise(clean, photons, g)
    return y + read * torch.randn(DRAWS, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("photons,read", [(30, 0.0), (50, 0.02)])
def test_the_transform_has_one_noise_level_at_every_intensity(photons, read):
    for k, intensity in enumerate((0.15, 0.4, 0.9)):
        y = _measure(intensity, photons, read, seed=k)
        raw = (intensity / photons + read**2) ** 0.5  # brighter pixels are noisier
        assert float(y.std()) == pytest.approx(raw, rel=0.02)
        assert float(anscombe(y, photons, read).std()) == pytest.approx(
            stabilised_sigma(photons), rel=0.04)


@pytest.mark.parametrize("photons,read", [(5, 0.0), (20, 0.0), (40, 0.01)])
def test_the_inverse_maps_the_transforms_mean_back_to_the_intensity(photons, read):
    """The exact unbiased inverse: the algebraic one, z^2 - 3 / (8 P) - P sigma^2, is biased
    low by about 1 / (4 P) (a quarter photon), which the test also checks."""
    for k, intensity in enumerate((0.2, 0.5, 1.0)):
        mean = anscombe(_measure(intensity, photons, read, seed=10 + k), photons, read).mean()
        assert float(inverse_anscombe(mean, photons, read)) == pytest.approx(intensity,
                                                                             abs=0.01)
        algebraic = float(mean**2 - 3 / (8 * photons) - photons * read**2)
        assert intensity - algebraic == pytest.approx(1 / (4 * photons), rel=0.35)


def test_the_inverse_is_0_at_or_below_the_transform_of_no_light_and_rises_above():
    photons = 10.0
    z = torch.linspace(0, 2, 401, dtype=torch.float64)
    x = inverse_anscombe(z, photons)
    dark = 2 * photons**0.5 * z <= ZERO_COUNT
    assert torch.all(x[dark] == 0) and dark.any()
    assert torch.all(x[~dark].diff() > 0) and float(x[~dark][0]) >= 0

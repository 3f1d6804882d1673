"""The generalised Anscombe transform: Poisson-Gaussian noise made Gaussian of one level.

A measurement y = Poisson(P x) / P + N(0, sigma^2) (``operators.shot_noise``: P photons per unit
intensity, sigma the read noise) has noise variance x / P + sigma^2, brighter pixels noisier. In
photon counts c = P y the generalised Anscombe transform (GAT)

    f(c) = 2 sqrt(c + 3/8 + (P sigma)^2)

has noise of variance close to 1 wherever the image holds more than a few photons
(Makitalo and Foi, IEEE TIP 2013). ``anscombe`` returns f(c) / (2 sqrt(P)), so that the result
is an image on about the [0, 1] scale, sqrt(x + 3 / (8 P) + P sigma^2), with white Gaussian
noise of std ``stabilised_sigma(P)`` = 1 / (2 sqrt(P)): a Gaussian denoiser removes it, and
``inverse_anscombe`` returns to intensities. It uses the closed-form approximation of the exact
unbiased inverse of Makitalo and Foi (IEEE TIP 2011), which undoes the transform's bias on the
mean (the plain algebraic inverse z^2 - ... is biased low in the shadows), minus (P sigma)^2;
transformed values at or below that of zero intensity, 2 sqrt(3/8), map to 0.

Units: y and x in [0, 1] intensity units; ``photons`` per unit intensity; sigma a std on that
scale. Tensors of any shape, the transform acts per value.
"""
from __future__ import annotations

import math

import torch

#: The transformed count of zero intensity, 2 sqrt(3/8): the closed-form inverse is 0 there.
ZERO_COUNT = 2.0 * math.sqrt(3.0 / 8.0)


def stabilised_sigma(photons: float) -> float:
    """The noise std of ``anscombe``'s output, 1 / (2 sqrt(photons)), on the [0, 1] scale."""
    return 0.5 / math.sqrt(photons)


def anscombe(y: torch.Tensor, photons: float, sigma: float = 0.0) -> torch.Tensor:
    """sqrt(y + 3 / (8 P) + P sigma^2) (at least 0 inside the root): the GAT of the counts P y,
    divided by 2 sqrt(P). Also maps a clean intensity image onto the transformed scale."""
    return (y + 3.0 / (8.0 * photons) + photons * sigma * sigma).clamp_min(0).sqrt()


def inverse_anscombe(z: torch.Tensor, photons: float, sigma: float = 0.0) -> torch.Tensor:
    """Intensities from a denoised ``anscombe`` image z: the closed-form exact unbiased inverse
    of the GAT on the counts D = 2 sqrt(P) z, minus (P sigma)^2, divided by P; at least 0."""
    counts = (2.0 * math.sqrt(photons) * z).clamp_min(ZERO_COUNT)
    root = math.sqrt(1.5)
    intensity = (counts**2 / 4 + root / 4 / counts - 11 / 8 / counts**2
                 + 5 * root / 8 / counts**3 - 1 / 8 - (photons * sigma) ** 2)
    return intensity.clamp_min(0) / photons

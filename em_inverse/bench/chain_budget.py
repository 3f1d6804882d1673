"""How many annealed-sampler chains the tuner runs: the best sampler setting's chain count is
doubled while the chains' own spread predicts a gain worth the cost (``chains_worth_running``).
"""
from __future__ import annotations

import math

import numpy as np

from em_inverse.solvers.stats import error_with_more_chains

#: The best sampler setting's chain count is doubled while that is predicted to gain at
#: least CHAIN_GAIN_DB, up to MAX_CHAINS. The gain is predicted from that setting's own chains
#: (``solvers.stats.error_with_more_chains``: the Monte-Carlo part of a mean's error falls as
#: 1 / chains, and the chains' spread measures it), not measured by a second run, whose own
#: Monte-Carlo noise is as large as the gain: on the first 20 Fashion-MNIST training images a
#: 32-chain run scored 23.61 dB against the 16-chain run's 23.65 (the card's tuning table at
#: commit c9e98f3), although a mean over more independent chains is never worse in expectation.
#: The gain predicted is that of the PSNR of the images' summed squared error: per image, an
#: image whose small error is mostly Monte-Carlo noise gets a large and noisy predicted dB gain
#: (per-image predictions averaged 24.18 dB for 64 chains on those images, which then scored
#: 23.68). The bar is the symmetry stage's: 0.1 dB for a doubling or more of the cost. The
#: count reached is then run once (its row also holds the prediction, ``predicted_gain_db``)
#: and becomes the family's default.
CHAIN_GAIN_DB = 0.1
MAX_CHAINS = 64


def chains_worth_running(squared_error, variance, chains: int, bar: float = CHAIN_GAIN_DB,
                         most: int = MAX_CHAINS) -> int:
    """The chain count reached from ``chains`` by doubling it while :func:`predicted_gain`
    grows by at least ``bar`` dB per doubling, at most ``most``."""
    measured = chains
    while chains * 2 <= most and (predicted_gain(squared_error, variance, measured, chains * 2)
                                  - predicted_gain(squared_error, variance, measured, chains)
                                  >= bar):
        chains *= 2
    return chains


def predicted_gain(squared_error, variance, chains: int, more: int) -> float:
    """dB gained by the PSNR of the images' summed squared error when each posterior mean
    averages ``more`` chains instead of the ``chains`` of the run that gave, per image, the
    ``squared_error`` of its mean and the chains' mean ``variance`` (as in
    ``error_with_more_chains``, applied to the sums)."""
    now = float(np.sum(squared_error))
    then = float(error_with_more_chains(now, float(np.sum(variance)), chains, more))
    return 10 * math.log10(now / then) if now > 0 and then > 0 else 0.0

"""Statistics for samplers: Welford mean/std, effective sample size, predictive intervals, and
the error a mean over more chains would have."""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import t as student_t


class RunningMoments:
    """Per-pixel running mean and variance (Welford / Chan et al. parallel update).

    ``update(samples)`` takes (N, K, ...) : K new samples (the chains) of each of N images,
    and folds them into the statistics in one numerically stable step. Memory is two tensors
    of one image batch, whatever the number of samples.
    """

    def __init__(self):
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, samples: torch.Tensor) -> None:
        k = samples.shape[1]
        batch_mean = samples.mean(dim=1)
        batch_m2 = ((samples - batch_mean.unsqueeze(1)) ** 2).sum(dim=1)
        if self.mean is None:
            self.count, self.mean, self.m2 = k, batch_mean, batch_m2
            return
        total = self.count + k
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (k / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * k / total)
        self.count = total

    @property
    def variance(self) -> torch.Tensor:
        """Unbiased sample variance (zero when there is a single sample)."""
        if self.mean is None:
            raise ValueError("no samples yet")
        return self.m2 / max(self.count - 1, 1)

    @property
    def std(self) -> torch.Tensor:
        return self.variance.sqrt()


def effective_sample_size(trace: torch.Tensor) -> torch.Tensor:
    """ESS of a scalar summary from several chains, per image.

    trace: (T, N, K) values over T kept steps, N images, K chains. Uses the multi-chain
    autocorrelation (averaged over chains, variance from the pooled within- and between-chain
    estimate as in Stan) truncated by Geyer's initial positive sequence. Returns (N,) with
    values in (0, T*K]; a constant trace gives T*K.
    """
    t, n, k = trace.shape
    trace = trace.double()
    if t < 4:
        return torch.full((n,), float(t * k), dtype=torch.float64)
    centred = trace - trace.mean(dim=0, keepdim=True)
    spectrum = torch.fft.rfft(centred, n=2 * t, dim=0)
    acov = torch.fft.irfft(spectrum * spectrum.conj(), n=2 * t, dim=0)[:t] / t  # (T, N, K)
    within = acov[0].mean(dim=1) * t / (t - 1)  # (N,)
    chain_means = trace.mean(dim=0)
    between = chain_means.var(dim=1, unbiased=True) if k > 1 else torch.zeros(n).double()
    var_plus = within * (t - 1) / t + between
    ess = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        if not var_plus[i] > 0:
            ess[i] = t * k
            continue
        rho = 1 - (within[i] - acov[:, i, :].mean(dim=1)) / var_plus[i]
        rho[0] = 1.0
        tau, lag = -1.0, 0
        while lag + 1 < t:
            pair = rho[lag] + rho[lag + 1]
            if pair <= 0:
                break
            tau += 2 * float(pair)
            lag += 2
        ess[i] = min(t * k / max(tau, 1e-12), t * k * 1.0)
    return ess


def predictive_factor(level: float, draws) -> np.ndarray:
    """Half-width, in sample stds, of the central ``level`` interval for one more draw from a
    Gaussian whose mean and (ddof 1) std were estimated from ``draws`` independent draws:
    t_{n-1} quantile x sqrt(1 + 1/n). A truth drawn from the same posterior as the n draws lies
    within mean +- factor std with probability ``level`` for any n; the Gaussian z (1.645 at
    90%) that it tends to as n grows covers only 0.835 for n = 8. ``draws``: a number or an
    array, each at least 2."""
    n = np.asarray(draws, dtype=np.float64)
    if not (0 < level < 1) or np.any(n < 2):
        raise ValueError(f"need 0 < level < 1 and at least 2 draws, got {level}, {draws}")
    return student_t.ppf(0.5 + level / 2, n - 1) * np.sqrt(1 + 1 / n)


def error_with_more_chains(squared_error, variance, chains: int, more: int):
    """Expected squared error of the mean over ``more`` chains, from one mean over ``chains``.

    For independent chains of one sampler (mean mu, per-pixel variance tr(Sigma) / pixels), the
    mean m_n over n chains has E||m_n - x||^2 = ||mu - x||^2 + tr(Sigma) / n: only the second,
    Monte-Carlo part falls with n. ``squared_error``: ||m_n - x||^2 / pixels of the run;
    ``variance``: the chains' per-pixel sample variance (ddof 1) averaged over the same pixels,
    an unbiased estimate of tr(Sigma) / pixels. The first part is estimated as their difference
    squared_error - variance / chains (at least 0). Numbers or arrays (one entry per image)."""
    if chains < 2 or more < 1:
        raise ValueError(f"need at least 2 chains to measure and 1 to predict, "
                         f"got {chains}, {more}")
    squared_error, variance = np.asarray(squared_error, float), np.asarray(variance, float)
    bias = np.maximum(squared_error - variance / chains, 0.0)
    return bias + variance / more

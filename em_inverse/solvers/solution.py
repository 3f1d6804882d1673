"""What ``solve`` returns: the estimate, its uncertainty, samples and diagnostics."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class Diagnostics:
    """How a solve went.

    steps: iterations done (MAP) or sampler steps per chain. evaluations: calls of the
    posterior energy (each one prior.value_and_grad on the whole batch of chains).
    wall_time / prior_time: seconds in total and inside prior.value_and_grad.
    acceptance: MALA acceptance rate (None for ULA/MAP/em). ess: effective sample size of the
    posterior-mean estimate (minimum over the monitored summaries), None for MAP.
    step_size: final step size (mean over chains). converged: MAP stopping rule met.
    retries: how many times the divergence guard shrank the step. capped_steps: HQS prior
    steps (per image) held to the step cap (``solvers.hqs``).
    """

    steps: int = 0
    evaluations: int = 0
    wall_time: float = 0.0
    prior_time: float = 0.0
    acceptance: float | None = None
    ess: float | None = None
    step_size: float | None = None
    converged: bool | None = None
    retries: int = 0
    capped_steps: int = 0
    message: str = ""

    @property
    def prior_share(self) -> float:
        """Fraction of the wall time spent in prior.value_and_grad."""
        return self.prior_time / self.wall_time if self.wall_time > 0 else float("nan")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["prior_share"] = self.prior_share
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}


@dataclass
class Solution:
    """Result of ``solve``. All images are (B, C, H, W) tensors in [0, 1] units (not clipped).

    estimate: MAP point (``map``) or posterior mean (``posterior``, ``em``).
    std: per-pixel posterior standard deviation (None for ``map``).
    samples: (B, S, C, H, W) posterior samples (final chain states), or None.
    energy_trace: (T, B) posterior energy U = F + w V/eps per step (for samplers: mean over
        chains), on the CPU.
    diagnostics: see ``Diagnostics``. settings: every option actually used (after defaults).
    """

    estimate: torch.Tensor
    std: torch.Tensor | None = None
    samples: torch.Tensor | None = None
    energy_trace: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 1))
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    settings: dict = field(default_factory=dict)

    @property
    def draws(self) -> float | None:
        """Independent posterior draws behind ``estimate`` and ``std``: the chains of ``anneal``
        (one end state each) and of ``em`` (a lower bound: it also averages each chain's
        correlated states after t = 1), the effective sample size of the correlated kept
        states of ``posterior`` (at least 2); None without a std (``map``, ``hqs``)."""
        if self.std is None:
            return None
        if self.settings.get("method") == "posterior":
            return max(float(self.diagnostics.ess or 0.0), 2.0)
        return float(int(self.settings.get("chains", 0)))

    def interval(self, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """Central ``level`` credible interval per pixel, (lower, upper) like ``estimate``:
        estimate -+ k std with k = ``stats.predictive_factor(level, draws)``, which a posterior
        draw falls in with probability ``level`` however few chains ran (k = 2.01 at 90% for 8
        chains, not the Gaussian 1.645)."""
        from em_inverse.solvers.stats import predictive_factor

        if self.std is None:
            raise ValueError(f"method {self.settings.get('method')!r} gives no posterior std: "
                             f"use a sampler (posterior, anneal, em)")
        if self.draws < 2:
            raise ValueError(f"one {self.settings.get('method')} chain has no spread: run at "
                             f"least 2 chains for an interval")
        half = float(predictive_factor(level, self.draws)) * self.std
        return self.estimate - half, self.estimate + half

    def summary(self) -> dict:
        """A JSON-friendly summary (settings and diagnostics, final energy)."""
        final = self.energy_trace[-1].tolist() if len(self.energy_trace) else None
        return {"settings": _jsonable(self.settings), "diagnostics": self.diagnostics.as_dict(),
                "final_energy": final, "shape": list(self.estimate.shape),
                "samples": 0 if self.samples is None else int(self.samples.shape[1]),
                "draws": self.draws}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if torch.is_tensor(value):
        return value.tolist() if value.numel() <= 16 else f"tensor{tuple(value.shape)}"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)

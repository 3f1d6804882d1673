"""Classical offline baselines (SPEC 7): Wiener/Tikhonov, TV, NLM, wavelet, biharmonic, bicubic.

Every baseline has the same signature::

    fn(y, physics, problem, truth=None) -> estimate

with ``y`` the measurement (1, C, h, w), ``physics`` the deepinv ``LinearPhysics`` that produced
it, ``problem`` a :class:`Problem` (task family, noise sigma, image shape) and ``estimate`` a
tensor (1, C, H, W) in [0, 1]. Baselines flagged ``oracle=True`` tune one parameter (Wiener
balance, TV weight) per image by maximising PSNR against ``truth`` over a fixed log grid: an
upper bound on what the method can do, which no real user has. Tables label them "(oracle)".
Everything else uses only ``y``, the operator and the known noise level. Iterative
baselines take keyword options (``iterations``, the grid) that quick mode lowers.

The baselines read the operator only through ``physics.A`` / ``physics.A_adjoint`` (and the
mask / sampling grid they reveal), so they work with any boundary convention of the operators.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from em_inverse.bench.metrics import DEFAULT_BORDER, psnr
from em_inverse.bench.tasks import FAMILIES
from em_inverse.operators.linear_solve import conjugate_gradient


@dataclass(frozen=True)
class Problem:
    """What a baseline may know: ``family`` (one of FAMILIES), the noise std ``sigma`` on the
    [0, 1] scale, the clean image shape (1, C, H, W) and the metric ``border`` (oracle tuning
    uses the same region as the reported metric)."""

    family: str
    sigma: float
    image_shape: tuple[int, int, int, int]
    border: int = DEFAULT_BORDER


@dataclass(frozen=True)
class Baseline:
    """A named baseline: which task families it applies to and whether it is oracle-tuned."""

    name: str
    families: tuple[str, ...]
    fn: Callable
    oracle: bool = False
    description: str = ""
    requires: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """False when an optional package it needs (e.g. PyWavelets) is not installed."""
        import importlib.util

        return all(importlib.util.find_spec(module) is not None for module in self.requires)

    def applies_to(self, family: str) -> bool:
        return family in self.families

    @property
    def label(self) -> str:
        return f"{self.name} (oracle)" if self.oracle else self.name


# -- helpers ---------------------------------------------------------------------------------------
def _to_numpy(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W, C) float64 array."""
    return x.detach()[0].to("cpu", torch.float64).permute(1, 2, 0).numpy()


def _from_numpy(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """(H, W, C) array -> (1, C, H, W) tensor with ``like``'s dtype and device, clipped to [0, 1]."""
    a = np.asarray(a)
    if a.ndim == 2:  # scikit-image drops a singleton channel axis
        a = a[..., None]
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)))
    return t.unsqueeze(0).to(like.device, like.dtype).clamp_(0.0, 1.0)


def _oracle_grid(candidates, make: Callable, truth: torch.Tensor | None, border: int):
    """Return ``make(c)`` for the candidate maximising PSNR against ``truth``.

    Without ``truth`` (non-oracle use) the middle of the grid is used.
    """
    candidates = list(candidates)
    if truth is None:
        return make(candidates[len(candidates) // 2])
    best, best_score = None, -math.inf
    for c in candidates:
        estimate = make(c)
        score = psnr(estimate, truth, border)
        if score > best_score:
            best, best_score = estimate, score
    return best


def known_mask(physics, image_shape) -> torch.Tensor:
    """The observed-pixel mask (1, C, H, W), 1 = observed, read off the operator as A(1)."""
    ones = torch.ones(image_shape, device=_device_of(physics))
    return (physics.A(ones) > 0.5).to(ones.dtype)


def _device_of(physics) -> torch.device:
    for t in list(physics.parameters()) + list(physics.buffers()):
        return t.device
    return torch.device("cpu")


def operator_norm(physics, image_shape, iterations: int = 30, seed: int = 0) -> float:
    """||A||^2 by power iteration on A^T A (a deterministic start)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(image_shape, generator=g).to(_device_of(physics))
    value = 1.0
    for _ in range(iterations):
        x = x / x.norm()
        x = physics.A_adjoint(physics.A(x))
        value = float(x.norm())
    return value


def _grad(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary: (B, C, H, W) -> (B, C, 2, H, W)."""
    dx = torch.zeros_like(x)
    dy = torch.zeros_like(x)
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([dy, dx], dim=2)


def _grad_adjoint(p: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_grad` (minus the divergence): (B, C, 2, H, W) -> (B, C, H, W)."""
    py, px = p[:, :, 0], p[:, :, 1]
    out = torch.zeros_like(py)
    out[..., :-1, :] -= py[..., :-1, :]
    out[..., 1:, :] += py[..., :-1, :]
    out[..., :, :-1] -= px[..., :, :-1]
    out[..., :, 1:] += px[..., :, :-1]
    return out


# -- Wiener / Tikhonov -----------------------------------------------------------------------------
WIENER_BALANCES = tuple(10.0 ** k for k in np.arange(-4.0, 0.01, 0.5))


def tikhonov(y, physics, problem: Problem, balance: float, iterations: int = 100,
             x0: torch.Tensor | None = None) -> torch.Tensor:
    """argmin_x ||A x - y||^2 + balance * ||grad x||^2 by conjugate gradients.

    With a circular blur this is exactly the Wiener filter with a Laplacian regulariser
    (``skimage.restoration.wiener``), but it respects whatever boundary the operator uses.
    """
    aty = physics.A_adjoint(y)
    x0 = aty if x0 is None else x0
    op = lambda x: physics.A_adjoint(physics.A(x)) + balance * _grad_adjoint(_grad(x))  # noqa: E731
    return conjugate_gradient(op, aty, x0, iterations).clamp(0.0, 1.0)


def wiener_oracle(y, physics, problem: Problem, truth=None, iterations: int = 100,
                  balances=WIENER_BALANCES) -> torch.Tensor:
    """Wiener/Tikhonov deconvolution with the best balance per image (log grid 1e-4..1)."""
    return _oracle_grid(balances, lambda b: tikhonov(y, physics, problem, b, iterations), truth,
                        problem.border)


# -- Total variation --------------------------------------------------------------------------------
TV_WEIGHTS_DENOISE = tuple(10.0 ** k for k in np.arange(-2.0, 0.01, 0.125))
TV_WEIGHTS_INVERSE = tuple(10.0 ** k for k in np.arange(-4.0, -1.49, 0.5))


def tv_chambolle_oracle(y, physics, problem: Problem, truth=None,
                        weights=TV_WEIGHTS_DENOISE) -> torch.Tensor:
    """Chambolle's TV denoising (scikit-image) with the best weight per image (log grid)."""
    from skimage.restoration import denoise_tv_chambolle

    image = _to_numpy(y)

    def make(weight):
        out = denoise_tv_chambolle(image, weight=weight, channel_axis=-1)
        return _from_numpy(out, y)

    return _oracle_grid(weights, make, truth, problem.border)


def tv_solve(y, physics, problem: Problem, weight: float, iterations: int = 300,
             x0: torch.Tensor | None = None, lipschitz: float | None = None) -> torch.Tensor:
    """argmin_{x in [0,1]} ||A x - y||^2 / 2 + weight * TV(x), isotropic TV, by Condat-Vu.

    Primal-dual splitting: a gradient step on the data term, a projection on [0, 1], and a
    dual ascent on grad x projected on the ball of radius ``weight``. Step sizes
    tau = 0.99 / L and sigma = 1 / (16 tau) satisfy 1/tau - sigma ||grad||^2 >= L / 2.
    """
    if lipschitz is None:
        lipschitz = operator_norm(physics, problem.image_shape)
    tau = 0.99 / max(lipschitz, 1e-6)
    sigma = 1.0 / (16.0 * tau)
    x = physics.A_adjoint(y).clamp(0, 1) if x0 is None else x0.clone()
    p = torch.zeros_like(_grad(x))
    for _ in range(iterations):
        x_new = (x - tau * (physics.A_adjoint(physics.A(x) - y) + _grad_adjoint(p))).clamp(0, 1)
        p = p + sigma * _grad(2 * x_new - x)
        norm = p.pow(2).sum(dim=2, keepdim=True).sqrt()
        p = p / torch.clamp(norm / weight, min=1.0)
        x = x_new
    return x


def tv_oracle(y, physics, problem: Problem, truth=None, iterations: int = 200,
              weights=TV_WEIGHTS_INVERSE) -> torch.Tensor:
    """TV-regularised reconstruction (inpainting, deblurring, super-resolution) with the best
    weight per image over a log grid, each solve warm-started from the previous weight's."""
    lipschitz = operator_norm(physics, problem.image_shape)
    start = initial_guess(y, physics, problem)
    state = {"x": start}

    def make(weight):  # the grid runs from strong to weak regularisation: warm starts help
        state["x"] = tv_solve(y, physics, problem, weight, iterations, state["x"], lipschitz)
        return state["x"]

    return _oracle_grid(sorted(weights, reverse=True), make, truth, problem.border)


def initial_guess(y, physics, problem: Problem) -> torch.Tensor:
    """A back-projection to start iterative methods: biharmonic fill (inpainting), bicubic
    (super-resolution), else A^T y clipped to [0, 1]."""
    if problem.family == "inpaint":
        return biharmonic(y, physics, problem)
    if problem.family == "superres":
        return bicubic(y, physics, problem)
    return physics.A_adjoint(y).clamp(0, 1)


# -- denoisers with known sigma --------------------------------------------------------------------
def nlm(y, physics, problem: Problem, truth=None) -> torch.Tensor:
    """Non-local means (scikit-image, fast mode, 5x5 patches, 13x13 search, h = 0.8 sigma)."""
    from skimage.restoration import denoise_nl_means

    out = denoise_nl_means(_to_numpy(y), h=0.8 * problem.sigma, sigma=problem.sigma,
                           patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1)
    return _from_numpy(out, y)


def wavelet(y, physics, problem: Problem, truth=None) -> torch.Tensor:
    """Wavelet shrinkage (scikit-image BayesShrink, soft threshold, db1; YCbCr for colour)."""
    from skimage.restoration import denoise_wavelet

    image = _to_numpy(y)
    colour = image.shape[-1] == 3
    out = denoise_wavelet(image, sigma=problem.sigma, method="BayesShrink", mode="soft",
                          channel_axis=-1, convert2ycbcr=colour, rescale_sigma=True)
    return _from_numpy(out, y)


# -- inpainting and super-resolution ---------------------------------------------------------------
def biharmonic(y, physics, problem: Problem, truth=None) -> torch.Tensor:
    """Biharmonic inpainting of the unobserved pixels (``skimage.restoration.inpaint_biharmonic``)."""
    from skimage.restoration import inpaint_biharmonic

    known = known_mask(physics, problem.image_shape)
    # every channel shares one mask in our operators; a pixel is missing if any channel is
    missing = (known < 0.5).any(dim=1)[0].cpu().numpy()
    image = _to_numpy(y)
    if not missing.any():
        return _from_numpy(image, y)
    out = inpaint_biharmonic(image, missing, channel_axis=-1)
    return _from_numpy(out, y)


def sampling_grid(physics, image_shape) -> tuple[float, float, float, float]:
    """Where the operator samples: low-res pixel k sits at high-res coordinate ``offset + step*k``.

    Found by applying A to coordinate ramps (a normalised linear filter maps a ramp to the
    filter's centre of mass), so the answer holds whatever filter/padding the operator uses.
    Returns (offset_y, step_y, offset_x, step_x) measured in the image interior.
    """
    _, c, h, w = image_shape
    dev = _device_of(physics)
    rows = torch.arange(h, dtype=torch.float32, device=dev).view(1, 1, h, 1).expand(1, c, h, w)
    cols = torch.arange(w, dtype=torch.float32, device=dev).view(1, 1, 1, w).expand(1, c, h, w)
    ones = torch.ones(1, c, h, w, device=dev)
    norm = physics.A(ones)
    ry = (physics.A(rows.contiguous()) / norm)[0, 0, :, norm.shape[-1] // 2]
    rx = (physics.A(cols.contiguous()) / norm)[0, 0, norm.shape[-2] // 2, :]

    def fit(r: torch.Tensor):
        n = r.numel()
        k0, k1 = n // 4, max(n // 4 + 1, 3 * n // 4)  # interior samples, away from the boundary
        step = float(r[k1] - r[k0]) / (k1 - k0)
        return float(r[k0]) - step * k0, step

    oy, sy = fit(ry)
    ox, sx = fit(rx)
    return oy, sy, ox, sx


def bicubic(y, physics, problem: Problem, truth=None) -> torch.Tensor:
    """Bicubic interpolation of y back to the image grid, aligned with the operator's sampling
    positions (see :func:`sampling_grid`); borders replicate the outermost samples."""
    _, c, h, w = problem.image_shape
    oy, sy, ox, sx = sampling_grid(physics, problem.image_shape)
    hy, wy = y.shape[-2:]
    # high-res pixel i sits at low-res coordinate (i - offset) / step; grid_sample wants [-1, 1]
    # in align_corners=True convention: u -> 2 u / (n - 1) - 1
    gy = (torch.arange(h, dtype=y.dtype, device=y.device) - oy) / sy
    gx = (torch.arange(w, dtype=y.dtype, device=y.device) - ox) / sx
    gy = 2 * gy / max(hy - 1, 1) - 1
    gx = 2 * gx / max(wy - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)
    out = F.grid_sample(y, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out.clamp(0.0, 1.0)


# -- the registry ----------------------------------------------------------------------------------
BASELINES: tuple[Baseline, ...] = (
    Baseline("wiener", ("deblur",), wiener_oracle, oracle=True,
             description="Wiener/Tikhonov (Laplacian regulariser), best balance per image"),
    Baseline("tv", ("denoise",), tv_chambolle_oracle, oracle=True,
             description="TV denoising (Chambolle, scikit-image), best weight per image"),
    Baseline("tv", ("inpaint", "deblur", "superres"), tv_oracle, oracle=True,
             description="TV-regularised least squares (Condat-Vu), best weight per image"),
    Baseline("nlm", ("denoise",), nlm, description="non-local means, sigma known"),
    Baseline("wavelet", ("denoise",), wavelet, description="BayesShrink wavelets, sigma known",
             requires=("pywt",)),
    Baseline("biharmonic", ("inpaint",), biharmonic, description="biharmonic inpainting"),
    Baseline("bicubic", ("superres",), bicubic, description="bicubic upsampling"),
)


def baselines_for(family: str) -> list[Baseline]:
    """The baselines that apply to a task family, in table order."""
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; known: {FAMILIES}")
    return [b for b in BASELINES if b.applies_to(family)]

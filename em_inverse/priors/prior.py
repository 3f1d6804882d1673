"""``EnergyPrior``: an energy network plus everything needed to use it as p(x) ∝ exp(-V(x)/eps).

Callers always pass images (B, C, H, W) in [0, 1] (or vectors (B, D) for toy priors); the prior
maps them to the net's internal scale ``x_int = scale * x + offset`` itself, so gradients are
returned in caller units. It is a ``deepinv.optim.Prior`` whose ``fn`` is the negative log-prior
V(x)/eps (up to a constant) and whose ``grad`` avoids deepinv's ``create_graph=True`` cost.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from deepinv.optim import Prior
from torch import nn

from em_inverse.priors import tiling
from em_inverse.priors.nets import count_parameters, place_conv_weights
from em_inverse.priors.symmetry import SymmetrizedEnergy, orbit


@contextlib.contextmanager
def _deterministic_cudnn(active: bool) -> Iterator[None]:
    """While active, cuDNN runs deterministic algorithms only: its default heuristics may pick
    backward kernels that accumulate with atomics, and then a seeded sampler on CUDA would not
    repeat itself bit for bit."""
    if not active:
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


class EnergyPrior(Prior):
    """A learned energy V with its metadata (the model card travels with the weights).

    Args:
        net: energy network on the internal scale, (B, ...) -> (B,).
        eps: temperature; the prior density is exp(-V(x)/eps). Stored in the prior's config,
            calibrated on training or validation images for the bundled priors.
        scale, offset: internal = scale * x + offset (images in [0, 1] -> [-1, 1] by default).
        data: description of the data, e.g. ``{"kind": "image", "channels": 1,
            "image_size": None}`` or ``{"kind": "vector", "dim": 2}``.
        name: short name (``natural-gray``...). card: free-form model card (dict).
        training: the recipe the prior was trained with (dict).
        solve_defaults: per-task default method and per-method settings, e.g.
            ``{"denoise": {"method": "hqs", "hqs": {"steps": 1}, "map": {"prior_weight": 2.0}}}``,
            chosen on training/validation images (never test images).

    The net's convolution weights are kept in the layout that is fastest on their device
    (``nets.place_conv_weights``: channels_last on the CPU), here and after every ``.to``.
    """

    def __init__(self, net: nn.Module, *, eps: float = 1.0, scale: float = 2.0,
                 offset: float = -1.0, data: dict | None = None, name: str = "",
                 card: dict | None = None, training: dict | None = None,
                 solve_defaults: dict | None = None):
        super().__init__()
        self.explicit_prior = True
        self.net = place_conv_weights(net)
        self.eps = float(eps)
        self.scale = float(scale)
        self.offset = float(offset)
        self.data = dict(data or {"kind": "image", "channels": 1, "image_size": None})
        self.name = name
        self.card = dict(card or {})
        self.training = dict(training or {})
        self.solve_defaults = dict(solve_defaults or {})

    def _apply(self, fn, recurse: bool = True):
        """nn.Module's hook under ``.to``, ``.cuda``, ``.cpu``, ``.float``...: after the move,
        the convolution weights take the layout that is fastest on their new device."""
        super()._apply(fn, recurse)
        place_conv_weights(self.net)
        return self

    # -- metadata -----------------------------------------------------------------------------
    @property
    def channels(self) -> int | None:
        return self.data.get("channels")

    @property
    def image_size(self) -> tuple[int, int] | None:
        size = self.data.get("image_size")
        return tuple(size) if size else None

    @property
    def denoising_levels(self) -> tuple[float, float] | None:
        """(lowest, highest) noise std, in the [0, 1] units of images, at which the
        denoising-score term trained grad V: where y - s^2 grad V(y)/eps is Tweedie's denoiser.
        None for a prior trained without that term. A net that sees the image's noise reduced
        (``OpponentEnergy``: by sqrt(3) on each opponent channel) serves that much higher."""
        recipe = self.training
        if not recipe.get("dsm_weight"):
            return None
        gain = getattr(self.net, "NOISE_GAIN", 1.0) / self.scale
        return (recipe["dsm_sigma_min"] * gain, recipe["dsm_sigma_max"] * gain)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.net)

    def frozen(self) -> "EnergyPrior":
        """Inference mode: eval, parameters without grad (grad V only builds the graph in x)."""
        self.net.eval()
        self.net.requires_grad_(False)
        return self

    def copy_with(self, **changes) -> "EnergyPrior":
        """A shallow copy sharing the net, with some metadata changed (e.g. ``eps``)."""
        other = copy.copy(self)
        other._modules = dict(self._modules)  # a new ``net`` must not replace this prior's
        for key, value in changes.items():
            setattr(other, key, value)
        return other

    def symmetrized(self, group: str) -> "EnergyPrior":
        """This prior with V averaged over a symmetry group of the image (``none``, ``flips``
        or ``dihedral``, see ``em_inverse.priors.symmetry``): exactly invariant, |G| times the
        cost. ``none`` returns the prior itself. Raises ``ValueError`` for vector priors and
        for ``dihedral`` on a fixed, non-square image size."""
        if group == "none":
            return self
        if self.data.get("kind") == "vector":
            raise ValueError(f"prior {self.name!r} works on vectors: image symmetries do not apply")
        size = self.image_size
        if group == "dihedral" and size and size[0] != size[1]:
            raise ValueError(f"prior {self.name!r} takes {size[0]}x{size[1]} images only: the "
                             f"dihedral group needs square images (use 'flips')")
        return self.copy_with(net=SymmetrizedEnergy(self.net, group))

    # -- scaling ------------------------------------------------------------------------------
    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def from_internal(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.offset) / self.scale

    # -- energies -----------------------------------------------------------------------------
    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """V(x), shape (B,), for x in caller units."""
        return self.net(self.to_internal(x))

    def energy_and_grad(self, x: torch.Tensor, create_graph: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(V(x) of shape (B,), grad_x V(x) of x's shape), from one forward and one backward
        (a symmetrised V: one per batch of its orbit, so memory does not grow with |G|; a
        batch of more than ``tiling.max_values`` values: tile by tile, image by image)."""
        if (not create_graph and x.numel() > tiling.max_values(x.device)
                and tiling.can_tile(self._pixel_net)):
            return self._tiled_energy_and_grad(x)
        if isinstance(self.net, SymmetrizedEnergy) and not create_graph:
            with _deterministic_cudnn(x.is_cuda):
                v, g = self.net.energy_and_grad(self.to_internal(x.detach()))
            return v, g * self.scale  # d x_int / d x = scale
        with torch.enable_grad(), _deterministic_cudnn(x.is_cuda):
            x_ = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
            v = self.energy(x_)
            (g,) = torch.autograd.grad(v.sum(), x_, create_graph=create_graph)
        if not create_graph:
            v = v.detach()
        return v, g

    @property
    def _pixel_net(self) -> nn.Module:
        """The net whose per-pixel energies V sums (under the symmetry average, if any)."""
        return self.net.net if isinstance(self.net, SymmetrizedEnergy) else self.net

    def _tiled_energy_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``energy_and_grad`` in bounded memory (``priors.tiling``): every image of the
        symmetry orbit (just x without one) tile by tile, their gradients mapped back to x
        through the flips and transposes by autograd."""
        group = self.net.group if isinstance(self.net, SymmetrizedEnergy) else "none"
        z = self.to_internal(x.detach()).requires_grad_(True)
        with torch.enable_grad():
            images = orbit(z, group)
        energies, grads = [], []
        with _deterministic_cudnn(x.is_cuda):
            for image in images:
                v, g = tiling.tiled_energy_and_grad(self._pixel_net, image.detach())
                energies.append(v)
                grads.append(g)
        (grad,) = torch.autograd.grad(images, z, grad_outputs=grads)
        return sum(energies) / len(images), grad * (self.scale / len(images))

    def fn(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """Negative log-prior V(x)/eps (up to a constant), shape (B,)."""
        return self.energy(x) / self.eps

    def grad(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """grad_x V(x)/eps, without keeping a graph (overrides deepinv's create_graph=True)."""
        return self.energy_and_grad(x)[1] / self.eps

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V(x)/eps, grad V(x)/eps): what solvers need, from one forward+backward pass."""
        v, g = self.energy_and_grad(x)
        return v / self.eps, g / self.eps

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` with a clear message if x does not fit this prior."""
        if self.data.get("kind") == "vector":
            if x.ndim != 2 or x.shape[1] != self.data["dim"]:
                raise ValueError(f"prior {self.name!r} expects vectors (B, {self.data['dim']}), "
                                 f"got shape {tuple(x.shape)}")
            return
        if x.ndim != 4 or x.shape[1] != self.channels:
            hint = {1: ": a gray image needs a gray prior (bundled: natural-gray)",
                    3: ": a colour image needs a colour prior (bundled: natural-rgb)"}
            raise ValueError(f"prior {self.name!r} expects images (B, {self.channels}, H, W), "
                             f"got shape {tuple(x.shape)}"
                             f"{hint.get(x.shape[1], '') if x.ndim == 4 else ''}")
        if self.image_size and tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"prior {self.name!r} expects {self.image_size[0]}x"
                             f"{self.image_size[1]} images, got {x.shape[-2]}x{x.shape[-1]}")

    def __repr__(self) -> str:
        return (f"EnergyPrior(name={self.name!r}, net={type(self.net).__name__}, "
                f"params={self.num_parameters}, eps={self.eps:g}, data={self.data})")

"""Energy networks: ``x -> V(x)`` of shape (B,), all with SiLU activations so grad V is smooth.

Every net takes inputs on the prior's *internal* scale (e.g. [-1, 1] images) and returns one
scalar energy per batch element. ``build_net(config)`` rebuilds a net from its JSON config.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPEnergy(nn.Module):
    """Energy of vectors: (B, dim) -> (B,). For 2-D toy data, tests and the tutorial."""

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3):
        super().__init__()
        self.config = {"type": "MLPEnergy", "dim": dim, "width": width, "depth": depth}
        layers: list[nn.Module] = []
        size = dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.SiLU()]
            size = width
        layers.append(nn.Linear(size, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


def replicate_pad(h: torch.Tensor) -> torch.Tensor:
    """Pad (..., H, W) by one pixel on each side, repeating the edge pixels: (..., H+2, W+2).

    The values are ``F.pad(h, (1, 1, 1, 1), mode="replicate")``'s; on CUDA the backward is
    :func:`fold_edges` instead of PyTorch's, which accumulates with atomics, so that grad V,
    and every seeded sampler built on it, repeats itself bit for bit there too."""
    if h.is_cuda:
        return _ReplicatePad.apply(h)
    return F.pad(h, (1, 1, 1, 1), mode="replicate")


def fold_edges(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of one-pixel replicate padding, (..., H+2, W+2) -> (..., H, W): each padded row
    and column is added onto the edge it repeats, in a fixed order (no atomics)."""
    rows = g[..., 1:-1, :].clone()
    rows[..., 0, :] += g[..., 0, :]
    rows[..., -1, :] += g[..., -1, :]
    out = rows[..., 1:-1].clone()
    out[..., 0] += rows[..., 0]
    out[..., -1] += rows[..., -1]
    return out


class _ReplicatePad(torch.autograd.Function):
    """Replicate padding whose backward is :func:`fold_edges` (itself differentiable, so the
    training losses on grad V can backpropagate through it)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        return F.pad(h, (1, 1, 1, 1), mode="replicate")

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return fold_edges(g)


class _ReplicateConv3x3(nn.Conv2d):
    """3x3 convolution of the edge-replicated input (``padding_mode="replicate"``, the same
    parameters), with the padding of :func:`replicate_pad`."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, 3, stride=stride, padding=0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.conv2d(replicate_pad(h), self.weight, self.bias, self.stride)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return _ReplicateConv3x3(c_in, c_out, stride)


class _Block(nn.Module):
    """Two 3x3 convolutions with SiLU and a residual connection."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = _conv(width, width)
        self.conv2 = _conv(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv2(F.silu(self.conv1(F.silu(h))))


#: ConvEnergy's per-pixel read-outs (its ``head`` option).
CONV_HEADS = ("linear", "residual")


class ConvEnergy(nn.Module):
    """Fully convolutional energy: V(x) = sum over pixels of a per-pixel energy e(x).

    A small U-Net-like body (``levels`` resolutions, width doubling per level, average-pool down,
    nearest up, additive skips) gives a receptive field of tens of pixels at low cost, and the
    same weights work on any image size. Input (B, C, H, W) -> output (B,).

    ``head`` reads the per-pixel energy off the body's features f:
    - ``"linear"``: e = a . f + b, one number per pixel (the bundled priors);
    - ``"residual"``: e = alpha/2 ||x - N(x)||^2 over the channels, with N(x) a C-channel
      read-out of f and alpha > 0 learned (log-parametrised, 1 at the start). Then grad V =
      alpha (I - J_N)^T (x - N(x)) holds the body's forward output x - N(x) itself, as a score
      network's field does, and V stays one explicit energy (the gradient-step denoisers of
      Hurault et al. 2022; the ``E = ||x - f(x)||^2 / 2`` energies of Salimans and Ho 2021).
      Same convolutions and cost; one parameter more.
    """

    def __init__(self, channels: int = 1, width: int = 32, levels: int = 3, blocks: int = 1,
                 head: str = "linear"):
        super().__init__()
        if head not in CONV_HEADS:
            raise ValueError(f"unknown ConvEnergy head {head!r}: use one of {CONV_HEADS}")
        self.config = {"type": "ConvEnergy", "channels": channels, "width": width,
                       "levels": levels, "blocks": blocks}
        if head != "linear":  # configs of linear-head nets stay as they were
            self.config["head"] = head
        self.residual = head == "residual"
        widths = [width * 2**k for k in range(levels)]
        self.stem = _conv(channels, width)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        for k, w in enumerate(widths):
            self.down.append(nn.Identity() if k == 0 else nn.Conv2d(widths[k - 1], w, 1))
            self.enc.append(nn.Sequential(*[_Block(w) for _ in range(blocks)]))
        self.up = nn.ModuleList(nn.Conv2d(widths[k + 1], widths[k], 1) for k in range(levels - 1))
        self.dec = nn.ModuleList(_Block(widths[k]) for k in range(levels - 1))
        self.head = nn.Conv2d(width, channels if self.residual else 1, 1)
        if self.residual:
            self.log_alpha = nn.Parameter(torch.zeros(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The body's features at full resolution, (B, C, H, W) -> (B, width, H, W)."""
        h = self.stem(x)
        skips = []
        for k, (down, enc) in enumerate(zip(self.down, self.enc)):
            if k > 0:
                h = down(F.avg_pool2d(h, 2, ceil_mode=True))
            h = enc(h)
            skips.append(h)
        for k in reversed(range(len(self.dec))):
            skip = skips[k]
            h = skip + self.up[k](F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
            h = self.dec[k](h)
        return h

    def pixel_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel energies (B, 1, H, W) whose sum is V(x)."""
        out = self.head(F.silu(self.features(x)))
        if self.residual:
            return 0.5 * self.log_alpha.exp() * (x - out).square().sum(1, keepdim=True)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_energy(x).flatten(1).sum(1)

    @property
    def receptive_radius(self) -> int:
        """How far (px) an input pixel reaches: the per-pixel energy at q depends on inputs
        within this many pixels of q, summed along the deepest path (stem, each level's pooling
        and blocks down, each upsampling and block back up; 41 for 3 levels of 2 blocks). An
        upper bound (``tests/test_tiling.py`` measures the reach); tiles with this much context
        give the exact grad V (``priors.tiling``)."""
        levels, blocks = self.config["levels"], self.config["blocks"]
        down = 1 + 2 * blocks + sum(2**(k - 1) + 2 * blocks * 2**k for k in range(1, levels))
        up = sum(2**k + 2 * 2**k for k in range(levels - 1))
        return down + up

    @property
    def pixel_alignment(self) -> int:
        """Crops that start at multiples of this many pixels see the same pooling grid."""
        return 2 ** (self.config["levels"] - 1)


class GlobalEnergy(nn.Module):
    """Fixed-size images to one scalar, for whole-image priors such as Fashion-MNIST 28x28.

    ``body="strided"``: a strided conv body and an MLP head on its flattened features.
    ``body="unet"``: a ``ConvEnergy`` U-Net (``levels`` resolutions; at 28x28 and 3 levels its
    receptive field covers the image) whose per-pixel energy map e (B, 1, H, W) is both summed
    and fed to an MLP: V = sum(e) + MLP(e). The summed part keeps the U-Net's good gradient
    (a denoiser-quality score); the MLP adds interactions between distant regions. Input
    (B, C, H, W) with (H, W) == ``image_size`` -> output (B,).
    """

    def __init__(self, channels: int = 1, image_size: tuple[int, int] | list[int] = (28, 28),
                 width: int = 32, hidden: int = 256, body: str = "strided", levels: int = 3):
        super().__init__()
        image_size = tuple(int(s) for s in image_size)
        self.config = {"type": "GlobalEnergy", "channels": channels, "image_size": list(image_size),
                       "width": width, "hidden": hidden}
        if body != "strided":
            self.config.update(body=body, levels=levels)
        self.image_size = image_size
        if body == "unet":
            self.body = ConvEnergy(channels, width, levels)
            flat = image_size[0] * image_size[1]
        elif body == "strided":
            self.body = nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1), nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
                nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.SiLU(),
            )
            with torch.no_grad():
                flat = self.body(torch.zeros(1, channels, *image_size)).numel()
        else:
            raise ValueError(f"unknown GlobalEnergy body {body!r}: use 'strided' or 'unet'")
        self.unet = body == "unet"
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"GlobalEnergy expects images of size {self.image_size}, "
                             f"got {tuple(x.shape[-2:])}")
        if self.unet:
            e = self.body.pixel_energy(x).flatten(1)
            return e.sum(1) + self.head(e).squeeze(-1)
        return self.head(self.body(x).flatten(1)).squeeze(-1)


class OpponentEnergy(nn.Module):
    """Colour energy from a one-channel one: V(x) = sum over c of V_1(u_c), u = T x.

    T is the opponent colour transform, scaled so that T T^T = I / 3 (rows: luminance
    (r + g + b) / 3, red-blue (r - b) / sqrt(6), green-magenta (r - 2 g + b) / sqrt(18)). On the
    priors' internal scale (2 x - 1 for images x in [0, 1]) a gray pixel maps to luminance 2 x - 1
    and to zero chroma, i.e. chroma sits at mid-gray for ``channel_energy``. Because T is
    orthogonal up to scale, white Gaussian noise of std sigma on x is white noise of std
    sigma / sqrt(3) on every u_c, and every operator that acts on the channels alike (one mask,
    one kernel) keeps the problem split into three gray ones: this is how a gray prior denoises
    colour images at a third of the noise variance in luminance and with smooth chroma, the
    luminance/chrominance split of colour BM3D. Input (B, 3, H, W) -> output (B,).

    ``chroma_weight`` w multiplies the two chroma terms: V(x) = V_1(u_0) + w (V_1(u_1) + V_1(u_2)).
    Chroma images are smoother than the luminance the gray energy learned; w > 1 asks for
    smoother chroma than that (the default 1 is the plain sum).
    """

    #: White noise of std s on the image is noise of std s / NOISE_GAIN on each channel net input.
    NOISE_GAIN = 3**0.5

    def __init__(self, channel_energy: dict, channels: int = 3, chroma_weight: float = 1.0):
        super().__init__()
        if channels != 3:
            raise ValueError(f"OpponentEnergy takes 3-channel images, not {channels}")
        if not (isinstance(chroma_weight, (int, float)) and chroma_weight > 0):
            raise ValueError(f"chroma_weight must be a positive number, got {chroma_weight!r}")
        self.channel_net = build_net(channel_energy)
        if self.channel_net.config.get("channels") != 1:
            raise ValueError("OpponentEnergy needs a one-channel channel_energy")
        self.config = {"type": "OpponentEnergy", "channels": 3,
                       "channel_energy": self.channel_net.config}
        if chroma_weight != 1.0:
            self.config["chroma_weight"] = float(chroma_weight)
        self.register_buffer("channel_weights", torch.tensor([1.0, chroma_weight, chroma_weight]),
                             persistent=False)
        rows = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]])
        transform = rows / rows.norm(dim=1, keepdim=True) / 3**0.5
        self.register_buffer("transform", transform, persistent=False)

    def opponent_channels(self, x: torch.Tensor) -> torch.Tensor:
        """u = T x as one-channel images: (B, 3, H, W) -> (B * 3, 1, H, W)."""
        u = torch.einsum("ij,bjhw->bihw", self.transform.to(x.dtype), x)
        return u.reshape(-1, 1, *u.shape[-2:])

    def channel_images(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """V(x) as a weighted sum of one-channel energies: (u, w) with u = ``opponent_channels``
        (x) of shape (B * 3, 1, H, W) and w of shape (3,), so that V(x)_b = sum_c w_c
        ``channel_net``(u)_{3 b + c}. ``priors.tiling`` tiles each u_c as a gray image."""
        return self.opponent_channels(x), self.channel_weights.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energies = self.channel_net(self.opponent_channels(x)).view(-1, 3)
        return (energies * self.channel_weights.to(energies.dtype)).sum(1)

    def pixel_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel energies (B, 1, H, W), summed over the three opponent channels (chroma
        weighted by ``chroma_weight``)."""
        energies = self.channel_net.pixel_energy(self.opponent_channels(x))
        weights = self.channel_weights.to(energies.dtype).view(1, 3, 1, 1)
        return (energies.view(-1, 3, *x.shape[-2:]) * weights).sum(1, keepdim=True)

    @property
    def receptive_radius(self) -> int:
        return self.channel_net.receptive_radius  # T mixes the channels of one pixel only

    @property
    def pixel_alignment(self) -> int:
        return self.channel_net.pixel_alignment


ARCHITECTURES = {cls.__name__: cls for cls in (MLPEnergy, ConvEnergy, GlobalEnergy,
                                               OpponentEnergy)}


def build_net(config: dict) -> nn.Module:
    """Rebuild a net from its ``config`` dict (``{"type": name, **kwargs}``)."""
    kwargs = dict(config)
    kind = kwargs.pop("type", None)
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {kind!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[kind](**kwargs)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def fastest_conv_layout(device: torch.device) -> torch.memory_format:
    """The memory layout in which these nets' convolutions compute grad V fastest on ``device``.

    On the CPU, channels_last (NHWC): oneDNN otherwise reorders every NCHW activation to and from
    its own layout around each convolution. Without that, grad V of the bundled priors ran
    1.15-1.93x (two runs) and default gray solves of a 256-px crop 1.20-1.68x as fast on a
    2-core Intel Xeon (``python benchmarks/conv_layout_check.py``). Only priors take it: training nets keep
    PyTorch's default, in which the committed recipes ran and their checkpoints resume bit for
    bit. On other devices the default contiguous (NCHW) layout, which the CUDA tests check.
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def place_conv_weights(net: nn.Module) -> nn.Module:
    """Store ``net``'s convolution (4-D) weights in ``fastest_conv_layout`` of their device, in
    place, and return ``net``. Values do not change; PyTorch computes a convolution in its
    weight's layout, so activations and grad V follow (grad V comes back in the input's layout:
    a one-channel image is the same array either way)."""
    parameter = next(net.parameters(), None)
    if parameter is None:
        return net
    return net.to(memory_format=fastest_conv_layout(parameter.device))

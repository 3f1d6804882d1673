"""grad V of large images tile by tile: exact, in memory that does not grow with the image.

A fully convolutional energy is a sum of per-pixel terms, V(x) = sum_q e_q(x), and e_q depends
only on the pixels within the net's receptive radius r of q (``ConvEnergy.receptive_radius``).
So each pixel q is given to exactly one tile T, and a tile's part of V, sum over q in T of e_q,
is computed on the crop T + r (its context, cut down to the image): every e_q it sums sees all
of its inputs there, and the crop's own edges (padding, partial pooling windows) lie at least r
away, so they change nothing. Its backward gives that part's gradient on the crop, and the
crops' gradients add up to grad V of the whole image. Crops start at multiples of the net's
pooling alignment, so their pooling grids are the image's. The sums run in another order than
on the whole image: equal to float rounding.

Autograd keeps every activation for the backward: grad V of a 1024x1024 image in one pass
peaked at 1985 MiB with the bundled gray prior and 6932 MiB with the colour one, whose three
opponent channels run as three images (``benchmarks/results/speed`` at commit 9e87616), so a
12-megapixel colour photo would need some 80 GB in one pass. ``EnergyPrior`` takes batches of
more than ``max_values(device)`` values tile by tile, one image at a time, and the colour prior
one opponent channel at a time (``channel_by_channel``): the memory is then a gray crop's,
whatever the image's size, for at most (1 + 2 x 44 / 512)^2 = 1.37 times the
arithmetic of one pass with the bundled nets (the crops' overlapping context: 41 px, and up to
3 more to start on the pooling grid). On the CPU under glibc's default policy, which hands
freed memory back to the system, the tiles also pay for that above 2^19 values: on a 2-core
Xeon grad V of a 1024x1024 gray image took 1.7 s in tiles against 2.2 in one pass, of 2048x2048
gray 8.1 s (``python benchmarks/tiling_threshold_check.py`` and ``python
benchmarks/tiling_check.py``). With freed memory kept for reuse (the command line,
``em_inverse.cpu_memory``) one pass is as fast or faster, and the CPU tiles above 3 x 2^18
values (a 512x512 colour image) to bound the memory.
"""
from __future__ import annotations

import torch

from em_inverse.cpu_memory import freed_memory_kept

#: On a GPU, batches with more values (B x C x H x W) than this go tile by tile: above a
#: 1448x1448 gray image (about 4 GB of activations at the one-pass rate above, 1985 MiB per
#: 1024x1024 gray image) or an 836x836 colour one.
MAX_VALUES = 2**21
#: On the CPU, from a quarter of that, where glibc hands freed memory back to the system (its
#: default): above a 724x724 gray image, a 418x418 colour one or 8 chains of 256x256 gray
#: images (which still run in one pass). The time per pixel of one pass grows with the batch
#: (as ``SymmetrizedEnergy.BATCH_ELEMENTS`` found for a symmetry's orbit), while tiles go image
#: by image with a 512-px working set: above this the tiles are faster on average, below it
#: neither wins consistently (``python benchmarks/tiling_threshold_check.py``; the numbers are
#: in ``benchmarks/experiments.md``, "Tiling on the CPU").
CPU_MAX_VALUES = 2**19
#: On the CPU with freed memory kept for reuse (``em_inverse.cpu_memory``; the command line's
#: policy), one pass is faster than the tiles up to a 768x768 gray image or 32 chains of
#: 128x128 (1.2-1.3x) and about as fast above, up to 1.8M values: most of what one pass lost
#: was page faults, not caches (``python benchmarks/tiling_threshold_check.py
#: --keep-freed-memory``; experiments.md, "Keeping freed memory on the CPU"). So one pass takes
#: up to a 512x512 colour image (887x887 gray), and larger batches go to the tiles, which bound
#: the memory: a 1024x1024 gray image in one pass peaks near 3 GiB (``em-inverse bench speed``
#: run at commit f02f723), at the tiles' speed.
CPU_KEPT_MAX_VALUES = 3 * 2**18
#: Side of the tiles (px), before their context is added.
TILE = 512


def max_values(device: torch.device) -> int:
    """The most values (B x C x H x W) a batch on ``device`` takes in one pass."""
    if device.type != "cpu":
        return MAX_VALUES
    return CPU_KEPT_MAX_VALUES if freed_memory_kept() else CPU_MAX_VALUES


def can_tile(net: torch.nn.Module) -> bool:
    """Whether ``net`` is a sum of per-pixel energies with a known receptive radius."""
    return hasattr(net, "pixel_energy") and hasattr(net, "receptive_radius")


def tile_spans(size: int, tile: int, context: int, alignment: int
               ) -> list[tuple[int, int, int, int]]:
    """Along one axis of ``size`` px: (tile start, tile end, crop start, crop end) per tile;
    each crop is its tile plus ``context`` px on each side, started at a multiple of
    ``alignment`` and cut to the image."""
    spans = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        crop_start = max(0, start - context) // alignment * alignment
        spans.append((start, end, crop_start, min(size, end + context)))
    return spans


def tiled_energy_and_grad(net: torch.nn.Module, x: torch.Tensor, tile: int = TILE
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(V(x) of shape (B,), grad_x V(x) of x's shape) for a net with ``pixel_energy``,
    ``receptive_radius`` and ``pixel_alignment``, one image and one tile at a time. x is
    (B, C, H, W) on the net's internal scale; no graph is kept. A net that sums a one-channel
    energy over linear images of x (``channel_images``, as ``OpponentEnergy`` does) goes one
    such image at a time (``channel_by_channel``)."""
    if hasattr(net, "channel_images"):
        return channel_by_channel(net, x, tile)
    context, alignment = net.receptive_radius, net.pixel_alignment
    rows = tile_spans(x.shape[-2], tile, context, alignment)
    cols = tile_spans(x.shape[-1], tile, context, alignment)
    energy = x.new_zeros(x.shape[0])
    grad = torch.zeros_like(x)
    for b in range(x.shape[0]):
        for top, bottom, crop_top, crop_bottom in rows:
            for left, right, crop_left, crop_right in cols:
                crop = x[b:b + 1, :, crop_top:crop_bottom, crop_left:crop_right]
                crop = crop.detach().requires_grad_(True)
                with torch.enable_grad():
                    pixels = net.pixel_energy(crop)[..., top - crop_top:bottom - crop_top,
                                                    left - crop_left:right - crop_left]
                    part = pixels.sum()
                    (crop_grad,) = torch.autograd.grad(part, crop)
                energy[b] += part.detach()
                grad[b:b + 1, :, crop_top:crop_bottom, crop_left:crop_right] += crop_grad
    return energy, grad


def channel_by_channel(net: torch.nn.Module, x: torch.Tensor, tile: int = TILE
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``tiled_energy_and_grad`` of a net with V(x)_b = sum_c w_c V_1(u_c), u = T x linear
    (``channel_images``): each u_c tile by tile with ``channel_net`` V_1, as one gray image,
    and grad_x V = T^T (w_c grad V_1(u_c)) by autograd through T. Same arithmetic as tiles of
    x, a third of the working set for a colour image. On a 2-core Intel Xeon, under glibc's
    default policy, grad V of a 2048x2048 colour image took 20.5 s at a 1556 MiB peak against
    31.7 s at 3542 MiB in colour tiles (``python benchmarks/tiling_check.py``), and of a
    768x768 one 2.48 s against 3.56 (``python benchmarks/tiling_threshold_check.py --priors
    natural-rgb``)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        images, weights = net.channel_images(x)
    energies, grads = tiled_energy_and_grad(net.channel_net, images.detach(), tile)
    per_image = weights.repeat(x.shape[0])  # image 3 b + c is u_c of x_b
    (grad,) = torch.autograd.grad(images, x, grad_outputs=grads * per_image.view(-1, 1, 1, 1))
    return (energies * per_image).view(x.shape[0], -1).sum(1), grad

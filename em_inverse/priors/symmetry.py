"""Symmetrised energies: V_G(x) = mean over g in G of V(g x), for a group G of image symmetries.

Local statistics of natural images hardly change under flips and 90-degree rotations, but a
learned V is only approximately invariant. Averaging it over a group makes the prior exactly
invariant; for the one-step Tweedie denoiser (HQS on denoising) this is the classic
"self-ensemble" of learned denoisers, and in the energy picture it is simply another explicit
energy, so every solver (MAP, HQS, Langevin, the EM sampler) uses it unchanged. It costs |G|
evaluations of V (and of its gradient) instead of one.

Groups (acting on the last two axes of (B, C, H, W) images):

- ``none``: {identity}.
- ``flips``: identity, left-right flip, up-down flip and their product (rotation by 180
  degrees): the augmentation the natural-image priors were trained with.
- ``dihedral``: the 8 symmetries of the square (``flips`` and the same composed with a
  transpose). On non-square images the transposed copies have shape (W, H); fully
  convolutional nets take them as they are (images of one shape are batched together).
"""
from __future__ import annotations

import torch
from torch import nn

#: Each group and its size |G|: a symmetrised V costs |G| evaluations of the network.
GROUP_SIZES = {"none": 1, "flips": 4, "dihedral": 8}
GROUPS = tuple(GROUP_SIZES)


def _flips(x: torch.Tensor) -> list[torch.Tensor]:
    return [x, x.flip(-1), x.flip(-2), x.flip(-2, -1)]


def check_group(group: str) -> None:
    """Raise ``ValueError`` naming the valid groups if ``group`` is not one of them."""
    if group not in GROUPS:
        raise ValueError(f"unknown symmetry group {group!r}: use one of {', '.join(GROUPS)}")


def orbit(x: torch.Tensor, group: str) -> list[torch.Tensor]:
    """The images g x for every g in ``group``; each (B, C, H, W) or, transposed, (B, C, W, H)."""
    check_group(group)
    if group == "none":
        return [x]
    images = _flips(x)
    if group == "dihedral":
        images += _flips(x.transpose(-2, -1))
    return images


class SymmetrizedEnergy(nn.Module):
    """V_G(x) = (1/|G|) sum_g V(g x) for an energy net V: (B, ...) -> (B,).

    The orbit is evaluated in batched calls of at most ``batch_elements`` values (B x C x H x
    W; images of one shape per call), so small images cost one or two calls, and
    ``energy_and_grad`` runs one backward pass per call: the autograd graph, and so the memory,
    never holds more than ``batch_elements`` values of the orbit, whatever |G| is.
    """

    #: Values of orbit images per batched call: two 256x256 gray images. On a 2-core Intel
    #: Xeon with 2 threads, grad V of natural-gray averaged over the flips of a 256x256 image
    #: took 246-266 ms with two orbit images per call against 264-328 with one (freed memory
    #: kept, as the command line does; 336-340 against 392-409 under glibc's default), and no
    #: less with 4 or 12 per call, whose graphs hold more memory; one thread gains little.
    #: natural-rgb gets one colour image per call either way; its whole orbit in one call cost
    #: 5.9-6.9x the plain prior's under glibc's default against 4.0-4.1x
    #: (``python benchmarks/symmetry_cost.py --threads 2 [--keep-freed-memory]``, two runs each).
    BATCH_ELEMENTS = 2 * 256 * 256

    def __init__(self, net: nn.Module, group: str, batch_elements: int = BATCH_ELEMENTS):
        super().__init__()
        check_group(group)
        self.net = net
        self.group = group
        self.batch_elements = int(batch_elements)
        # averaging over the group leaves the noise the net's inputs see unchanged
        # (``EnergyPrior.denoising_levels``)
        self.NOISE_GAIN = getattr(net, "NOISE_GAIN", 1.0)

    def _batches(self, images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """The orbit split into runs of same-shape images of at most ``batch_elements`` values
        (at least one image per run)."""
        batches: list[list[torch.Tensor]] = []
        for image in images:
            last = batches[-1] if batches else None
            if last and last[0].shape == image.shape and \
                    (len(last) + 1) * image.numel() <= self.batch_elements:
                last.append(image)
            else:
                batches.append([image])
        return batches

    def _energy_sum(self, batch: list[torch.Tensor]) -> torch.Tensor:
        """sum over the batch's orbit images of V, per original image: shape (B,)."""
        return self.net(torch.cat(batch)).view(len(batch), -1).sum(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = orbit(x, self.group)
        return sum(self._energy_sum(batch) for batch in self._batches(images)) / len(images)

    def energy_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V_G(x) of shape (B,), grad_x V_G(x)), no graph kept: one backward per batch."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            images = orbit(x, self.group)
            energy, grad = x.new_zeros(x.shape[0]), torch.zeros_like(x)
            for batch in self._batches(images):
                v = self._energy_sum(batch)
                (g,) = torch.autograd.grad(v.sum(), x)
                energy, grad = energy + v.detach(), grad + g
        return energy / len(images), grad / len(images)

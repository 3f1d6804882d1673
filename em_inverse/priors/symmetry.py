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
  convolutional nets take them as they are (one batched call per shape).
"""
from __future__ import annotations

import torch
from torch import nn

GROUPS = ("none", "flips", "dihedral")


def _flips(x: torch.Tensor) -> list[torch.Tensor]:
    return [x, x.flip(-1), x.flip(-2), x.flip(-2, -1)]


def orbit(x: torch.Tensor, group: str) -> list[torch.Tensor]:
    """The images g x for every g in ``group``; each (B, C, H, W) or, transposed, (B, C, W, H)."""
    if group not in GROUPS:
        raise ValueError(f"unknown symmetry group {group!r}: use one of {', '.join(GROUPS)}")
    if group == "none":
        return [x]
    images = _flips(x)
    if group == "dihedral":
        images += _flips(x.transpose(-2, -1))
    return images


class SymmetrizedEnergy(nn.Module):
    """V_G(x) = (1/|G|) sum_g V(g x) for an energy net V: (B, ...) -> (B,).

    The orbit is evaluated as one batched call per image shape (two for ``dihedral`` on
    non-square images, one otherwise), so |G| = 8 costs 8 images' worth of compute, not 8 calls.
    """

    def __init__(self, net: nn.Module, group: str):
        super().__init__()
        if group not in GROUPS:
            raise ValueError(f"unknown symmetry group {group!r}: use one of {', '.join(GROUPS)}")
        self.net = net
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = orbit(x, self.group)
        by_shape: dict[tuple, list[torch.Tensor]] = {}
        for image in images:
            by_shape.setdefault(tuple(image.shape), []).append(image)
        total = x.new_zeros(x.shape[0])
        for same_shape in by_shape.values():
            energies = self.net(torch.cat(same_shape))            # (k * B,)
            total = total + energies.view(len(same_shape), x.shape[0]).sum(0)
        return total / len(images)

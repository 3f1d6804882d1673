"""Function-preserving widening: start a wider ConvEnergy from a trained one.

A ConvEnergy of width w has w 2^k channels at level k, and every layer lists the channels it
shares with a narrower net first. ``widen_state`` embeds a trained state of width w into a
freshly initialised net of width W > w with the same channels, levels and blocks:

- each weight (out, in, kh, kw) keeps its trained values in its first (out, in) block;
- the columns of trained rows that read the new channels are zero;
- the rows that write new channels keep their fresh initialisation, and new biases are zero.

The new channels then carry nonzero activations that no trained channel reads yet, so the wider
net computes exactly the trained V(x) (and grad V) at the start, and the zero columns get
gradients from the first step on (Net2Net, Chen et al. 2016, with zero outgoing weights in place
of copied ones). A fine-tune of a shipped prior can thus test more capacity without training the
wider net from scratch.
"""
from __future__ import annotations

import torch

from em_inverse.errors import UserError
from em_inverse.training.architecture import with_defaults

#: Architecture fields a widening must keep.
KEPT = ("type", "channels", "levels", "blocks", "head")


def can_widen(trained_arch: dict, arch: dict) -> bool:
    """True if ``arch`` is ``trained_arch`` with a larger width (ConvEnergy only); a field left
    out counts as the net's default (a config without ``head`` has the linear one)."""
    if not trained_arch.get("type") == arch.get("type") == "ConvEnergy":
        return False
    trained_arch, arch = with_defaults(trained_arch), with_defaults(arch)
    return (all(trained_arch[k] == arch[k] for k in KEPT)
            and arch["width"] > trained_arch["width"])


def embed(trained: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``trained`` placed in the leading block of a copy of ``fresh`` (same ndim, each dimension
    as large or larger), with the trained rows' columns beyond it zeroed; a bias's new
    entries are zero."""
    if trained.ndim != fresh.ndim or any(a > b for a, b in zip(trained.shape, fresh.shape)):
        raise ValueError(f"cannot embed a tensor of shape {tuple(trained.shape)} "
                         f"in one of shape {tuple(fresh.shape)}")
    if trained.shape == fresh.shape:
        return trained.clone()
    out = fresh.clone()
    if fresh.ndim == 1:
        out.zero_()
        out[:len(trained)] = trained
        return out
    rows, cols = trained.shape[:2]
    if trained.shape[2:] != fresh.shape[2:]:
        raise ValueError(f"kernel sizes differ: {tuple(trained.shape)} vs {tuple(fresh.shape)}")
    out[:rows, cols:] = 0
    out[:rows, :cols] = trained
    return out


def widen_state(trained: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
    """The state dict of the wider net: every tensor of ``trained`` embedded in ``fresh``'s."""
    if trained.keys() != fresh.keys():
        raise UserError("cannot widen: the two networks do not have the same layers")
    return {name: embed(trained[name].to(fresh[name]), fresh[name]) for name in fresh}

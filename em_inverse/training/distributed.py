"""Data parallelism under ``torchrun``: rank and world from the environment, rank 0's weights
broadcast at the start, and gradients averaged explicitly after each backward (gloo on CPU,
NCCL on GPU). A single process without ``torchrun`` makes every call a no-op."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


class Distributed:
    """Rank/world information; a no-op single process unless launched by ``torchrun``."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        if self.active and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_parameters(self, net: torch.nn.Module) -> None:
        """Start every rank from rank 0's weights."""
        if self.active:
            for tensor in net.state_dict().values():
                dist.broadcast(tensor, 0)

    def average_gradients(self, net: torch.nn.Module) -> None:
        """All-reduce the mean gradient in one flat buffer (data parallelism).

        This is what DistributedDataParallel does, done explicitly after ``backward``: DDP's
        per-parameter hooks expect every parameter in every backward, but the flow loss
        depends on grad V only, so e.g. the head's bias gets no gradient in phase 1.
        """
        if not self.active:
            return
        params = [p for p in net.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

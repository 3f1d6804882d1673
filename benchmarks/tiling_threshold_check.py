"""Above what batch size does grad V on the CPU run faster tile by tile than in one pass?

    python benchmarks/tiling_threshold_check.py [--repeats 5]

For each bundled natural prior and batch shape (single images from 384 to 1024 px, and
batches such as the 4 flipped copies of a 256-px image that ``--symmetry flips`` evaluates
together), times one ``value_and_grad`` both ways: one pass over the whole batch (autograd
keeps every activation), and ``priors.tiling``'s path (image by image, in tiles of
``tiling.TILE`` px plus the net's receptive radius as context). Median seconds of ``--repeats``
calls after a second of warm-up, on random images (the cost does not depend on the content).
The last column says which path ``EnergyPrior`` takes on this device for that batch
(``tiling.max_values``). Run it alone: the two paths differ by tens of percent.
"""
import argparse
import statistics
import time

import torch

from em_inverse import load_prior
from em_inverse.priors import tiling

SHAPES = {
    "natural-gray": [(1, 1, 384, 384), (1, 1, 512, 512), (1, 1, 640, 640), (1, 1, 768, 768),
                     (1, 1, 1024, 1024), (32, 1, 128, 128), (4, 1, 256, 256),
                     (8, 1, 256, 256), (4, 1, 512, 512)],
    "natural-rgb": [(1, 3, 256, 256), (4, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768)],
}

parser = argparse.ArgumentParser()
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()


def median_seconds(fn) -> float:
    warm_until = time.perf_counter() + 1.0
    while time.perf_counter() < warm_until:
        fn()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


cpu = torch.device("cpu")
print(f"CPU, {torch.get_num_threads()} torch threads; tiles of {tiling.TILE} px; "
      f"EnergyPrior tiles batches of more than {tiling.max_values(cpu)} values here")
print("| prior | batch (B, C, H, W) | values | one pass (s) | tiled (s) | one pass / tiled "
      "| path taken |")
print("|---|---|---|---|---|---|---|")
for name, shapes in SHAPES.items():
    prior = load_prior(name, device="cpu")
    for shape in shapes:
        z = prior.to_internal(torch.rand(shape, generator=torch.Generator().manual_seed(0)))

        def one_pass():
            x = z.detach().requires_grad_(True)
            torch.autograd.grad(prior.net(x).sum(), x)

        whole = median_seconds(one_pass)
        tiled = median_seconds(lambda: tiling.tiled_energy_and_grad(prior.net, z))
        path = "tiled" if z.numel() > tiling.max_values(cpu) else "one pass"
        print(f"| {name} | {shape} | {z.numel()} | {whole:.3f} | {tiled:.3f} | "
              f"{whole / tiled:.2f} | {path} |", flush=True)

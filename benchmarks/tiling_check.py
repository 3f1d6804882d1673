"""How much memory and time does grad V of a large image take, tiled?

    python benchmarks/tiling_check.py [--priors natural-gray,natural-rgb] [--sizes 1024,2048]

For each bundled natural prior and image side, one ``prior.value_and_grad`` of a random image
on the CPU: seconds, peak memory (``bench.measure.PeakMemory``: resident memory above the
level before the call) and whether it ran tile by tile (``priors.tiling``: above
``tiling.max_values`` values per batch on the CPU). Then, on a 600x600 crop of the first image,
the largest difference between the tiled grad V (tiles of 128 px, to have several) and the
one-pass one.
"""
import argparse
import time

import torch

from em_inverse import load_prior
from em_inverse.bench.measure import PeakMemory
from em_inverse.priors import tiling

parser = argparse.ArgumentParser()
parser.add_argument("--priors", default="natural-gray,natural-rgb")
parser.add_argument("--sizes", default="1024,2048")
args = parser.parse_args()

cpu = torch.device("cpu")
print(f"CPU, {torch.get_num_threads()} torch threads; tiles of {tiling.TILE} px above "
      f"{tiling.max_values(cpu)} values per batch")
print("| prior | image (C, H, W) | tiled | seconds | peak MiB |")
print("|---|---|---|---|---|")
for name in args.priors.split(","):
    prior = load_prior(name, device="cpu")
    generator = torch.Generator().manual_seed(0)
    for size in map(int, args.sizes.split(",")):
        x = torch.rand((1, prior.channels, size, size), generator=generator)
        with PeakMemory(cpu) as memory:
            start = time.perf_counter()
            prior.value_and_grad(x)
            seconds = time.perf_counter() - start
        tiled = "yes" if x.numel() > tiling.max_values(cpu) else "no"
        print(f"| {name} | {tuple(x.shape[1:])} | {tiled} | {seconds:.1f} | {memory.mib:.0f} |",
              flush=True)
    crop = torch.rand((1, prior.channels, 600, 600), generator=generator)
    one_pass = prior.value_and_grad(crop)[1]
    z = prior.to_internal(crop)
    tiled_grad = tiling.tiled_energy_and_grad(prior.net, z, tile=128)[1] * prior.scale / prior.eps
    print(f"  {name}: 600x600 in 128-px tiles vs one pass: max |difference| "
          f"{(tiled_grad - one_pass).abs().max().item():.1e} (max |grad V/eps| "
          f"{one_pass.abs().max().item():.1e})", flush=True)

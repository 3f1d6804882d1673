"""Above what batch size does grad V on the CPU run faster tile by tile than in one pass?

    python benchmarks/tiling_threshold_check.py [--repeats 5] [--keep-freed-memory]
        [--priors natural-gray,natural-rgb]

For each bundled natural prior and batch shape (single images from 384 to 1024 px, and
batches such as 4 or 8 posterior chains of a 256-px image), times one ``value_and_grad`` both
ways: one pass over the whole batch (autograd keeps every activation), and ``priors.tiling``'s
path (image by image, in tiles of ``tiling.TILE`` px plus the net's receptive radius as
context). Median seconds of ``--repeats`` calls after a second of warm-up
(``bench.speed.median_time``), on random images (the cost does not depend on the content). The
last column says which path ``EnergyPrior`` takes on this device for that batch
(``tiling.max_values``). ``--keep-freed-memory`` times both under the command line's allocator
policy (``em_inverse.keep_freed_memory``). Run it alone: the two paths differ by tens of
percent.
"""
import argparse

import torch

from em_inverse import keep_freed_memory, load_prior
from em_inverse.bench.speed import median_time
from em_inverse.priors import tiling

SHAPES = {
    "natural-gray": [(1, 1, 384, 384), (1, 1, 512, 512), (1, 1, 640, 640), (1, 1, 768, 768),
                     (1, 1, 1024, 1024), (32, 1, 128, 128), (4, 1, 256, 256),
                     (8, 1, 256, 256), (4, 1, 512, 512)],
    "natural-rgb": [(1, 3, 256, 256), (4, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768)],
}

parser = argparse.ArgumentParser()
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--priors", default=",".join(SHAPES))
parser.add_argument("--keep-freed-memory", action="store_true",
                    help="keep freed memory for reuse, as the command line does")
args = parser.parse_args()
if args.keep_freed_memory and not keep_freed_memory():
    parser.exit(1, "this C library is not glibc: freed memory cannot be kept\n")

cpu = torch.device("cpu")
print(f"CPU, {torch.get_num_threads()} torch threads; freed memory "
      f"{'kept' if args.keep_freed_memory else 'returned'}; tiles of {tiling.TILE} px; "
      f"EnergyPrior tiles batches of more than {tiling.max_values(cpu)} values here")
print("| prior | batch (B, C, H, W) | values | one pass (s) | tiled (s) | one pass / tiled "
      "| path taken |")
print("|---|---|---|---|---|---|---|")
for name in args.priors.split(","):
    shapes = SHAPES[name]
    prior = load_prior(name, device="cpu")
    for shape in shapes:
        z = prior.to_internal(torch.rand(shape, generator=torch.Generator().manual_seed(0)))

        def one_pass():
            x = z.detach().requires_grad_(True)
            torch.autograd.grad(prior.net(x).sum(), x)

        whole = median_time(one_pass, cpu, args.repeats)
        tiled = median_time(lambda: tiling.tiled_energy_and_grad(prior.net, z), cpu, args.repeats)
        path = "tiled" if z.numel() > tiling.max_values(cpu) else "one pass"
        print(f"| {name} | {shape} | {z.numel()} | {whole:.3f} | {tiled:.3f} | "
              f"{whole / tiled:.2f} | {path} |", flush=True)

"""Is grad V faster with the convolution weights in channels_last (NHWC) on the CPU?

    python benchmarks/conv_layout_check.py [--priors natural-gray,natural-rgb,fashion-mnist]
        [--sizes 128,256,512] [--repeats 8] [--solves superres-x2,deblur-gauss,inpaint-50]

``EnergyPrior`` keeps its net's convolution weights in ``nets.fastest_conv_layout`` of their
device: channels_last on the CPU. For each bundled prior (fashion-mnist: a batch of 32 images of
28x28; the natural priors: one image per size), this times ``prior.value_and_grad`` with that
layout and with PyTorch's default NCHW weights, on the same random images and this machine's
torch threads, and prints the median milliseconds of each, the speed-up, and the largest
difference between the two grad V (float rounding: the two layouts sum in another order).
Then, for natural-gray, it times the default ``solve`` of each ``--solves`` task on the first
TRAINING crop of 256 px the tuner uses (``bench.validation_set``), alternating the two layouts
and taking the faster of ``--solve-repeats`` runs of each: the solve's share of the gain, as
the data steps and the solver's own work did not change.
"""
import argparse
import time

import torch

from em_inverse import load_prior, solve
from em_inverse.bench.speed import median_time
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images


parser = argparse.ArgumentParser()
parser.add_argument("--priors", default="natural-gray,natural-rgb,fashion-mnist")
parser.add_argument("--sizes", default="128,256,512", help="image sides for the natural priors")
parser.add_argument("--repeats", type=int, default=8)
parser.add_argument("--solves", default="superres-x2,deblur-gauss,inpaint-50",
                    help="natural-gray tasks whose default solve is timed ('' for none)")
parser.add_argument("--solve-repeats", type=int, default=2)
args = parser.parse_args()

print(f"CPU, {torch.get_num_threads()} torch threads; median of {args.repeats} calls")
print("| prior | input (B, C, H, W) | NCHW weights (ms) | channels_last (ms) | speed-up "
      "| max abs diff of grad V (max abs grad V) |")
print("|---|---|---|---|---|---|")
cpu = torch.device("cpu")
generator = torch.Generator().manual_seed(0)
for name in args.priors.split(","):
    fast = load_prior(name, device="cpu")
    plain = load_prior(name, device="cpu")
    plain.net.to(memory_format=torch.contiguous_format)  # PyTorch's default, bypassing the prior
    if fast.image_size:
        shapes = [(32, fast.channels, *fast.image_size)]
    else:
        shapes = [(1, fast.channels, s, s) for s in map(int, args.sizes.split(","))]
    for shape in shapes:
        x = torch.rand(shape, generator=generator)
        ms_plain = 1e3 * median_time(lambda: plain.value_and_grad(x), cpu, args.repeats)
        ms_fast = 1e3 * median_time(lambda: fast.value_and_grad(x), cpu, args.repeats)
        g_plain, g_fast = plain.value_and_grad(x)[1], fast.value_and_grad(x)[1]
        diff = (g_fast - g_plain).abs().max().item()
        print(f"| {name} | {tuple(shape)} | {ms_plain:.1f} | {ms_fast:.1f} | "
              f"{ms_plain / ms_fast:.2f}x | {diff:.1e} ({g_plain.abs().max().item():.1e}) |",
              flush=True)

if args.solves:
    fast = load_prior("natural-gray", device="cpu")
    plain = load_prior("natural-gray", device="cpu")
    plain.net.to(memory_format=torch.contiguous_format)
    x = validation_images(1, 256, 1)[0]
    print("\n| natural-gray default solve (256 px training crop) | NCHW weights (s) | "
          "channels_last (s) | speed-up |")
    print("|---|---|---|---|")
    for task in (t for t in TUNING_TASKS if t.name in args.solves.split(",")):
        physics, y = task.simulate(x, seed=0)
        seconds = {"plain": [], "fast": []}
        for _ in range(args.solve_repeats):
            for key, prior in (("plain", plain), ("fast", fast)):
                start = time.perf_counter()
                solve(y, physics, prior, progress=False)
                seconds[key].append(time.perf_counter() - start)
        s_plain, s_fast = min(seconds["plain"]), min(seconds["fast"])
        print(f"| {task.name} | {s_plain:.2f} | {s_fast:.2f} | {s_plain / s_fast:.2f}x |",
              flush=True)

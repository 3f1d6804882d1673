"""Is grad V faster with the convolution weights in channels_last (NHWC) on the CPU?

    python benchmarks/conv_layout_check.py [--priors natural-gray,natural-rgb,fashion-mnist]
        [--sizes 128,256,512] [--repeats 8]

``EnergyPrior`` keeps its net's convolution weights in ``nets.fastest_conv_layout`` of their
device: channels_last on the CPU. For each bundled prior (fashion-mnist: a batch of 32 images of
28x28; the natural priors: one image per size), this times ``prior.value_and_grad`` with that
layout and with PyTorch's default NCHW weights, on the same random images and this machine's
torch threads, and prints the median milliseconds of each, the speed-up, and the largest
difference between the two grad V (float rounding: the two layouts sum in another order).
"""
import argparse
import statistics
import time

import torch

from em_inverse import load_prior


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks and caches its kernels on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


parser = argparse.ArgumentParser()
parser.add_argument("--priors", default="natural-gray,natural-rgb,fashion-mnist")
parser.add_argument("--sizes", default="128,256,512", help="image sides for the natural priors")
parser.add_argument("--repeats", type=int, default=8)
args = parser.parse_args()

print(f"CPU, {torch.get_num_threads()} torch threads; median of {args.repeats} calls")
print("| prior | input (B, C, H, W) | NCHW weights (ms) | channels_last (ms) | speed-up "
      "| max abs diff of grad V (max abs grad V) |")
print("|---|---|---|---|---|---|")
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
        ms_plain = median_ms(lambda: plain.value_and_grad(x), args.repeats)
        ms_fast = median_ms(lambda: fast.value_and_grad(x), args.repeats)
        g_plain, g_fast = plain.value_and_grad(x)[1], fast.value_and_grad(x)[1]
        diff = (g_fast - g_plain).abs().max().item()
        print(f"| {name} | {tuple(shape)} | {ms_plain:.1f} | {ms_fast:.1f} | "
              f"{ms_plain / ms_fast:.2f}x | {diff:.1e} ({g_plain.abs().max().item():.1e}) |",
              flush=True)

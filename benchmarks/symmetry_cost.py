"""What averaging V over the image's flips costs, by the orbit's batch size per call.

    python benchmarks/symmetry_cost.py [--threads 1] [--keep-freed-memory]

Times one ``value_and_grad`` of each bundled natural prior on a random 256x256 image, plain and
averaged over its 4 flips (``priors.symmetry``) with 1, 2, 4 or 12 images' worth of values per
batched call (``SymmetrizedEnergy.batch_elements``, in units of one 256x256 gray image; 12 holds
the whole colour orbit, as the earlier per-pixel budget of 4 x 256^2 did), and prints each as
milliseconds and as a multiple of the plain call (ideal: 4x), with the peak memory of one more
call. Median of 5 timed calls after one warm-up. ``--keep-freed-memory`` times them under the
command line's allocator policy (``em_inverse.keep_freed_memory``); run it alone.
"""
import argparse
import statistics
import time

import torch

from em_inverse import keep_freed_memory, load_prior
from em_inverse.bench.measure import PeakMemory
from em_inverse.priors.symmetry import SymmetrizedEnergy

GRAY_IMAGE = 256 * 256


def peak_mib(prior, x: torch.Tensor) -> float:
    """Peak memory of one call above the level before it (``bench.measure.PeakMemory``)."""
    with PeakMemory(x.device) as memory:
        prior.value_and_grad(x)
    return memory.mib


def seconds_per_call(prior, x: torch.Tensor, repeats: int = 5) -> float:
    prior.value_and_grad(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prior.value_and_grad(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--keep-freed-memory", action="store_true",
                    help="keep freed memory for reuse, as the command line does")
args = parser.parse_args()
if args.keep_freed_memory and not keep_freed_memory():
    parser.exit(1, "this C library is not glibc: freed memory cannot be kept\n")
torch.set_num_threads(args.threads)
print(f"{args.threads} thread(s); freed memory {'kept' if args.keep_freed_memory else 'returned'}")
for name, channels in (("natural-gray", 1), ("natural-rgb", 3)):
    prior = load_prior(name)
    x = torch.rand(1, channels, 256, 256)
    plain = seconds_per_call(prior, x)
    line = [f"{name}: plain {plain * 1e3:.0f} ms, {peak_mib(prior, x):.0f} MiB"]
    for images in (1, 2, 4, 12):
        net = SymmetrizedEnergy(prior.net, "flips", batch_elements=images * GRAY_IMAGE)
        symmetrized = prior.copy_with(net=net)
        t = seconds_per_call(symmetrized, x)
        line.append(f"flips, {images} gray image(s) per call {t * 1e3:.0f} ms ({t / plain:.1f}x), "
                    f"{peak_mib(symmetrized, x):.0f} MiB")
    print("; ".join(line), flush=True)

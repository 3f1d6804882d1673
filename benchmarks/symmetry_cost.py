"""What averaging V over the image's flips costs, by the orbit's batch size per call.

    python benchmarks/symmetry_cost.py      # natural-gray and natural-rgb, one CPU thread

Times one ``value_and_grad`` of each bundled natural prior on a random 256x256 image, plain and
averaged over its 4 flips (``priors.symmetry``) with 1, 4 or 12 images' worth of values per
batched call (``SymmetrizedEnergy.batch_elements``, in units of one 256x256 gray image; 12 holds
the whole colour orbit, as the earlier per-pixel budget of 4 x 256^2 did), and prints each as
milliseconds and as a multiple of the plain call (ideal: 4x). Median of 5 timed calls after one
warm-up.
"""
import statistics
import time

import torch

from em_inverse import load_prior
from em_inverse.priors.symmetry import SymmetrizedEnergy

GRAY_IMAGE = 256 * 256


def seconds_per_call(prior, x: torch.Tensor, repeats: int = 5) -> float:
    prior.value_and_grad(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prior.value_and_grad(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


torch.set_num_threads(1)
for name, channels in (("natural-gray", 1), ("natural-rgb", 3)):
    prior = load_prior(name)
    x = torch.rand(1, channels, 256, 256)
    plain = seconds_per_call(prior, x)
    line = [f"{name}: plain {plain * 1e3:.0f} ms"]
    for images in (1, 4, 12):
        net = SymmetrizedEnergy(prior.net, "flips", batch_elements=images * GRAY_IMAGE)
        t = seconds_per_call(prior.copy_with(net=net), x)
        line.append(f"flips, {images} gray image(s) per call {t * 1e3:.0f} ms ({t / plain:.1f}x)")
    print("; ".join(line), flush=True)

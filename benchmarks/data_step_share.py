"""How much of a default HQS solve is its data step, not grad V?

    python benchmarks/data_step_share.py [PRIOR ...] [--size 256] [--tasks deblur-gauss,...]

For each prior (default: natural-gray and natural-rgb) and each HQS task of the tuning table,
solves one simulated measurement of a TRAINING crop (the first of ``bench.validation_set``'s
crops, at ``--size``) with the prior's tuned defaults, after one short warm-up solve, and prints
the wall time of the solve and of its data steps (``solvers.hqs.data_prox``: the closed form,
or CG on A^T A for deblurring and super-resolution). The rest is mostly grad V.
Super-resolution's data step was 40% of a gray 256-px solve (3.8 of 9.6 s; this script at
commit 4a7b206) while deepinv's adjoint ran PyTorch's slow CPU transposed convolution; with
``operators.physics.BicubicDownsampling``, which computes it by forward convolutions, 15%
(1.1 of 7.2 s; at commit 803dfd3, half an hour after the 40% in the same session). On a slower
Intel Xeon at 2.8 GHz (2 threads), since grad V runs on channels_last weights (commit c990ef4):
gray super-resolution 18% of 9.1 s, deblurring 34% of 10.4 s; colour 9% of 19.8 s and 28% of
25.9 s (before it, at commit 7364a37: 17% of 10.3 s, 30% of 12.5 s; 8% of 27.0 s, 26% of 30.9 s).
Since a separable kernel blurs by two 1-D convolutions (``operators.physics.SeparableBlur``),
deblurring's data steps take 20% of a gray solve (0.81 of 4.05 s) and 19% of a colour one (2.27
of 12.09 s), against 33% of 5.71 s and 25% of 14.14 s the run before, in the same session.
"""
import argparse
import time
from unittest import mock

import em_inverse.solvers.hqs as hqs
from em_inverse import load_prior, solve
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images
from em_inverse.solvers.tuned_entries import tuned_defaults

parser = argparse.ArgumentParser()
parser.add_argument("priors", nargs="*", default=["natural-gray", "natural-rgb"])
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--tasks", default="denoise-25,inpaint-50,deblur-gauss,superres-x2")
args = parser.parse_args()

data_seconds = [0.0]
timed_prox = hqs.data_prox


def data_prox(*a, **k):
    start = time.perf_counter()
    result = timed_prox(*a, **k)
    data_seconds[0] += time.perf_counter() - start
    return result


for name in args.priors:
    prior = load_prior(name)
    x = validation_images(prior.channels, args.size, 1)[0]
    for task in (t for t in TUNING_TASKS if t.name in args.tasks.split(",")):
        physics, y = task.simulate(x, seed=0)
        if tuned_defaults(prior, physics, task.sigma)[1].get("method") != "hqs":
            continue
        solve(y, physics, prior, progress=False, steps=2)  # warm-up
        data_seconds[0] = 0.0
        with mock.patch.object(hqs, "data_prox", data_prox):
            start = time.perf_counter()
            solve(y, physics, prior, progress=False)
            total = time.perf_counter() - start
        print(f"{name} {task.name} ({args.size} px): {total:.2f} s, data step "
              f"{data_seconds[0]:.2f} s ({100 * data_seconds[0] / total:.0f}%)", flush=True)

"""Does HQS's iteration budget matter? The tuned HQS entries on the TRAINING crops ``em-inverse
tune`` uses.

    python benchmarks/hqs_budget_check.py [PRIOR] [--steps 40,80,160] [--tasks inpaint-50,...]
        [--step-cap C]

For every task of the tuning table (``bench.validation_set.TUNING_TASKS``) whose tuned default
is HQS, runs ``solve`` with those defaults and each iteration budget (the tuner tries 40 only), and
prints the mean PSNR (dB, 8-px border, estimate clipped to [0, 1]) and the wall time of each.
A longer schedule descends the same geometric levels from ``sigma_start`` to ``sigma_end`` in
smaller ratios: more grad V, each a smaller denoising step. ``--step-cap`` sets HQS's step cap
(``inf``: none; default: ``solve``'s, 1.5). Never run on test images.
"""
import argparse
import time

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images
from em_inverse.solvers.tuned_entries import tuned_defaults

parser = argparse.ArgumentParser()
parser.add_argument("prior", nargs="?", default="natural-gray")
parser.add_argument("--steps", default="40,80,160", help="HQS iteration budgets, comma-separated")
parser.add_argument("--tasks", default=",".join(t.name for t in TUNING_TASKS))
parser.add_argument("--step-cap", type=float, help="HQS step cap (inf: none; default: solve's)")
args = parser.parse_args()

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, 6)
for task in (t for t in TUNING_TASKS if t.name in args.tasks.split(",")):
    cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
    physics, _ = cases[0]
    key, entry = tuned_defaults(prior, physics, task.sigma)
    if entry.get("method") != "hqs":
        print(f"{task.name}: tuned method ({key}) is {entry.get('method')}, not hqs: skipped",
              flush=True)
        continue
    print(f"{task.name}: tuned hqs ({key}) {entry['hqs']}", flush=True)
    for steps in (int(s) for s in args.steps.split(",")):
        start = time.perf_counter()
        cap = {} if args.step_cap is None else {"step_cap": args.step_cap}
        scores = [psnr(solve(y, physics, prior, steps=steps, progress=False, **cap)
                       .estimate.clamp(0, 1), x, border=8)
                  for x, (physics, y) in zip(images, cases)]
        print(f"  {steps:4d} iterations: {np.mean(scores):.2f} dB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

"""Where does HQS's step cap act, and what does it change?

    python benchmarks/step_cap_check.py [PRIOR ...] [--cap 1.5] [--tasks denoise-25,...]
        [--count 6]

HQS's ``step_cap`` option holds each prior step's RMS to at most ``step_cap`` * s
(``solvers.hqs``; 1.5 by default, ``math.inf`` for none). For each prior (default: natural-gray
and natural-rgb) and each of the tuner's tasks (``bench.validation_set.TUNING_TASKS``) whose
default solve runs HQS, this solves the TRAINING crops of 128 px that the tuner uses (never test
images; for a fixed-size prior such as fashion-mnist, the first ``--count`` images of its
training split and its own tuning tasks, ``validation_set.tasks_for``) with the default
settings, with the cap and without, and prints the mean PSNR of both (dB, 8-px border on crops,
none on whole images, estimates clipped to [0, 1]) and how many prior steps the cap scaled down
per solve. Where the cap never acts the two estimates are equal to the bit.
"""
import argparse
import math
import time

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import fashion_training_images, tasks_for, validation_images
from em_inverse.solvers.tuned_entries import tuned_defaults

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("priors", nargs="*", default=["natural-gray", "natural-rgb"])
parser.add_argument("--cap", type=float, default=1.5, help="step_cap, in units of the level s")
parser.add_argument("--tasks", help="comma-separated tuning tasks (default: all)")
parser.add_argument("--count", type=int, default=6, help="training crops (or whole images)")
args = parser.parse_args()
wanted = set(args.tasks.split(",")) if args.tasks else None

for name in args.priors:
    prior = load_prior(name)
    fixed = prior.image_size is not None
    images = (fashion_training_images(args.count) if fixed
              else validation_images(prior.channels, 128, args.count))
    border = 0 if fixed else 8
    for task in tasks_for(fixed):
        if wanted is not None and task.name not in wanted:
            continue
        start = time.perf_counter()
        cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        method = tuned_defaults(prior, cases[0][0], task.sigma)[1].get("method")
        if method != "hqs":
            print(f"{name} {task.name}: default is {method}, not HQS")
            continue
        scores, capped, identical = {"capped": [], "uncapped": []}, [], True
        for x, (physics, y) in zip(images, cases):
            without = solve(y, physics, prior, progress=False, step_cap=math.inf)
            with_cap = solve(y, physics, prior, progress=False, step_cap=args.cap)
            scores["capped"].append(psnr(with_cap.estimate.clamp(0, 1), x, border=border))
            scores["uncapped"].append(psnr(without.estimate.clamp(0, 1), x, border=border))
            capped.append(with_cap.diagnostics.capped_steps)
            identical &= bool((with_cap.estimate == without.estimate).all())
        print(f"{name} {task.name}: capped {np.mean(scores['capped']):.2f} dB, uncapped "
              f"{np.mean(scores['uncapped']):.2f}; capped steps per solve {capped} of "
              f"{with_cap.diagnostics.steps}; estimates {'equal' if identical else 'differ'} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

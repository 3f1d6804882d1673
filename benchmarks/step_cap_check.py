"""Where does HQS's step cap act, and what does it change?

    python benchmarks/step_cap_check.py [PRIOR ...] [--cap 1.5] [--tasks denoise-25,...]
        [--count 6]

HQS's ``step_cap`` option holds each prior step's RMS to at most ``step_cap`` * s
(``solvers.hqs``; 1.5 by default, ``math.inf`` for none). For each prior (default: natural-gray and natural-rgb) and
each of the tuner's tasks (``bench.validation_set.TUNING_TASKS``) whose default solve runs HQS,
this solves the TRAINING crops of 128 px that the tuner uses (never test images) with the
default settings, with the cap and without, and prints the mean PSNR of both (dB, 8-px border,
estimates clipped to [0, 1]) and how many prior steps the cap scaled down per solve. Where the
cap never acts the two estimates are equal to the bit.
"""
import argparse
import math
import time

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("priors", nargs="*", default=["natural-gray", "natural-rgb"])
parser.add_argument("--cap", type=float, default=1.5, help="step_cap, in units of the level s")
parser.add_argument("--tasks", help="comma-separated tuning tasks (default: all)")
parser.add_argument("--count", type=int, default=6, help="training crops")
args = parser.parse_args()
wanted = set(args.tasks.split(",")) if args.tasks else None

for name in args.priors:
    prior = load_prior(name)
    images = validation_images(prior.channels, 128, args.count)
    for task in TUNING_TASKS:
        if wanted is not None and task.name not in wanted:
            continue
        start = time.perf_counter()
        scores, capped, identical = {"capped": [], "uncapped": []}, [], True
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            without = solve(y, physics, prior, progress=False, step_cap=math.inf)
            if without.settings["method"] != "hqs":
                break
            with_cap = solve(y, physics, prior, progress=False, step_cap=args.cap)
            scores["capped"].append(psnr(with_cap.estimate.clamp(0, 1), x, border=8))
            scores["uncapped"].append(psnr(without.estimate.clamp(0, 1), x, border=8))
            capped.append(with_cap.diagnostics.capped_steps)
            identical &= bool((with_cap.estimate == without.estimate).all())
        if not capped:
            print(f"{name} {task.name}: default is {without.settings['method']}, not HQS")
            continue
        print(f"{name} {task.name}: capped {np.mean(scores['capped']):.2f} dB, uncapped "
              f"{np.mean(scores['uncapped']):.2f}; capped steps per solve {capped} of "
              f"{with_cap.diagnostics.steps}; estimates {'equal' if identical else 'differ'} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

"""Does MAP's iteration budget matter? Inpainting on the TRAINING crops ``em-inverse tune`` uses.

    python benchmarks/map_budget_check.py [PRIOR] [WEIGHT]     # default: natural-gray, its tuned w

Runs MAP (L-BFGS on U = fidelity + w V/eps) with the tuner's trial budget (100 iterations) and
with solve()'s default cap (200) on the two inpainting tasks of the tuning table, and prints the
mean PSNR (dB, 8-px border, estimate clipped to [0, 1]) of each. A lightly weighted prior keeps
changing the estimate long after the data fit has converged, so the budget is a setting like
the weight: the tuner stores the one it measured (never on test images).
"""
import argparse

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images

parser = argparse.ArgumentParser()
parser.add_argument("prior", nargs="?", default="natural-gray")
parser.add_argument("weight", nargs="?", type=float,
                    help="MAP's prior weight w (default: the prior's tuned inpainting w)")
args = parser.parse_args()
name = args.prior
prior = load_prior(name)
weight = (args.weight if args.weight is not None else
          prior.solve_defaults.get("inpaint", {}).get("map", {}).get("prior_weight", 1.0))
prior = prior.copy_with(solve_defaults={})
images = validation_images(prior.channels, 128, 6)
for task in [t for t in TUNING_TASKS if t.family == "inpaint"]:
    cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
    for steps in (100, 200):
        scores = [psnr(solve(y, physics, prior, method="map", prior_weight=weight, steps=steps,
                             progress=False).estimate.clamp(0, 1), x, border=8)
                  for x, (physics, y) in zip(images, cases)]
        print(f"{name} {task.name} MAP w={weight} {steps} iterations: "
              f"{np.mean(scores):.2f} dB", flush=True)

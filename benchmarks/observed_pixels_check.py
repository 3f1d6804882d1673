"""Noiseless inpainting: what does returning the observed pixels as measured gain?

With no noise, an observed pixel is known exactly, but a solver returns every pixel from its own
iterations (its data term keeps a floor of 1/255 on the noise, and the last HQS step is a prior
step); ``solve`` puts the measurement back (``solvers.observed``). This measures, on TRAINING
images only, the PSNR of each method's estimate without that rule (``keep_observed=False``)
and with it (solve()'s default):

    python benchmarks/observed_pixels_check.py natural-gray     # 6 crops of 128 px, inpaint-50
    python benchmarks/observed_pixels_check.py natural-rgb
    python benchmarks/observed_pixels_check.py fashion-mnist    # first 10 training images

Natural priors: solve()'s default (the prior's tuned inpainting entry), 8-px border. Fashion:
the default (annealed, 16 chains), MAP and HQS on inpaint-50 and the 12x12 box, no border.
One thread.
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import fashion_tasks, natural_tasks
from em_inverse.bench.validation_set import fashion_training_images, validation_images

parser = argparse.ArgumentParser()
parser.add_argument("prior", choices=("natural-gray", "natural-rgb", "fashion-mnist"))
args = parser.parse_args()
torch.set_num_threads(1)

prior = load_prior(args.prior)
if args.prior == "fashion-mnist":
    images, tasks, border = fashion_training_images(10), fashion_tasks(), 0
    names, methods = ("inpaint-50", "inpaint-box"), {"default (16 chains)": dict(chains=16),
                                                      "map": dict(method="map"),
                                                      "hqs": dict(method="hqs")}
else:
    images, tasks, border = validation_images(prior.channels, 128, 6), natural_tasks(), 8
    names, methods = ("inpaint-50",), {"default": {}}

for name in names:
    task = next(t for t in tasks if t.name == name)
    for label, options in methods.items():
        as_is, kept = [], []
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            without = solve(y, physics, prior, progress=False, keep_observed=False, **options)
            default = solve(y, physics, prior, progress=False, **options)
            assert "observed_pixels" in default.settings, "the task is not noise-free"
            as_is.append(psnr(without.estimate.clamp(0, 1), x, border=border))
            kept.append(psnr(default.estimate.clamp(0, 1), x, border=border))
        gains = np.array(kept) - np.array(as_is)
        print(f"{name} {label:20s} without {np.mean(as_is):.3f}  observed kept {np.mean(kept):.3f}"
              f"  gain per image {np.round(gains, 3)}", flush=True)

"""Do the deblurring and super-resolution defaults hold below the noise they were tuned at?

The tuner chooses them on measurements with noise 0.01 (the benchmark's tasks). This scores
the prior's tuned HQS and MAP (each with its own tuned settings) on the 6 TRAINING crops of
128 px that the tuner uses, at noise 0 (the 1/255 floor of the data term), 0.0025, 0.005 and
0.01: mean PSNR (dB, 8-px border, estimates clipped to [0, 1]); without noise also two HQS
variants, over the 8 symmetries of the square and at half the tuned weight.

    python benchmarks/hqs_vs_map_noise_check.py natural-gray
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.tuning import validation_images

parser = argparse.ArgumentParser()
parser.add_argument("prior")
args = parser.parse_args()
torch.set_num_threads(2)

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, 6)
for family, operator in (("superres", dict(factor=2)), ("deblur", dict(kernel="gaussian:2"))):
    for sigma in (0.0, 0.0025, 0.005, 0.01):
        task = Task(f"{family}-{sigma:g}", family, sigma, **operator)
        problems = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        weight = prior.solve_defaults[family]["hqs"]["prior_weight"]
        trials = {"HQS": ("hqs", {}), "MAP": ("map", {})}
        if sigma == 0:
            trials.update({"HQS 8 symmetries": ("hqs", {"symmetry": "dihedral"}),
                           f"HQS w={weight / 2:g}": ("hqs", {"prior_weight": weight / 2})})
        scores = {label: np.mean([psnr(solve(y, physics, prior, method=method, progress=False,
                                             **options).estimate.clamp(0, 1), x, border=8)
                                  for x, (physics, y) in zip(images, problems)])
                  for label, (method, options) in trials.items()}
        print(f"{family:9s} noise {sigma:<6g} " +
              "  ".join(f"{label} {score:.3f}" for label, score in scores.items()), flush=True)

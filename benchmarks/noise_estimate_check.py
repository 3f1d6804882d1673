"""How well is the noise level estimated, and what does a wrong one cost the default solve?

On the tuner's TRAINING crops (128 px; 6 gray, 5 colour), each task is simulated, rounded to 8
bits as a PNG would store it, and its noise level estimated two ways: the weak-texture patch
estimator ``solve`` uses (``estimate_noise_sigma``) and the wavelet one it replaced
(``wavelet_noise_sigma``). Prints the estimates and, with ``--solve``, the mean PSNR (dB, 8-px
border, estimates clipped to [0, 1]) of the prior's default solve given the true level (at
least 1/255) and each estimate.

    python benchmarks/noise_estimate_check.py natural-gray --solve
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import validation_images
from em_inverse.operators import MIN_SIGMA, estimate_noise_sigma, wavelet_noise_sigma

TASKS = (Task("superres-x2", "superres", 0.0, factor=2),
         Task("superres-x2", "superres", 0.01, factor=2),
         Task("deblur-gauss", "deblur", 0.0, kernel="gaussian:2"),
         Task("deblur-gauss", "deblur", 0.01, kernel="gaussian:2"),
         Task("denoise", "denoise", 0.02),
         Task("denoise", "denoise", 25 / 255),
         Task("inpaint-box", "inpaint", 0.0, box=0.25),
         Task("inpaint-box", "inpaint", 0.02, box=0.25),
         Task("inpaint-50", "inpaint", 0.0, missing=0.5),
         Task("inpaint-50", "inpaint", 0.02, missing=0.5))

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("--solve", action="store_true", help="also score the default solve")
parser.add_argument("--tasks", default="", help="only these task names (comma-separated)")
args = parser.parse_args()
torch.set_num_threads(2)

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, 6)
estimators = {"patches": estimate_noise_sigma, "wavelet": wavelet_noise_sigma}
for task in (t for t in TASKS if not args.tasks or t.name in args.tasks.split(",")):
    estimates = {name: [] for name in estimators}
    scores = {name: [] for name in ("true", *estimators)}
    for k, x in enumerate(images):
        physics, y = task.simulate(x, seed=100 + k)
        y = (y.clamp(0, 1) * 255).round() / 255
        keep = physics.mask if task.family == "inpaint" else None
        for name, estimator in estimators.items():
            estimates[name].append(float(estimator(y, keep)))
        if args.solve:
            levels = {"true": max(task.sigma, MIN_SIGMA)} | {n: v[-1] for n, v in estimates.items()}
            for name, sigma in levels.items():
                estimate = solve(y, physics, prior, progress=False, sigma=sigma).estimate
                scores[name].append(psnr(estimate.clamp(0, 1), x, border=8))
    line = f"{task.name:12s} noise {task.sigma:<7.4g}" + "".join(
        f"  {name} {np.mean(v):.4f} ({min(v):.4f}-{max(v):.4f})" for name, v in estimates.items())
    if args.solve:
        line += "  | PSNR " + "  ".join(f"{n} {np.mean(v):.2f}" for n, v in scores.items())
    print(line, flush=True)

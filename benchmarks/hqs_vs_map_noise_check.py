"""Which tuned settings serve deblurring and super-resolution at each noise level?

The tuner chooses two entries per family: ``deblur`` / ``superres`` on measurements with noise
0.01 (the benchmark's tasks) and ``deblur-clean`` / ``superres-clean`` without noise; ``solve``
takes the clean one below its ``below_noise`` level (the tuner's switch stage,
``bench.clean_switch``; without one, below 0.0063). This scores, on the 6 TRAINING
crops of 128 px that the tuner uses, at noise 0 (the 1/255 floor of the data term), 0.0025,
0.005, 0.0075 and 0.01: each entry's tuned method with its own settings, the other of HQS and
MAP with that entry's settings, and the default solve (the entry ``solve`` picks). Mean PSNR
(dB, 8-px border, estimates clipped to [0, 1]).

    python benchmarks/hqs_vs_map_noise_check.py natural-gray [--step-cap C]
    python benchmarks/hqs_vs_map_noise_check.py natural-gray --levels 0.02,0.05,0.1

``--levels`` scores other noise levels (above 0.01: where no entry was tuned). A fixed-size
prior (``fashion-mnist``) is scored on the tuner's first 20 training images with its own
tasks (blur std 1), without a border.

``--step-cap`` sets HQS's step cap (``inf``: none, as before the cap became ``solve``'s
default; default: ``solve``'s, 1.5).
"""
import argparse
from dataclasses import replace

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import fashion_training_images, tasks_for, validation_images
from em_inverse.solvers import CLEAN_SUFFIX
from em_inverse.solvers.tuned_entries import TUNED_NOISE

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("--step-cap", type=float, help="HQS step cap (inf: none; default: solve's)")
parser.add_argument("--levels", default="0,0.0025,0.005,0.0075,0.01",
                    help="noise levels, comma-separated")
args = parser.parse_args()
cap = {} if args.step_cap is None else {"step_cap": args.step_cap}
torch.set_num_threads(2)

prior = load_prior(args.prior)
if prior.image_size is None:
    images, border, tasks = validation_images(prior.channels, 128, 6), 8, {}
else:  # fixed-size priors: the tuner's 20 training images, its blur kernel, no border
    images, border = fashion_training_images(20), 0
    tasks = {task.family: task for task in tasks_for(True) if task.sigma == TUNED_NOISE}
for family, operator in (("superres", dict(factor=2)), ("deblur", dict(kernel="gaussian:2"))):
    entries = [key for key in (family, family + CLEAN_SUFFIX) if key in prior.solve_defaults]
    for sigma in [float(level) for level in args.levels.split(",")]:
        template = tasks.get(family, Task(family, family, TUNED_NOISE, **operator))
        task = replace(template, name=f"{family}-{sigma:g}", sigma=sigma)
        problems = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
        trials = {"default": (None, {})}
        for key in entries:
            for method in ("hqs", "map"):
                trials[f"{key} {method}"] = (method, prior.solve_defaults[key].get(method, {}))
        scores, chosen = {}, set()
        for label, (method, options) in trials.items():
            values = []
            for x, (physics, y) in zip(images, problems):
                solution = solve(y, physics, prior, method=method, progress=False, **options, **cap)
                values.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                if method is None:
                    chosen.add(f"{solution.settings['tuned_defaults']} "
                               f"{solution.settings['method']}")
            scores[label] = np.mean(values)
        print(f"{family:9s} noise {sigma:<6g} default ({', '.join(sorted(chosen))}) "
              f"{scores.pop('default'):.3f}  " +
              "  ".join(f"{label} {score:.3f}" for label, score in scores.items()), flush=True)

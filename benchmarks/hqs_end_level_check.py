"""Where should HQS's coupling levels end on a noisy measurement: at the noise, or below it?

HQS's levels descend from ``sigma_start`` to ``sigma_end`` (``solvers.hqs``); ``end_level``
says what the measurement's noise does to the last one: ``noise`` raises it to the noise (the
rule of plug-and-play HQS, solve's default before commit 586d205), ``fixed`` keeps the tuned
``sigma_end`` (solve's default since, but for denoising). The tuned entries were
chosen at noise 0 (inpainting) and 0.01 (deblurring, super-resolution), where the two rules
agree; this scores both above those levels, with the prior's tuned HQS entry for the task,
next to its tuned MAP and to what ``solve`` runs by default, on the validation crops ``em-inverse
tune`` uses (6 crops of 128 px of the SPEC 6 TRAINING images; Fashion-MNIST: the first
``--count`` training images), as mean PSNR (dB, 8-px border, none for Fashion-MNIST;
estimates clipped to [0, 1]; a solve that diverges scores 0 dB and marks its mean with *).
``noise, sigma x 1.01`` reruns the old rule at a noise level given 1% too high: a stable
solver hardly moves.

    python benchmarks/hqs_end_level_check.py natural-gray [--noise 0.02,0.05,0.1,0.15]
        [--tasks inpaint-50,deblur-gauss,superres-x2] [--count 20]
"""
import argparse

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import fashion_training_images, validation_images
from em_inverse.solvers import SolverError

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("--noise", default="0.02,0.05,0.1,0.15", help="Gaussian noise stds")
parser.add_argument("--tasks", default="inpaint-50,deblur-gauss,superres-x2")
parser.add_argument("--count", type=int, default=20, help="Fashion-MNIST images")
args = parser.parse_args()

prior = load_prior(args.prior)
fixed_size = prior.image_size is not None
images = (fashion_training_images(args.count) if fixed_size
          else validation_images(prior.channels, 128, 6))
border = 0 if fixed_size else 8
blur = "gaussian:1" if fixed_size else "gaussian:2"
TASKS = {"inpaint-50": {"family": "inpaint", "missing": 0.5},
         "deblur-gauss": {"family": "deblur", "kernel": blur},
         "superres-x2": {"family": "superres", "factor": 2}}
RUNS = {"default": lambda s: (None, {}),
        "map": lambda s: ("map", {}),
        "hqs, end at noise": lambda s: ("hqs", {"end_level": "noise"}),
        "noise, sigma x 1.01": lambda s: ("hqs", {"end_level": "noise", "sigma": 1.01 * s}),
        "hqs, fixed end": lambda s: ("hqs", {"end_level": "fixed"})}

print(f"{args.prior}: mean PSNR (dB) over {len(images)} images")
print(f"{'task':14s}{'noise':>7s}" + "".join(f"{label:>21s}" for label in RUNS))
for name in args.tasks.split(","):
    for sigma in (float(s) for s in args.noise.split(",")):
        task = Task(name, sigma=sigma, **TASKS[name])
        scores = {label: [] for label in RUNS}
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            for label, run in RUNS.items():
                method, options = run(sigma)
                try:
                    estimate = solve(y, physics, prior, method, progress=False, **options).estimate
                    scores[label].append(psnr(estimate.clamp(0, 1), x, border=border))
                except SolverError:
                    scores[label].append(0.0)
        print(f"{name:14s}{sigma:7g}" + "".join(f"{np.mean(v):20.2f}{'*' if min(v) == 0 else ' '}"
                                                for v in scores.values()), flush=True)

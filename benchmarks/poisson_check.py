"""Poisson (shot) noise: what do the per-pixel data term and each tuned method give?

The bundled priors' defaults were tuned on Gaussian noise of one level per image. A low-light
measurement y = Poisson(P A x) / P has noise of variance (A x) / P: several times larger in the
highlights than in the shadows. This measures, on TRAINING crops only, three ways to solve it:

- ``as gaussian``: the operator without a noise model, so ``solve`` estimates one Gaussian level
  from y and runs the prior's default (what a user without Poisson support gets);
- ``poisson hqs`` / ``poisson map``: the operator with its Poisson model (``--photons``): a
  variance per pixel in the data term (``operators.shot_noise``), then the prior's tuned HQS
  entry for the task, or its tuned MAP entry (both picked at the effective level: the root mean
  variance).

    python benchmarks/poisson_check.py natural-gray                 # 6 crops of 128 px
    python benchmarks/poisson_check.py natural-gray --photons 10,100

PSNR over the crops with an 8-px border ignored. One thread.
"""
import argparse
import copy

import numpy as np
import torch
from deepinv.physics import ZeroNoise

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import validation_images

FAMILIES = {"denoise": {}, "inpaint-50": {"missing": 0.5}, "deblur-gauss": {"kernel": "gaussian:2"},
            "superres-x2": {"factor": 2}}

parser = argparse.ArgumentParser()
parser.add_argument("prior", choices=("natural-gray", "natural-rgb"))
parser.add_argument("--photons", default="20,100",
                    help="photons per unit intensity, comma-separated")
parser.add_argument("--tasks", default=",".join(FAMILIES))
parser.add_argument("--count", type=int, default=6)
args = parser.parse_args()
torch.set_num_threads(1)

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, args.count)
print("photons  task           measured  as gaussian  poisson hqs  poisson map")
for photons in [float(p) for p in args.photons.split(",")]:
    for name in args.tasks.split(","):
        task = Task(f"{name}-p{photons:g}", name.split("-")[0], 0.0, photons=photons,
                    **FAMILIES[name])
        scores = {"measured": [], "as gaussian": [], "poisson hqs": [], "poisson map": []}
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            unknown = copy.deepcopy(physics)
            unknown.noise_model = ZeroNoise()
            runs = {"as gaussian": solve(y, unknown, prior, progress=False),
                    "poisson hqs": solve(y, physics, prior, "hqs", progress=False),
                    "poisson map": solve(y, physics, prior, "map", progress=False)}
            if y.shape == x.shape:
                scores["measured"].append(psnr(y.clamp(0, 1), x, border=8))
            for label, solution in runs.items():
                scores[label].append(psnr(solution.estimate.clamp(0, 1), x, border=8))
        means = {k: (f"{np.mean(v):8.2f}" if v else "       -") for k, v in scores.items()}
        print(f"{photons:7g}  {name:13s} {means['measured']}  {means['as gaussian']:>11s}  "
              f"{means['poisson hqs']:>11s}  {means['poisson map']:>11s}", flush=True)

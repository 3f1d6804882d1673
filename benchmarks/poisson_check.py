"""Poisson (shot) noise: what do the per-pixel data term and each tuned method give?

The bundled priors' defaults were tuned on Gaussian noise of one level per image. A low-light
measurement y = Poisson(P A x) / P has noise of variance (A x) / P: several times larger in the
highlights than in the shadows. This measures, on TRAINING crops only, three ways to solve it:

- ``as gaussian``: the operator without a noise model, so ``solve`` estimates one Gaussian level
  from y and runs the prior's default (what a user without Poisson support gets);
- ``poisson hqs`` / ``poisson map``: the operator with its Poisson model (``--photons``): a
  variance per pixel in the data term (``operators.shot_noise``), then the prior's tuned HQS
  entry for the task, or its tuned MAP entry (both picked at the effective level: the root mean
  variance); for denoising with ``stabilise=False``;
- ``anscombe hqs`` / ``anscombe map`` (denoising only): the Gaussian denoising of y's
  generalised Anscombe transform with the tuned HQS or MAP at its level, mapped back
  (``solvers.stabilised``, the default for denoising).

    python benchmarks/poisson_check.py natural-gray                 # 6 crops of 128 px
    python benchmarks/poisson_check.py natural-gray --photons 10,100 --per-crop   # + dark shares
    python benchmarks/poisson_check.py fashion-mnist --count 20     # first training images

PSNR over the crops with an 8-px border ignored (Fashion-MNIST: none). One thread.
"""
import argparse
import copy

import numpy as np
import torch
from deepinv.physics import ZeroNoise

from em_inverse import load_prior, solve
from em_inverse.solvers import SolverError
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import fashion_training_images, validation_crops

FAMILIES = {"denoise": {}, "inpaint-50": {"missing": 0.5}, "deblur-gauss": {"kernel": "gaussian:2"},
            "superres-x2": {"factor": 2}}

#: ``--per-crop`` also prints each crop's share of values below this intensity ("dark").
DARK = 0.1

parser = argparse.ArgumentParser()
parser.add_argument("prior", choices=("natural-gray", "natural-rgb", "fashion-mnist"))
parser.add_argument("--photons", default="20,100",
                    help="photons per unit intensity, comma-separated")
parser.add_argument("--tasks", default=",".join(FAMILIES))
parser.add_argument("--count", type=int, default=6)
parser.add_argument("--per-crop", action="store_true", help="also print every crop's scores")
args = parser.parse_args()
torch.set_num_threads(1)

prior = load_prior(args.prior)
fixed = prior.image_size is not None  # fashion-mnist: its first training images, no border
crops = ([(f"image {k}", x) for k, x in enumerate(fashion_training_images(args.count))]
         if fixed else validation_crops(prior.channels, 128, args.count))
images = [x for _, x in crops]
border = 0 if fixed else 8
diverged = 0


def score(y, operator, method, options, x) -> float:
    """PSNR of solve's estimate; 0 dB for a solve that diverges (``SolverError``)."""
    global diverged
    try:
        estimate = solve(y, operator, prior, method, progress=False, **options).estimate
    except SolverError:
        diverged += 1
        return 0.0
    return psnr(estimate.clamp(0, 1), x, border=border)


def column(values: list[float]) -> str:
    """The mean of ``values`` (a 14-character column), marked * if one of them is 0 dB."""
    if not values:
        return f"{'-':>14s}"
    return f"{np.mean(values):13.2f}{'*' if min(values) == 0 else ' '}"


COLUMNS = ("measured", "as gaussian", "poisson hqs", "poisson map", "anscombe hqs",
           "anscombe map")
print("photons  task         " + "".join(f"{label:>14s}" for label in COLUMNS))
for photons in [float(p) for p in args.photons.split(",")]:
    for name in args.tasks.split(","):
        task = Task(f"{name}-p{photons:g}", name.split("-")[0], 0.0, photons=photons,
                    **FAMILIES[name])
        scores = {label: [] for label in COLUMNS}
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            unknown = copy.deepcopy(physics)
            unknown.noise_model = ZeroNoise()
            runs = {"as gaussian": (unknown, None, {})}
            for method in ("hqs", "map"):
                runs[f"poisson {method}"] = (physics, method, {"stabilise": False})
                if task.family == "denoise":
                    runs[f"anscombe {method}"] = (physics, method, {})
            if y.shape == x.shape:
                scores["measured"].append(psnr(y.clamp(0, 1), x, border=border))
            for label, (operator, method, options) in runs.items():
                scores[label].append(score(y, operator, method, options, x))
        print(f"{photons:7g}  {name:12s}" + "".join(column(scores[label]) for label in COLUMNS),
              flush=True)
        for k, (crop, x) in enumerate(crops if args.per_crop else []):
            row = [column(scores[label][k:k + 1]) for label in COLUMNS]
            dark = float((x < DARK).float().mean())  # values that count 0 or 1 photons at 10
            print(f"{'':9s}{crop[:12]:12s}" + "".join(row) + f"  {dark:4.0%} dark", flush=True)
if diverged:
    print(f"{diverged} solve(s) diverged (SolverError): scored 0 dB and marked *")

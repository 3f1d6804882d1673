"""Does the box-hole default hold for larger holes? The tuner chooses it on 128-px crops
(a 32x32 hole); this runs it on crops of another size (256: a 64x64 hole, the size of the
benchmark's hole on its 256-px test crops) of the same TRAINING images, never test images.

    python benchmarks/box_hole_scale_check.py PRIOR [--size 256]

Prints, per trial, the mean PSNR (dB, 8-px border, estimates clipped to [0, 1]) and each
crop's: the solvers' start (the biharmonic fill), ``solve``'s default for the hole (the
prior's ``inpaint-hole`` entry), MAP at half its weight, and HQS at a few of the tuner's
settings. One thread, as the tuner's timings.
"""
import argparse
import time

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import validation_images
from em_inverse.solvers.init import initial_estimate

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("--size", type=int, default=256)
args = parser.parse_args()
torch.set_num_threads(1)

prior = load_prior(args.prior)
images = validation_images(prior.channels, args.size, 6)
task = Task("inpaint-box", "inpaint", 0.0, box=0.25)
problems = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
hole = prior.solve_defaults["inpaint-hole"]
map_weight = hole["map"]["prior_weight"]
trials = [("default", None, {}),
          (f"map w={map_weight / 2:g}", "map", dict(prior_weight=map_weight / 2)),
          *((f"hqs {s:g} w={w:g}", "hqs", dict(steps=40, sigma_start=s, prior_weight=w,
                                               symmetry="none"))
            for s, w in ((0.05, 0.25), (0.1, 0.25), (0.05, 0.5), (0.2, 0.25)))]
print(f"{args.prior}: {len(images)} crops of {args.size} px, box {task.box} of each side; "
      f"default: {hole['method']} {hole[hole['method']]}", flush=True)
start = [psnr(initial_estimate(y, physics, tuple(x.shape)).clamp(0, 1), x, border=8)
         for x, (physics, y) in zip(images, problems)]
print(f"{'start':16s} {np.mean(start):.2f} {np.round(start, 2)}", flush=True)
for label, method, options in trials:
    began = time.perf_counter()
    scores = [psnr(solve(y, physics, prior, method=method, progress=False, **options)
                   .estimate.clamp(0, 1), x, border=8)
              for x, (physics, y) in zip(images, problems)]
    print(f"{label:16s} {np.mean(scores):.2f} {np.round(scores, 2)} "
          f"({time.perf_counter() - began:.0f} s)", flush=True)

"""Would a clean entry tuned over the levels solve cannot tell apart hold at both?

``solve`` floors the noise level at 1/255, so a measurement without noise and one at 0.0025 take
the same entry; the ``FAMILY-clean`` entries are tuned on exactly noiseless measurements only.
This scores, on the 6 TRAINING crops of 128 px that the tuner uses, the clean entry's method
with its tuned options but the prior weights given, and the 0.01 entry's settings, at noise 0
and 0.0025. Mean PSNR (dB, 8-px border, estimates clipped to [0, 1]).

    python benchmarks/clean_entry_levels_check.py natural-gray --family deblur \\
        --weights 0.03125,0.0625,0.125 [--step-cap C]

``--step-cap`` sets HQS's step cap (``inf``: none, as before the cap became ``solve``'s
default; default: ``solve``'s, 1.5).
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images
from em_inverse.solvers import CLEAN_SUFFIX

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("--family", default="deblur", choices=("deblur", "superres"))
parser.add_argument("--weights", default="0.03125,0.0625,0.125")
parser.add_argument("--step-cap", type=float, help="HQS step cap (inf: none; default: solve's)")
args = parser.parse_args()
cap = {} if args.step_cap is None else {"step_cap": args.step_cap}
torch.set_num_threads(2)

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, 6)
template = next(t for t in TUNING_TASKS if t.family == args.family and t.sigma > 0)
clean = prior.solve_defaults[args.family + CLEAN_SUFFIX]
noisy = prior.solve_defaults[args.family]
prior = prior.copy_with(solve_defaults={})  # each trial runs its own options, as in the tuner
trials = {f"{args.family} {noisy['method']}": (noisy["method"], noisy[noisy["method"]])}
for weight in map(float, args.weights.split(",")):
    options = {**clean[clean["method"]], "prior_weight": weight}
    trials[f"clean {clean['method']} w={weight:g}"] = (clean["method"], options)
for noise in (0.0, 0.0025):
    task = Task(f"{template.name}@{noise:g}", args.family, noise, kernel=template.kernel,
                factor=template.factor)
    problems = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
    scores = []
    for label, (method, options) in trials.items():
        values = [psnr(solve(y, physics, prior, method=method, progress=False, **options, **cap)
                       .estimate.clamp(0, 1), x, border=8)
                  for x, (physics, y) in zip(images, problems)]
        scores.append(f"{label} {np.mean(values):.3f}")
    print(f"{args.family} noise {noise:<6g} " + "  ".join(scores), flush=True)

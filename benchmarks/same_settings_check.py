"""Is a retrained prior better? Two priors with the SAME solver settings on the tuning crops.

    python benchmarks/same_settings_check.py PRIOR CANDIDATE [--tasks inpaint-50,deblur-gauss]
        [--step-cap C] [--settings TUNED]

Runs ``solve`` with PRIOR's tuned defaults (``solve_defaults``, method included) for both
priors on the tasks ``em-inverse tune`` simulates (``bench.validation_set.TUNING_TASKS``) on its
validation crops (6 crops of 128 px of the SPEC 6 TRAINING images; never test images), and
prints the mean PSNR of each (dB, 8-px border, estimates clipped to [0, 1]). A cheap first
check of a new network before re-tuning it: a candidate that loses here with the old settings
rarely wins after a re-tune, one that wins is worth the re-tune. ``--step-cap`` sets HQS's step
cap (``inf``: none, as before the cap became ``solve``'s default; default: ``solve``'s, 1.5).
``--settings TUNED`` runs both with another prior's tuned defaults instead: two untuned runs
compared at the settings of a tuned prior of the same kind (e.g. ``--settings natural-gray``).
"""
import argparse
import time

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images

parser = argparse.ArgumentParser()
parser.add_argument("prior")
parser.add_argument("candidate")
parser.add_argument("--tasks", default=",".join(t.name for t in TUNING_TASKS))
parser.add_argument("--step-cap", type=float, help="HQS step cap (inf: none; default: solve's)")
parser.add_argument("--settings", metavar="TUNED",
                    help="run both with this prior's tuned defaults (default: PRIOR's)")
args = parser.parse_args()
cap = {} if args.step_cap is None else {"step_cap": args.step_cap}

reference = load_prior(args.prior)
if args.settings:
    reference = reference.copy_with(solve_defaults=load_prior(args.settings).solve_defaults)
candidate = load_prior(args.candidate).copy_with(solve_defaults=reference.solve_defaults)
images = validation_images(reference.channels, 128, 6)
for task in (t for t in TUNING_TASKS if t.name in args.tasks.split(",")):
    scores = []
    for prior in (reference, candidate):
        start, psnrs = time.perf_counter(), []
        for k, x in enumerate(images):
            physics, y = task.simulate(x, seed=100 + k)
            estimate = solve(y, physics, prior, progress=False, **cap).estimate
            psnrs.append(psnr(estimate.clamp(0, 1), x, border=8))
        scores.append((np.mean(psnrs), time.perf_counter() - start))
    (a, ta), (b, tb) = scores
    print(f"{task.name}: {args.prior} {a:.2f} dB ({ta:.0f} s), {args.candidate} {b:.2f} dB "
          f"({tb:.0f} s): {b - a:+.2f}", flush=True)

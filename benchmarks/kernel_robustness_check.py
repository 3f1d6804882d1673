"""Do the deblurring defaults hold on kernels they were not tuned on?

    python benchmarks/kernel_robustness_check.py [PRIOR] [--kernels gaussian:1,...]
        [--noise 0.01] [--count 6] [--step-cap C]

The natural priors' ``deblur`` entry is tuned on a Gaussian (std 2 px) and a 15 px motion
kernel at noise 0.01 (``bench.validation_set.TUNING_TASKS``). This scores other kernels on the
same TRAINING crops of 128 px that the tuner uses (never test images), at ``--noise``: the
default solve, MAP with the entry's own MAP settings, and Wiener deconvolution with its best
balance per crop (an oracle, for reference). It prints the mean PSNR per kernel (dB, 8-px
border, estimates clipped to [0, 1]), the default's margin over the other two, and the crops
where the default trails MAP by more than 1 dB: a schedule that wrecks an image and fails to
repair it shows there. ``--step-cap`` gives an HQS default another step cap (``inf``: none;
default: ``solve``'s, 1.5).
"""
import argparse
import time

import numpy as np

from em_inverse import load_prior, solve
from em_inverse.bench.baselines import Problem, wiener_oracle
from em_inverse.bench.metrics import psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import validation_images
from em_inverse.solvers.tuned_entries import tuned_defaults

BORDER = 8
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("prior", nargs="?", default="natural-gray")
parser.add_argument("--kernels", default="gaussian:1,gaussian:2,gaussian:3,motion:9,0,"
                    "motion:15,30,motion:21,120",
                    help="comma-separated gaussian:STD or motion:LENGTH,ANGLE kernels")
parser.add_argument("--noise", type=float, default=0.01, help="noise std on the [0, 1] scale")
parser.add_argument("--count", type=int, default=6, help="training crops")
parser.add_argument("--step-cap", type=float, help="HQS step cap (inf: none; default: solve's)")
args = parser.parse_args()


def kernels(text: str) -> list[str]:
    """Split ``gaussian:1,motion:9,0`` into kernels (a motion kernel's angle follows a comma)."""
    out = []
    for part in text.split(","):
        if out and out[-1].startswith("motion:") and "," not in out[-1] and ":" not in part:
            out[-1] += "," + part
        else:
            out.append(part)
    return out


prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, args.count)
map_settings = prior.solve_defaults.get("deblur", {}).get("map", {})
print(f"{args.prior}: {len(images)} training crops of 128 px, noise {args.noise:g}; "
      f"MAP with {map_settings}")
for kernel in kernels(args.kernels):
    task = Task(f"deblur-{kernel}", "deblur", args.noise, kernel=kernel)
    start = time.perf_counter()
    scores = {"default": [], "map": [], "wiener (oracle)": []}
    for k, x in enumerate(images):
        physics, y = task.simulate(x, seed=100 + k)
        cap = ({"step_cap": args.step_cap} if args.step_cap is not None
               and tuned_defaults(prior, physics, args.noise)[1].get("method") == "hqs" else {})
        default = solve(y, physics, prior, progress=False, **cap)
        scores["default"].append(psnr(default.estimate.clamp(0, 1), x, border=BORDER))
        map_estimate = solve(y, physics, prior, method="map", progress=False,
                             **map_settings).estimate
        scores["map"].append(psnr(map_estimate.clamp(0, 1), x, border=BORDER))
        problem = Problem("deblur", args.noise, tuple(x.shape), BORDER)
        wiener = wiener_oracle(y, physics, problem, truth=x)
        scores["wiener (oracle)"].append(psnr(wiener, x, border=BORDER))
    means = {name: float(np.mean(v)) for name, v in scores.items()}
    trailing = [f"{k} ({d:.2f} against {m:.2f})"
                for k, (d, m) in enumerate(zip(scores["default"], scores["map"])) if d < m - 1]
    print(f"{kernel:>14}: default {means['default']:.2f} ({default.settings['method']}), "
          f"MAP {means['map']:.2f}, Wiener (oracle) {means['wiener (oracle)']:.2f}; "
          f"default - MAP {means['default'] - means['map']:+.2f}, "
          f"- Wiener {means['default'] - means['wiener (oracle)']:+.2f}; "
          f"crops where the default trails MAP by > 1 dB: {', '.join(trailing) or 'none'} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)

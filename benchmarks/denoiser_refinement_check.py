"""Does a second HQS level below the noise refine the one-step denoiser? (TRAINING crops only.)

    python benchmarks/denoiser_refinement_check.py [PRIOR] [--levels 2,5,10,25,50]
        [--sigma-end 0.01] [--steps 2] [--below-noise 4]

Denoises the validation crops ``em-inverse tune`` uses (6 crops of 128 px of the SPEC 6
training images; Fashion-MNIST priors: the first 20 training images) at each noise level
(/255) with the one-step Tweedie denoiser (HQS, one level: the noise sigma) and with
``--steps`` levels from the noise sigma down to ``sigma_end`` (``end_level="below-noise"``),
both with the prior's tuned symmetry for denoising, next to the noisy input and to what
``solve`` does without a method (the prior's tuned default, MAP above its trained noise
levels), as mean PSNR (dB, 8-px border, estimates clipped to [0, 1]). ``--below-noise`` overrides
``solvers.api.LEVELS_BELOW_NOISE`` (the second level is at most noise / that factor; 1 turns the
guard off).
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior, operators, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import fashion_training_images, validation_images
from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.solvers import api

parser = argparse.ArgumentParser()
parser.add_argument("prior", nargs="?", default="natural-gray")
parser.add_argument("--levels", default="2,5,10,25,50")
parser.add_argument("--sigma-end", type=float, default=0.01)
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--below-noise", type=float, default=api.LEVELS_BELOW_NOISE)
args = parser.parse_args()
api.LEVELS_BELOW_NOISE = args.below_noise

tuned = load_prior(args.prior)
symmetry = tuned.solve_defaults.get("denoise", {}).get("hqs", {}).get("symmetry", "none")
prior = tuned.copy_with(solve_defaults={})
fixed = prior.image_size is not None
images = fashion_training_images(20) if fixed else validation_images(prior.channels, 128, 6)
border = 0 if fixed else 8
one_step = {"steps": 1, "symmetry": symmetry}
finer = {"steps": args.steps, "sigma_start": MIN_SIGMA, "sigma_end": args.sigma_end,
              "end_level": "below-noise", "symmetry": symmetry}
print(f"{args.prior} (symmetry {symmetry}); {args.steps} levels down to {args.sigma_end}, at "
      f"most noise / {args.below_noise:g}")
for level in (int(v) for v in args.levels.split(",")):
    sigma = level / 255
    scores = {"noisy": [], "one level": [], "finer": [], "default": []}
    default_methods = set()
    for k, x in enumerate(images):
        physics = operators.build_operator("denoise", tuple(x.shape[1:]), noise=sigma)
        y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + k))
        scores["noisy"].append(psnr(y.clamp(0, 1), x, border=border))
        for name, options in (("one level", one_step), ("finer", finer)):
            estimate = solve(y, physics, prior, method="hqs", progress=False, **options).estimate
            scores[name].append(psnr(estimate.clamp(0, 1), x, border=border))
        default = solve(y, physics, tuned, progress=False)
        scores["default"].append(psnr(default.estimate.clamp(0, 1), x, border=border))
        default_methods.add(default.settings["method"])
    noisy, one, more = (np.mean(scores[k]) for k in ("noisy", "one level", "finer"))
    print(f"  sigma {level:>3}/255: noisy {noisy:.2f} dB; one level {one:.2f}, {args.steps} levels "
          f"{more:.2f} ({more - one:+.2f}); solve's default {np.mean(scores['default']):.2f} "
          f"({', '.join(sorted(default_methods))})", flush=True)

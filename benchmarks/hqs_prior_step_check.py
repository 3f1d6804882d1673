"""Variants of HQS's prior step, on the TRAINING crops ``em-inverse tune`` uses.

    python benchmarks/hqs_prior_step_check.py [PRIOR] [--task deblur-gauss] [--kernel K]
        [--variants plain:40,plain:20,cap1:20,cap2:20,renoise:40] [--sigma-start S]
        [--weight W] [--trace]

HQS's prior step is z = x - w s^2 grad V(x)/eps at level s (``solvers.hqs``). Each variant
``NAME:STEPS`` runs ``solve`` with the task's tuned HQS defaults (or ``--sigma-start`` /
``--weight``) and STEPS levels, with the prior step replaced by:

- ``plain``: the step z = x - w s^2 grad V(x)/eps, uncapped;
- ``capC``: the step scaled down, per image, to an RMS of at most C s (a trust region: a
  denoiser at level s should not move an image by much more than the noise it removes;
  ``solve``'s ``step_cap=C`` option);
- ``renoise``: grad V taken at x + s n, n ~ N(0, I), where Tweedie's formula holds for a score
  of noisy data (DiffPIR's re-noising); z = x + s n - w s^2 grad V(x + s n)/eps.

It prints the mean PSNR (dB, 8-px border, estimate clipped to [0, 1]), per crop, and the
wall time. ``--kernel`` replaces a deblurring task's kernel (e.g. ``gaussian:3``, a kernel
the defaults were not tuned on: ``benchmarks/kernel_robustness_check.py``). ``--trace``
prints, for the first crop and each variant, every level's data-step output x_k: its PSNR and
its range, and the range of the prior step's output z_k. This is the
experiment behind "The budget stage" in ``benchmarks/experiments.md`` (natural-rgb's deblurring
wrecks the image at its first prior step and recovers over 40 levels, not over 20). Never run
on test images.
"""
import argparse
import dataclasses
import time
from unittest import mock

import numpy as np
import torch

import em_inverse.solvers.api as api
from em_inverse import load_prior, solve
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import TUNING_TASKS, validation_images
from em_inverse.solvers.hqs import HQSResult, data_prox, sigma_schedule


def prior_step(variant: str, x: torch.Tensor, s: float, k: int, objective) -> torch.Tensor:
    """The prior step's output z_k (N, C, H, W) from the data step's x_k at level s."""
    if variant == "renoise":
        x = x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(k))
    _, grad = objective.prior_terms(x)
    step = objective.prior_weight * s * s * grad
    if variant.startswith("cap"):
        rms = step.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (step.dim() - 1))
        step = step * torch.clamp(float(variant[3:]) * s / rms, max=1.0)
    return x - step


def variant_hqs(variant: str, truth: torch.Tensor | None):
    """A stand-in for ``solvers.hqs.run_hqs`` with ``prior_step(variant, ...)`` as its prior
    step; with ``truth`` it prints each level (see the module docstring)."""
    def run(objective, x_init, *, iterations, sigma_start, sigma_end, cg_steps=20,
            step_cap=None, progress=None):  # the variant's step replaces solve's step_cap
        sigmas = sigma_schedule(sigma_start, sigma_end, iterations)
        x = z = x_init
        for k, s in enumerate(sigmas, start=1):
            x = data_prox(objective.fidelity, z, 1.0 / s**2, x, cg_steps)
            z = prior_step(variant, x, s, k, objective)
            if truth is not None:
                print(f"    level {k:3d} s {s:.4f}: x {psnr(x.clamp(0, 1), truth, border=8):6.2f}"
                      f" dB in [{float(x.min()):.2f}, {float(x.max()):.2f}],"
                      f" z in [{float(z.min()):.2f}, {float(z.max()):.2f}]")
        return HQSResult(x=z.detach(), trace=[], sigmas=sigmas)
    return run


parser = argparse.ArgumentParser()
parser.add_argument("prior", nargs="?", default="natural-rgb")
parser.add_argument("--task", default="deblur-gauss")
parser.add_argument("--kernel", help="another blur kernel for a deblurring task "
                                     "(gaussian:STD or motion:LENGTH,ANGLE)")
parser.add_argument("--variants", default="plain:40,plain:20,cap1:20,cap2:20,renoise:40")
parser.add_argument("--sigma-start", type=float, help="first level (default: the tuned one)")
parser.add_argument("--weight", type=float, help="prior weight w (default: the tuned one)")
parser.add_argument("--trace", action="store_true", help="print every level of the first crop")
args = parser.parse_args()

prior = load_prior(args.prior)
images = validation_images(prior.channels, 128, 6)
task = next(t for t in TUNING_TASKS if t.name == args.task)
if args.kernel:
    if task.family != "deblur":
        parser.error("--kernel needs a deblurring task")
    task = dataclasses.replace(task, name=f"deblur-{args.kernel}", kernel=args.kernel)
cases = [task.simulate(x, seed=100 + k) for k, x in enumerate(images)]
options = {"method": "hqs"}
if args.sigma_start is not None:
    options["sigma_start"] = args.sigma_start
if args.weight is not None:
    options["prior_weight"] = args.weight
for spec in args.variants.split(","):
    variant, steps = spec.split(":")
    if not (variant in ("plain", "renoise") or variant.startswith("cap")):
        parser.error(f"unknown variant {variant!r}")
    start, scores = time.perf_counter(), []
    for k, (x, (physics, y)) in enumerate(zip(images, cases)):
        if args.trace and k == 0:
            print(f"{spec}, first crop:")
        truth = x if args.trace and k == 0 else None
        with mock.patch.object(api, "run_hqs", variant_hqs(variant, truth)):
            estimate = solve(y, physics, prior, steps=int(steps), progress=False,
                             **options).estimate
        scores.append(psnr(estimate.clamp(0, 1), x, border=8))
    print(f"{args.prior} {task.name} {spec}: {np.mean(scores):.2f} dB "
          f"({', '.join(f'{v:.2f}' for v in scores)}; {time.perf_counter() - start:.0f} s)",
          flush=True)

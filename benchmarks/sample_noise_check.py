"""How noisy are unconditional samples, before and after their final Tweedie step?

    python benchmarks/sample_noise_check.py [--prior fashion-mnist] [-n 64] [--seed 0]

Prints the mean wavelet noise estimate (``wavelet_noise_sigma``, [0, 1] scale) of n samples
as the chains end (``em-inverse sample --no-denoise``), of the same samples after
``denoise_samples`` (the default), and of the first n Fashion-MNIST TRAINING images.
"""
import argparse

import torch

from em_inverse import load_prior
from em_inverse.bench.validation_set import fashion_training_images
from em_inverse.devices import make_generator
from em_inverse.operators.noise_estimation import wavelet_noise_sigma
from em_inverse.priors.sampling import denoise_samples, sample_prior

parser = argparse.ArgumentParser()
parser.add_argument("--prior", default="fashion-mnist")
parser.add_argument("-n", type=int, default=64)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.set_num_threads(1)

prior = load_prior(args.prior)
chains = sample_prior(prior, args.n, generator=make_generator(args.seed, "cpu"), denoise=False)
rows = {"samples as the chains end": chains,
        "samples after the Tweedie step": denoise_samples(prior, chains),
        "Fashion-MNIST training images": torch.cat(fashion_training_images(args.n))}
for label, images in rows.items():
    print(f"{label:32s} noise estimate {float(wavelet_noise_sigma(images).mean()):.3f}")

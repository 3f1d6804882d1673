"""How good a prior's score is: Tweedie's denoiser on TRAINING-image validation crops.

    python benchmarks/tweedie_check.py PRIOR [PRIOR ...]      # bundled names or run folders

For a V trained with the denoising-score term, x_hat = y - s^2 grad V(y)/eps is the MMSE
denoiser at noise level s (no free constant). Prints the mean PSNR (dB, 8-px border, estimate
clipped to [0, 1]) on the crops ``em-inverse tune`` uses, at s = 10, 25 and 50 /255, next to
the noisy input's: a cheap check of a checkpoint while it trains (never on test images).
"""
import argparse

import numpy as np
import torch

from em_inverse import load_prior
from em_inverse.bench.metrics import psnr
from em_inverse.bench.validation_set import fashion_training_images, validation_images

parser = argparse.ArgumentParser()
parser.add_argument("priors", nargs="+", metavar="PRIOR", help="bundled name or run folder")
for source in parser.parse_args().priors:
    prior = load_prior(source)
    images = (fashion_training_images(20) if prior.image_size is not None
              else validation_images(prior.channels, 128, 6))
    border = 0 if prior.image_size is not None else 8
    for level in (10, 25, 50):
        s = level / 255
        noisy, denoised = [], []
        for k, x in enumerate(images):
            y = x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + k))
            noisy.append(psnr(y.clamp(0, 1), x, border=border))
            denoised.append(psnr((y - s * s * prior.grad(y)).clamp(0, 1), x, border=border))
        print(f"{source}  sigma {level}/255: noisy {np.mean(noisy):.2f} dB -> "
              f"Tweedie {np.mean(denoised):.2f} dB")

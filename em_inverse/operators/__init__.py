"""Forward operators: thin constructors over deepinv physics, masks, kernels, noise (Gaussian
and Poisson), fidelity.

Images are (B, C, H, W) in [0, 1]; noise levels are standard deviations on that scale. Any
``deepinv.physics.LinearPhysics`` works with the solvers; ours add a ``task`` name.
"""
from em_inverse.operators.build import build_operator, image_shape_for
from em_inverse.operators.degrade import degrade
from em_inverse.operators.fidelity import GaussianFidelity
from em_inverse.operators.kernels import gaussian_kernel, load_kernel, motion_kernel, parse_kernel
from em_inverse.operators.masks import (box_mask, mask_from_file, parse_mask, random_mask,
                                        stroke_mask)
from em_inverse.operators.noise import MIN_SIGMA, noise_sigma
from em_inverse.operators.noise_estimation import estimate_noise_sigma, wavelet_noise_sigma
from em_inverse.operators.physics import (TASKS, deblurring, denoising, inpainting, lipschitz,
                                          superresolution, task_of)
from em_inverse.operators.shot_noise import poisson_noise

__all__ = ["MIN_SIGMA", "TASKS", "GaussianFidelity", "box_mask", "build_operator", "deblurring",
           "degrade", "denoising", "estimate_noise_sigma", "gaussian_kernel", "image_shape_for",
           "inpainting", "lipschitz", "load_kernel", "mask_from_file", "motion_kernel",
           "noise_sigma", "parse_kernel", "parse_mask", "poisson_noise", "random_mask",
           "stroke_mask",
           "superresolution", "task_of", "wavelet_noise_sigma"]

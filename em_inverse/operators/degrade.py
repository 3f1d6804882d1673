"""The one simulation path: clean image -> noisy measurement (CLI ``degrade`` and benchmarks)."""
from __future__ import annotations

import torch
from deepinv.physics import Inpainting

from em_inverse.errors import UserError
from em_inverse.operators.noise import noise_sigma
from em_inverse.operators.shot_noise import draw_shot_noise, noise_photons, read_noise_sigma


@torch.no_grad()
def degrade(x: torch.Tensor, physics, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulate y = A x + sigma * n, n ~ N(0, I) drawn from ``generator`` (seed-reproducible;
    None: torch's global generator, so two calls give two noise draws).

    x: (B, C, H, W) in [0, 1]. sigma is the physics' Gaussian noise level (none: y = A x). A
    Poisson noise model (``shot_noise``) draws y = Poisson(P A x) / P first, then its read
    noise.
    For inpainting, noise is only added to observed pixels (missing ones stay 0).
    Returns y on x's device; values are not clipped (clip when saving as an image).
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise UserError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    try:
        y = physics.A(x)
    except RuntimeError as exc:  # an operator built for other images: say so, briefly
        reason = str(exc).strip().splitlines()[0]
        raise UserError(f"the operator does not fit images of shape {tuple(x.shape)} (was it "
                        f"built for another size?): {reason}") from None
    photons = noise_photons(physics)
    if photons is not None:  # shot noise first (missing pixels, at 0, stay 0), then read noise
        y = draw_shot_noise(y, photons, generator)
        sigma = read_noise_sigma(physics)
    else:
        sigma = noise_sigma(physics)
    if sigma:
        device = generator.device if generator is not None else y.device
        noise = torch.randn(y.shape, generator=generator, device=device, dtype=y.dtype)
        noise = noise.to(y.device)
        if isinstance(physics, Inpainting):
            noise = noise * (physics.mask > 0)
        y = y + sigma * noise
    return y

"""Benchmark tasks (SPEC 7): what is measured, and the one simulation path every method shares.

A :class:`Task` names a degradation: its family, the noise level (std on the [0, 1] scale) and
its parameters (mask, kernel, factor). ``task.simulate(x, seed)`` builds the operator with the
package's own constructors (``em_inverse.operators``) and draws the measurement with an explicit
``torch.Generator``: the random mask and the noise come from ``seed`` only, so every method sees
the very same ``y`` and a rerun reproduces it bit for bit on CPU.

Natural-image tasks (images of a few hundred pixels): denoise sigma 15, 25, 50 (/255); inpaint
50% and 80% random missing pixels (no noise) and a centred box hole of a quarter of each side
(64x64 at 256x256, no noise); Gaussian deblur (std 2 px) and motion deblur (15 px at 30 degrees),
noise 0.01; super-resolution x2 and x4 (bicubic downsampling), noise 0.01.

Fashion-MNIST tasks (28x28) are the same families with sizes scaled to the image: the box hole
is the centred 12x12 of issue 4, Gaussian blur std 1 px and motion blur 7 px.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FAMILIES = ("denoise", "inpaint", "deblur", "superres")


@dataclass(frozen=True)
class Task:
    """One degradation.

    Attributes:
        name: short id used in tables and files (``denoise-25``, ``inpaint-box``...).
        family: ``denoise``, ``inpaint``, ``deblur`` or ``superres``.
        sigma: Gaussian noise std on the [0, 1] scale (0 = noiseless).
        missing: inpainting, random masks: fraction of missing pixels.
        box: inpainting, centred hole: (height, width) in pixels, or a float f for a hole of
            f*H x f*W pixels.
        kernel: deblurring, ``gaussian:STD`` or ``motion:LENGTH,ANGLE`` (pixels, degrees).
        factor: super-resolution factor.
        photons: Poisson (shot) noise of this many photons per unit intensity, with ``sigma``
            as read noise (``operators.shot_noise``); None: Gaussian noise alone.
        label: human-readable description for tables.
    """

    name: str
    family: str
    sigma: float
    missing: float | None = None
    box: tuple[int, int] | float | None = None
    kernel: str | None = None
    factor: int | None = None
    photons: float | None = None
    label: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown task family {self.family!r}; known: {FAMILIES}")

    # -- the operator -----------------------------------------------------------------------------
    def box_pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The centred hole as (top, left, height, width) for an image of height x width."""
        if isinstance(self.box, float):
            bh, bw = max(1, round(self.box * height)), max(1, round(self.box * width))
        else:
            bh, bw = self.box
        return (height - bh) // 2, (width - bw) // 2, bh, bw

    def operator(self, image_shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu"):
        """The deepinv ``LinearPhysics`` of this task for images of ``image_shape`` (.., C, H, W),
        built by ``em_inverse.operators.build_operator`` (the CLI's path); random masks are drawn
        from ``generator``."""
        from em_inverse.operators import build_operator

        shape = tuple(image_shape)[-3:]
        options: dict = {"noise": self.sigma, "photons": self.photons}
        if self.family == "inpaint":
            if self.missing is not None:
                options["mask"] = f"random:{self.missing:g}"
            else:
                options["mask"] = "box:" + ",".join(str(v) for v in self.box_pixels(*shape[-2:]))
        elif self.family == "deblur":
            options["kernel"] = self.kernel
        elif self.family == "superres":
            options["factor"] = self.factor
        return build_operator(self.family, shape, generator=generator, device=device, **options)

    def simulate(self, x: torch.Tensor, seed: int):
        """(physics, y) for the clean image x (1, C, H, W): the measurement every method sees.

        The random mask (if any) and then the noise are drawn from one generator seeded with
        ``seed`` (on x's device), through ``em_inverse.operators.degrade``, the path shared with
        ``em-inverse degrade``.
        """
        from em_inverse.operators import degrade

        generator = torch.Generator(device=x.device).manual_seed(int(seed))
        physics = self.operator(tuple(x.shape), generator, device=x.device)
        return physics, degrade(x, physics, generator)


def natural_tasks() -> list[Task]:
    """The natural-image tasks of SPEC 7; noiseless deblurring and super-resolution (which
    ``solve`` runs with the prior's ``-clean`` settings, where it has them); both at noise
    0.005, between the two tuned levels (``-faint``: there the switch decides which settings
    run, ``bench.clean_switch``); inpainting and deblurring at noise 0.05, above every tuned
    level (``-noisy``); and denoising and deblurring under Poisson noise (``-poisson-P``: P
    photons per unit intensity, ``operators.shot_noise``)."""
    return [
        Task("denoise-15", "denoise", 15 / 255, label="denoise sigma 15/255"),
        Task("denoise-25", "denoise", 25 / 255, label="denoise sigma 25/255"),
        Task("denoise-50", "denoise", 50 / 255, label="denoise sigma 50/255"),
        Task("inpaint-50", "inpaint", 0.0, missing=0.5, label="inpaint 50% random missing"),
        Task("inpaint-80", "inpaint", 0.0, missing=0.8, label="inpaint 80% random missing"),
        Task("inpaint-box", "inpaint", 0.0, box=0.25, label="inpaint centred box, 1/4 of each side"),
        Task("deblur-gauss", "deblur", 0.01, kernel="gaussian:2",
             label="Gaussian deblur std 2, noise 0.01"),
        Task("deblur-motion", "deblur", 0.01, kernel="motion:15,30",
             label="motion deblur 15 px at 30 deg, noise 0.01"),
        Task("superres-x2", "superres", 0.01, factor=2, label="super-resolution x2, noise 0.01"),
        Task("superres-x4", "superres", 0.01, factor=4, label="super-resolution x4, noise 0.01"),
        Task("deblur-gauss-clean", "deblur", 0.0, kernel="gaussian:2",
             label="Gaussian deblur std 2, no noise"),
        Task("superres-x2-clean", "superres", 0.0, factor=2,
             label="super-resolution x2, no noise"),
        Task("deblur-gauss-faint", "deblur", 0.005, kernel="gaussian:2",
             label="Gaussian deblur std 2, noise 0.005"),
        Task("superres-x2-faint", "superres", 0.005, factor=2,
             label="super-resolution x2, noise 0.005"),
        Task("inpaint-50-noisy", "inpaint", 0.05, missing=0.5,
             label="inpaint 50% random missing, noise 0.05"),
        Task("deblur-gauss-noisy", "deblur", 0.05, kernel="gaussian:2",
             label="Gaussian deblur std 2, noise 0.05"),
        Task("denoise-poisson-30", "denoise", 0.0, photons=30,
             label="denoise Poisson noise, 30 photons at white"),
        Task("deblur-poisson-100", "deblur", 0.0, kernel="gaussian:2", photons=100,
             label="Gaussian deblur std 2, Poisson noise, 100 photons at white"),
    ]


def fashion_tasks() -> list[Task]:
    """The Fashion-MNIST tasks (28x28): the natural families, sizes scaled to the image."""
    scaled = {"inpaint-box": Task("inpaint-box", "inpaint", 0.0, box=(12, 12),
                                  label="inpaint centred 12x12 box"),
              "deblur-gauss": Task("deblur-gauss", "deblur", 0.01, kernel="gaussian:1",
                                   label="Gaussian deblur std 1, noise 0.01"),
              "deblur-motion": Task("deblur-motion", "deblur", 0.01, kernel="motion:7,30",
                                    label="motion deblur 7 px at 30 deg, noise 0.01"),
              "deblur-gauss-clean": Task("deblur-gauss-clean", "deblur", 0.0, kernel="gaussian:1",
                                         label="Gaussian deblur std 1, no noise"),
              "deblur-gauss-faint": Task("deblur-gauss-faint", "deblur", 0.005,
                                         kernel="gaussian:1",
                                         label="Gaussian deblur std 1, noise 0.005"),
              "deblur-gauss-noisy": Task("deblur-gauss-noisy", "deblur", 0.05,
                                         kernel="gaussian:1",
                                         label="Gaussian deblur std 1, noise 0.05")}
    return [scaled.get(t.name, t) for t in natural_tasks()]

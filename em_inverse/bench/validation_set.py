"""The tuner's validation set: crops of the SPEC 6 TRAINING images (for fixed-size priors, the
first Fashion-MNIST training images), the tasks simulated on them, and which ``solve_defaults``
entry each task tunes. ``em-inverse tune`` scores settings here, and so do the check scripts
under ``benchmarks/``; never on test images. Images are (1, C, H, W) tensors in [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

from em_inverse.bench.tasks import Task
from em_inverse.solvers.tuned_entries import (CLEAN_BELOW, CLEAN_FAMILIES, CLEAN_SUFFIX, HOLE_KEY,
                                              TUNED_NOISE)
from em_inverse.training.datasets import skimage_training_image, to_gray

#: Validation crops: (training image, top, left) of a size x size window.
VALIDATION_CROPS = (("astronaut", 40, 200), ("coffee", 150, 300), ("rocket", 100, 150),
                    ("brick", 200, 200), ("motorcycle_left", 200, 300),
                    ("hubble_deep_field", 400, 400))

#: The tasks simulated on the validation crops; a family's settings maximise the mean PSNR
#: over its tasks (inpainting: scattered missing pixels and one large hole).
#: Deblurring and super-resolution are tuned twice: at the benchmark's noise (``TUNED_NOISE``)
#: and without noise, for the ``FAMILY-clean`` entries ``solve`` takes below ``CLEAN_BELOW``.
#: At the benchmark's noise deblurring is tuned on a Gaussian and a motion kernel: tuned on the
#: Gaussian alone, natural-gray's HQS took half the prior weight (1/8), which deblurs motion
#: blur on these crops 2.6 dB worse than the 1/4 both kernels choose (29.80 against 32.38 dB,
#: for 31.32 against 31.28 on the Gaussian: the card's tuning table). The switch stage
#: measures the first deblurring task, the Gaussian, alone.
TUNING_TASKS = (
    Task("denoise-25", "denoise", 25 / 255),
    Task("inpaint-50", "inpaint", 0.0, missing=0.5),
    Task("inpaint-box", "inpaint", 0.0, box=0.25),
    Task("deblur-gauss", "deblur", TUNED_NOISE, kernel="gaussian:2"),
    Task("deblur-motion", "deblur", TUNED_NOISE, kernel="motion:15,30"),
    Task("superres-x2", "superres", TUNED_NOISE, factor=2),
    Task("deblur-gauss-clean", "deblur", 0.0, kernel="gaussian:2"),
    Task("superres-x2-clean", "superres", 0.0, factor=2),
)

#: For fixed-size (whole-image) priors the inpainting family is tuned on a centred box hole of
#: 43% of each side (12x12 on 28x28): the large-hole case such priors are for.
FIXED_SIZE_INPAINT = Task("inpaint-box", "inpaint", 0.0, box=0.43)

FAMILIES = ("denoise", "deblur", "superres", "inpaint")
#: The ``solve_defaults`` entries, each tuned by the tasks of :func:`defaults_key_of`.
ENTRIES = FAMILIES + (HOLE_KEY,) + tuple(f + CLEAN_SUFFIX for f in CLEAN_FAMILIES)


def defaults_key_of(task: Task, fixed: bool) -> str:
    """The ``solve_defaults`` entry a tuning ``task`` tunes: the one ``solve`` takes for its
    operator and noise (``solvers.tuned_entries.defaults_key``): the task family, ``HOLE_KEY``
    for the box hole (but a ``fixed``-size prior keeps one inpainting entry for every mask,
    tuned on the box), and ``FAMILY-clean`` for noiseless deblurring and super-resolution."""
    if task.family == "inpaint":
        return HOLE_KEY if task.box is not None and not fixed else task.family
    if task.family in CLEAN_FAMILIES and task.sigma < CLEAN_BELOW:
        return task.family + CLEAN_SUFFIX
    return task.family


def tasks_for(fixed: bool, tasks=TUNING_TASKS) -> list[Task]:
    """The tuning tasks of a prior: ``tasks``, but a ``fixed``-size prior's inpainting is
    tuned on ``FIXED_SIZE_INPAINT`` alone, and its deblurring without the motion kernel (15
    px long: half a Fashion-MNIST image)."""
    if not fixed:
        return list(tasks)
    return ([t for t in tasks
             if t.family != "inpaint" and not (t.kernel or "").startswith("motion")]
            + [FIXED_SIZE_INPAINT])


def validation_crops(channels: int, size: int, count: int) -> list[tuple[str, torch.Tensor]]:
    """The first ``count`` of ``VALIDATION_CROPS`` that exist at ``channels`` and ``size``:
    ``(image name, (1, C, size, size) crop in [0, 1])``. Colour (C = 3) takes colour images
    only, so it has one crop fewer (brick is gray)."""
    crops = []
    for name, top, left in VALIDATION_CROPS:
        array = skimage_training_image(name)
        if channels == 1:
            array = to_gray(array)[..., None]
        elif array.ndim != 3:
            continue
        crop = array[top:top + size, left:left + size, :channels]
        if crop.shape[:2] == (size, size):
            tensor = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
            crops.append((name, tensor))
        if len(crops) == count:
            break
    return crops


def validation_images(channels: int, size: int, count: int) -> list[torch.Tensor]:
    """The crops of ``validation_crops`` alone, (1, C, size, size) each."""
    return [crop for _, crop in validation_crops(channels, size, count)]


def fashion_training_images(count: int) -> list[torch.Tensor]:
    """The first ``count`` images of the Fashion-MNIST TRAINING split, (1, 1, 28, 28) each."""
    from em_inverse.training.datasets import fashion_mnist

    images = fashion_mnist("train").images[:count].float() / 255.0
    return [x[None] for x in images]

"""Benchmark test images: the PUBLIC test images of SPEC 6 and the Fashion-MNIST t10k split.

Only TEST images live here (camera, coins, moon, page, text, chelsea); the training images of
SPEC 6 (astronaut, coffee, ...) are never loaded by the benchmark.

Crop rule (deterministic, no invented pixels): each image is centre-cropped to ``size x size``;
a side shorter than ``size`` keeps its full length rounded *down* to a multiple of ``multiple``
(8 by default, so that x2 and x4 super-resolution divide exactly). Nothing is padded or resized,
so every measured pixel is a real pixel of the original image. At ``size=256`` this gives
camera/coins/moon/chelsea 256x256, page 184x256 and text 168x256. Colour images also appear in
the gray set as ``NAME-gray`` (``skimage.color.rgb2gray``, ITU-R 601 luma).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from em_inverse.training.datasets import read_idx_images

GRAY_TEST_IMAGES = ("camera", "coins", "moon", "page", "text")
COLOUR_TEST_IMAGES = ("chelsea",)

FASHION_DIR_ENV = "EM_INVERSE_FASHION_DIR"
FASHION_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_T10K = "t10k-images-idx3-ubyte.gz"


@dataclass(frozen=True)
class BenchImage:
    """One benchmark image: ``name`` and ``image``, a float32 tensor (1, C, H, W) in [0, 1]."""

    name: str
    image: torch.Tensor

    @property
    def channels(self) -> int:
        return int(self.image.shape[1])


def centre_crop(array: np.ndarray, size: int, multiple: int = 8) -> np.ndarray:
    """Centre crop of an (H, W[, C]) array to ``size x size`` following the module's crop rule."""
    if size < multiple:
        raise ValueError(f"crop size {size} must be >= multiple {multiple}")
    h, w = array.shape[:2]
    ch = min(size, h - h % multiple)
    cw = min(size, w - w % multiple)
    top, left = (h - ch) // 2, (w - cw) // 2
    return array[top:top + ch, left:left + cw]


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, 3) uint8/float array -> float32 tensor (1, C, H, W) in [0, 1]."""
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    else:
        array = np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0).clamp_(0.0, 1.0)


def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    if name not in GRAY_TEST_IMAGES + COLOUR_TEST_IMAGES:
        raise ValueError(f"{name!r} is not a public test image of SPEC 6")
    return getattr(skimage.data, name)()


def load_test_image(name: str, size: int = 256, gray: bool = False) -> BenchImage:
    """One public test image, centre-cropped; ``gray=True`` converts a colour image to gray."""
    array = _skimage_image(name)
    label = name
    if array.ndim == 3 and gray:
        from skimage.color import rgb2gray

        array = rgb2gray(array).astype(np.float32)
        label = f"{name}-gray"
    return BenchImage(label, _to_tensor(centre_crop(array, size)))


def load_test_images(channels: int, size: int = 256, limit: int | None = None) -> list[BenchImage]:
    """The public test set for ``channels`` (1: the gray images plus ``chelsea-gray``; 3: chelsea).

    ``limit`` keeps the first ``limit`` images (quick mode).
    """
    if channels == 1:
        images = [load_test_image(n, size) for n in GRAY_TEST_IMAGES]
        images += [load_test_image(n, size, gray=True) for n in COLOUR_TEST_IMAGES]
    elif channels == 3:
        images = [load_test_image(n, size) for n in COLOUR_TEST_IMAGES]
    else:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return images[:limit] if limit is not None else images


# -- Fashion-MNIST --------------------------------------------------------------------------------
def fashion_dir() -> Path:
    """Where the Fashion-MNIST IDX files are: ``$EM_INVERSE_FASHION_DIR`` or the Debian path."""
    return Path(os.environ.get(FASHION_DIR_ENV, FASHION_DEFAULT_DIR))


def fashion_available(directory: Path | None = None) -> bool:
    return ((directory or fashion_dir()) / FASHION_T10K).is_file()


def load_fashion_images(count: int = 500, directory: Path | None = None) -> list[BenchImage]:
    """The first ``count`` Fashion-MNIST t10k images as (1, 1, 28, 28) tensors in [0, 1].

    Raises ``FileNotFoundError`` when the data set is absent (callers skip cleanly).
    """
    path = (directory or fashion_dir()) / FASHION_T10K
    if not path.is_file():
        raise FileNotFoundError(f"Fashion-MNIST t10k not found at {path} "
                                f"(apt install fashion-mnist, or set ${FASHION_DIR_ENV})")
    images = read_idx_images(path)[:count].float() / 255.0  # (N, 1, 28, 28)
    return [BenchImage(f"t10k-{i:04d}", x[None]) for i, x in enumerate(images)]

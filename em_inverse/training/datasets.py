"""Training data sets, each drawing minibatches with an explicit ``torch.Generator``.

Every data set returns data in caller units: vectors (B, 2) for ``toy2d:*``, images
(B, C, H, W) in [0, 1] otherwise. Spec strings (``toy2d:8gaussians``, ``fashion-mnist``,
``patches:natural-gray``, ``folder:PATH``) are parsed by ``make_dataset``.
"""
from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch

from em_inverse.errors import UserError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

# SPEC 6: natural-image TRAINING images (skimage.data). Test images are never listed here.
TRAINING_IMAGES = ("astronaut", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                   "brick", "grass", "gravel", "ihc", "hubble_deep_field", "retina")
PUBLIC_TEST_IMAGES = ("camera", "coins", "moon", "chelsea", "page", "text")


def skimage_training_image(name: str) -> np.ndarray:
    """A SPEC 6 training image as float32 (H, W) or (H, W, 3) in [0, 1]."""
    import skimage.data as data

    if name not in TRAINING_IMAGES:
        raise UserError(f"{name!r} is not a natural-image training image: {TRAINING_IMAGES}")
    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        image = left if name.endswith("left") else right
    elif name == "ihc":
        image = data.immunohistochemistry()
    else:
        image = getattr(data, name)()
    return image.astype(np.float32) / 255.0


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) -> (H, W) with ITU-R 601 luma weights (as skimage.color.rgb2gray)."""
    if image.ndim == 2:
        return image
    return image[..., :3] @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


class Toy2D:
    """2-D toy distributions: ``8gaussians``, ``moons``, ``checkerboard``. Samples (B, 2)."""

    KINDS = ("8gaussians", "moons", "checkerboard")
    kind_of_data = "vector"
    channels = None
    image_size = None

    def __init__(self, name: str):
        if name not in self.KINDS:
            raise UserError(f"unknown toy2d data set {name!r}; known: {', '.join(self.KINDS)}")
        self.name = name
        self.dim = 2

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.name == "8gaussians":
            k = torch.randint(0, 8, (n,), generator=generator).float()
            centres = 4.0 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1)
            return centres + 0.5 * torch.randn(n, 2, generator=generator)
        if self.name == "moons":
            u = torch.rand(n, generator=generator) * math.pi
            upper = torch.rand(n, generator=generator) < 0.5
            x = torch.where(upper, torch.cos(u), 1.0 - torch.cos(u))
            y = torch.where(upper, torch.sin(u), 0.5 - torch.sin(u))
            points = torch.stack([x - 0.5, y - 0.25], 1) * 2.0
            return points + 0.1 * torch.randn(n, 2, generator=generator)
        # checkerboard on [-4, 4]^2: 8 of the 16 unit-2 squares
        x1 = torch.rand(n, generator=generator) * 4 - 2
        x2 = torch.rand(n, generator=generator) - torch.randint(0, 2, (n,), generator=generator) * 2.0
        x2 = x2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], 1) * 2.0


class ImageArray:
    """Whole images from an in-memory (N, C, H, W) uint8 tensor; samples float in [0, 1]."""

    kind_of_data = "image"

    def __init__(self, images: torch.Tensor, name: str):
        self.images = images
        self.name = name
        self.channels = images.shape[1]
        self.image_size = tuple(images.shape[-2:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(0, len(self), (n,), generator=generator)
        return self.images[index].float() / 255.0


def read_idx_images(path: Path) -> torch.Tensor:
    """Read an IDX3 image file (optionally .gz) into a (N, 1, H, W) uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            magic, count, rows, cols = struct.unpack(">IIII", handle.read(16))
            if magic != 2051:
                raise UserError(f"{path} is not an IDX image file (magic {magic})")
            buffer = handle.read(count * rows * cols)
    except (OSError, EOFError, struct.error) as exc:
        raise UserError(f"cannot read IDX file {path}: {exc}") from None
    if len(buffer) != count * rows * cols:
        raise UserError(f"truncated IDX file {path}")
    array = np.frombuffer(buffer, dtype=np.uint8).reshape(count, 1, rows, cols)
    return torch.from_numpy(array.copy())


def find_idx(data_dir: Path, split: str) -> Path:
    stem = "train" if split == "train" else "t10k"
    for name in (f"{stem}-images-idx3-ubyte.gz", f"{stem}-images-idx3-ubyte"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise UserError(f"Fashion-MNIST {split} images not found in {data_dir} (install them with "
                    f"`apt-get install -y dataset-fashion-mnist` or pass --data-dir)")


def fashion_mnist(split: str = "train", data_dir: str | Path | None = None) -> ImageArray:
    data_dir = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    return ImageArray(read_idx_images(find_idx(data_dir, split)), f"fashion-mnist-{split}")


#: Patch augmentations: ``flips`` draws a random horizontal and vertical flip (4 variants);
#: ``dihedral`` also a random transpose: all 8 symmetries of the square.
AUGMENTATIONS = ("flips", "dihedral")


def check_scales(scales) -> tuple[float, ...]:
    """``scales`` as a tuple of floats, each in (0, 1] and none repeated; else a UserError."""
    values = tuple(float(s) for s in scales)
    if not values or any(not 0 < s <= 1 for s in values) or len(set(values)) < len(values):
        raise UserError(f"scales must be distinct numbers in (0, 1], e.g. [1.0, 0.5]; "
                        f"got {list(scales)}")
    return values


def rescaled(image: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, C) float image in [0, 1] resized by ``scale`` <= 1 with a Gaussian anti-aliasing
    prefilter (scikit-image's), so the copy holds no aliasing the camera never recorded."""
    if scale == 1.0:
        return image
    from skimage.transform import rescale

    out = rescale(image, scale, anti_aliasing=True, channel_axis=-1, order=1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class Patches:
    """Random crops of a list of (H, W, C) float images, each under a random symmetry
    (``augment``: see ``AUGMENTATIONS``). With ``scales`` (each in (0, 1]), every image also
    enters at those sizes (multi-scale patches, SPEC 9): a 0.5 copy shows the same scene with
    twice the detail per pixel. Every pixel of every copy is equally likely, so a copy at
    scale s is drawn s^2 times as often as the full-size image."""

    kind_of_data = "image"

    def __init__(self, images: list[np.ndarray], crop: int, name: str, augment: str = "flips",
                 scales: tuple[float, ...] = (1.0,)):
        if augment not in AUGMENTATIONS:
            raise UserError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
        if not images:
            raise UserError(f"no images for patches data set {name!r}")
        images = [rescaled(im, s) for s in check_scales(scales) for im in images]
        small = [im.shape[:2] for im in images if min(im.shape[:2]) < crop]
        if small:
            raise UserError(f"crop size {crop} is larger than an image of size {small[0]}")
        self.images = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                       for im in images]
        self.crop = crop
        self.name = name
        self.augment = augment
        self.channels = self.images[0].shape[0]
        self.image_size = (crop, crop)
        # draw images in proportion to their area, so every pixel is equally likely
        areas = torch.tensor([float(im.shape[1] * im.shape[2]) for im in self.images])
        self.weights = areas / areas.sum()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        out = torch.empty(n, self.channels, self.crop, self.crop)
        for i, k in enumerate(which.tolist()):
            image = self.images[k]
            top = int(torch.randint(0, image.shape[1] - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(0, image.shape[2] - self.crop + 1, (1,), generator=generator))
            out[i] = image[:, top:top + self.crop, left:left + self.crop]
        flips = torch.rand(n, 2, generator=generator) < 0.5
        out[flips[:, 0]] = out[flips[:, 0]].flip(-1)
        out[flips[:, 1]] = out[flips[:, 1]].flip(-2)
        if self.augment == "dihedral":  # drawn after the flips: "flips" runs replay unchanged
            transpose = torch.rand(n, generator=generator) < 0.5
            out[transpose] = out[transpose].transpose(-1, -2)
        return out


def natural_patches(colour: bool, crop: int, augment: str = "flips",
                    scales: tuple[float, ...] = (1.0,)) -> Patches:
    """Patches of the SPEC 6 training images; ``colour`` keeps RGB images only, else gray."""
    images = []
    for name in TRAINING_IMAGES:
        image = skimage_training_image(name)
        if colour:
            if image.ndim == 3:
                images.append(image[..., :3])
        else:
            images.append(to_gray(image)[..., None])
    return Patches(images, crop, "natural-rgb" if colour else "natural-gray", augment, scales)


def folder_patches(folder: Path, crop: int, channels: int | None,
                   augment: str = "flips", scales: tuple[float, ...] = (1.0,)) -> Patches:
    from em_inverse.image_io import read_image  # images as (1, C, H, W) in [0, 1]

    files = sorted(p for p in Path(folder).iterdir()
                   if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"})
    if not files:
        raise UserError(f"no images (.png/.jpg/.tif/.npy) in folder {folder}")
    images = []
    for path in files:
        image = read_image(path)[0].permute(1, 2, 0).numpy()
        if channels == 1 and image.shape[-1] == 3:
            image = to_gray(image)[..., None]
        elif channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        images.append(image)
    if len({im.shape[-1] for im in images}) > 1:
        raise UserError(f"folder {folder} mixes gray and colour images; pass --channels")
    return Patches(images, crop, f"folder:{folder}", augment, scales)


def make_dataset(spec: str, *, crop: int = 40, data_dir: str | None = None,
                 channels: int | None = None, augment: str = "flips",
                 scales: tuple[float, ...] = (1.0,)):
    """Parse a data set spec string into a data set object with ``sample(n, generator)``;
    ``crop``, ``augment`` and ``scales`` apply to the patch sets (``patches:``, ``folder:``)."""
    kind, _, arg = spec.partition(":")
    if augment != "flips" and kind not in ("patches", "folder"):
        raise UserError(f"augment = {augment!r} applies to patches: and folder: data sets only")
    if tuple(scales) != (1.0,) and kind not in ("patches", "folder"):
        raise UserError(f"scales = {list(scales)} applies to patches: and folder: data sets only")
    if kind == "toy2d":
        return Toy2D(arg)
    if kind == "fashion-mnist":
        return fashion_mnist(arg or "train", data_dir)
    if kind == "patches":
        if arg not in ("natural-gray", "natural-rgb"):
            raise UserError(f"unknown patches set {arg!r}; use natural-gray or natural-rgb")
        return natural_patches(arg == "natural-rgb", crop, augment, scales)
    if kind == "folder":
        if not Path(arg).is_dir():
            raise UserError(f"data folder {arg!r} does not exist")
        return folder_patches(Path(arg), crop, channels, augment, scales)
    raise UserError(f"unknown data set {spec!r}; use toy2d:8gaussians|moons|checkerboard, "
                    "fashion-mnist, patches:natural-gray|natural-rgb or folder:PATH")

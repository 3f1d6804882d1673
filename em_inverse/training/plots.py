"""Training plots: sample grids (images) or scatter plots (2-D data), and energy histograms."""
from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from em_inverse.atomic import atomic_write_bytes  # noqa: E402
from em_inverse.priors.sampling import sample_prior  # noqa: E402


def save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), buffer.getvalue())


def image_grid(images: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> one (H', W', C) grid with 2-pixel gutters."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = torch.ones(c, rows * (h + 2) - 2, columns * (w + 2) - 2)
    for k in range(n):
        r, q = divmod(k, columns)
        grid[:, r * (h + 2):r * (h + 2) + h, q * (w + 2):q * (w + 2) + w] = images[k]
    return grid.clamp(0, 1).permute(1, 2, 0)


def plot_samples(samples: torch.Tensor, path: Path, title: str, data: torch.Tensor | None = None):
    """A scatter plot for 2-D samples (with data in grey), or an image grid."""
    samples = samples.detach().cpu()
    fig = plt.figure(figsize=(5, 5))
    if samples.ndim == 2:
        if data is not None:
            plt.scatter(*data.cpu().numpy().T, s=2, c="0.75", label="data")
        plt.scatter(*samples.numpy().T, s=2, c="C3", label="samples")
        plt.axis("equal")
        plt.legend(loc="upper right", markerscale=4)
    else:
        grid = image_grid(samples)
        plt.imshow(grid.squeeze(-1).numpy(), cmap="gray" if grid.shape[-1] == 1 else None,
                   vmin=0, vmax=1)
        plt.axis("off")
    plt.title(title)
    save_figure(fig, path)


def plot_energy_histogram(v_data: torch.Tensor, v_neg: torch.Tensor, path: Path, title: str):
    fig = plt.figure(figsize=(6, 3.5))
    values = torch.cat([v_data, v_neg]).cpu()
    bins = torch.linspace(float(values.min()), float(values.max()), 50).numpy()
    plt.hist(v_data.cpu().numpy(), bins=bins, alpha=0.6, label="data")
    plt.hist(v_neg.cpu().numpy(), bins=bins, alpha=0.6, label="Langevin negatives")
    plt.xlabel("energy V")
    plt.ylabel("count")
    plt.legend()
    plt.title(title)
    save_figure(fig, path)


def write_plots(trainer, tag: str) -> None:
    """Samples from the EMA prior and a data-vs-negatives energy histogram under RUN/plots/."""
    prior = trainer.ema_prior().frozen().to(trainer.device)
    generator = torch.Generator(device=trainer.device).manual_seed(trainer.config.seed + 12345)
    cpu_gen = torch.Generator().manual_seed(trainer.config.seed + 12345)
    vector = trainer.dataset.kind_of_data == "vector"
    n = 2000 if vector else 36
    shape = (trainer.dataset.dim,) if vector else (trainer.dataset.channels, *trainer.dataset.image_size)
    samples = sample_prior(prior, n, generator=generator, shape=shape,
                           denoise=False)  # the chains as they end: what training shapes
    data = trainer.dataset.sample(n, cpu_gen).to(trainer.device)
    plots = trainer.out / "plots"
    plot_samples(samples, plots / f"samples_{tag}.png", f"{prior.name}: samples ({tag})",
                 data=data if vector else None)
    with torch.no_grad():
        v_data = prior.energy(data)
        v_neg = prior.energy(samples)
    plot_energy_histogram(v_data, v_neg, plots / f"energy_{tag}.png",
                          f"{prior.name}: energies of data vs samples from noise ({tag})")


def save_png_array(array, path: Path) -> None:
    """(H, W, C) float in [0, 1] -> 8-bit PNG written atomically."""
    import imageio.v3 as iio
    import numpy as np

    array = np.asarray(array)
    pixels = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    atomic_write_bytes(Path(path), iio.imwrite("<bytes>", pixels, extension=".png"))

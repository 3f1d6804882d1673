"""Writing benchmark results: atomic files, CSV, Markdown tables and PNG plots.

Every file is written to a temporary name in the target folder and renamed into place
(``os.replace``), so a crash or Ctrl-C never leaves a half-written table behind.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from em_inverse.atomic import atomic_write_via


# -- atomic files ----------------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path`` atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_via(path, write)


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> Path:
    """Rows of dicts as CSV; ``columns`` fixes the order (default: keys of the first row)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return write_text(path, buffer.getvalue())


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                          bbox_inches="tight"))
    finally:
        plt.close(fig)


def new_figure(*args, **kwargs):
    """A matplotlib figure on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


# -- Markdown --------------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub Markdown table; cells are converted with ``str``."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fmt(value, digits: int = 2) -> str:
    """A number for a table: fixed digits, '-' for missing / NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def mean(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def grouped_means(rows: Sequence[dict], keys: Sequence[str], value: str) -> dict:
    """{tuple(row[k] for k in keys): mean of row[value]} over ``rows``."""
    groups: dict = defaultdict(list)
    for row in rows:
        v = row.get(value)
        if v is not None and v != "":
            groups[tuple(row[k] for k in keys)].append(float(v))
    return {k: mean(v) for k, v in groups.items()}


# -- quality tables and plots ----------------------------------------------------------------------
def quality_markdown(rows: Sequence[dict], tasks: Sequence, methods: Sequence[str],
                     group: str) -> str:
    """PSNR / SSIM (mean over images) with methods as rows and tasks as columns, then time."""
    rows = [r for r in rows if r["group"] == group]
    if not rows:
        return ""
    psnrs = grouped_means(rows, ("method", "task"), "psnr")
    ssims = grouped_means(rows, ("method", "task"), "ssim")
    times = grouped_means(rows, ("method", "task"), "time_s")
    steps = grouped_means(rows, ("method", "task"), "steps")
    names = [t.name for t in tasks]
    used = [m for m in methods if any((m, t) in psnrs for t in names)]

    def table(values, digits):
        body = []
        for m in used:
            body.append([m] + [fmt(values.get((m, t)), digits) for t in names])
        return markdown_table(["method"] + names, body)

    best = {t: max((psnrs[(m, t)] for m in used if (m, t) in psnrs), default=math.nan)
            for t in names}
    psnr_rows = []
    for m in used:
        cells = []
        for t in names:
            v = psnrs.get((m, t))
            cell = fmt(v)
            if v is not None and not math.isnan(v) and v == best[t]:
                cell = f"**{cell}**"
            cells.append(cell)
        psnr_rows.append([m] + cells)
    n_images = len({r["image"] for r in rows})
    out = [f"PSNR (dB, mean over {n_images} image(s); best per task in bold):\n",
           markdown_table(["method"] + names, psnr_rows),
           "\nSSIM (mean):\n", table(ssims, 3),
           "\nWall time per image (s):\n", table(times, 2)]
    if any(not math.isnan(v) for v in steps.values()):
        out += ["\nSolver steps (mean; '-' for closed-form or scikit-image methods):\n",
                table(steps, 0)]
    return "\n".join(out)


def bar_styles(methods: Sequence[str], prior_methods: Iterable[str],
               oracle_methods: Iterable[str]) -> dict[str, dict]:
    """Bar keyword arguments per method, so that no two methods of a chart look alike: the energy
    prior's methods in strong colours (tab10; tab20 past ten), the baselines in soft ones
    (Pastel1, nine; tab20c past nine), baselines tuned on the ground truth hatched."""
    import matplotlib

    prior_methods, oracle_methods = set(prior_methods), set(oracle_methods)
    ours = [m for m in methods if m in prior_methods]
    theirs = [m for m in methods if m not in prior_methods]
    strong = matplotlib.colormaps["tab10" if len(ours) <= 10 else "tab20"]
    soft = matplotlib.colormaps["Pastel1" if len(theirs) <= 9 else "tab20c"]
    styles = {m: {"color": strong(k)} for k, m in enumerate(ours)}
    styles.update({m: {"color": soft(k), "hatch": "///" if m in oracle_methods else None}
                   for k, m in enumerate(theirs)})
    for style in styles.values():
        style.update(edgecolor="0.3", linewidth=0.5)
    return styles


def psnr_bars(rows: Sequence[dict], tasks: Sequence, methods: Sequence[str], path: Path,
              title: str, prior_methods: Iterable[str] = ()) -> Path:
    """Grouped bar chart of mean PSNR per task and method, one panel per image group.

    ``prior_methods``: the methods that use the energy prior, drawn in strong colours and the
    baselines in soft ones (rows whose ``oracle`` is true are hatched)."""
    oracles = {r["method"] for r in rows if r.get("oracle") in (True, "True")}
    styles = bar_styles(methods, prior_methods, oracles)
    groups = list(dict.fromkeys(r["group"] for r in rows))
    fig, axes = new_figure(len(groups), 1, figsize=(max(8, 1.1 * len(tasks) + 3),
                                                    3.4 * len(groups)), squeeze=False)
    names = [t.name for t in tasks]
    for ax, group in zip(axes[:, 0], groups):
        psnrs = grouped_means([r for r in rows if r["group"] == group], ("method", "task"), "psnr")
        used = [m for m in methods if any((m, t) in psnrs for t in names)]
        width = 0.8 / max(1, len(used))
        x = np.arange(len(names))
        for k, m in enumerate(used):
            values = [psnrs.get((m, t), np.nan) for t in names]
            ax.bar(x + (k - (len(used) - 1) / 2) * width, values, width, label=m, **styles[m])
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{title}: {group}")
        finite = [v for v in psnrs.values() if np.isfinite(v)]
        if finite:
            ax.set_ylim(max(0.0, min(finite) - 3), max(finite) + 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def _display(image) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W[, 3]) array in [0, 1] for imshow."""
    a = image.detach().to("cpu").float()[0].clamp(0, 1).permute(1, 2, 0).numpy()
    return a[..., 0] if a.shape[-1] == 1 else a


def example_panels(examples: Sequence[dict], path: Path, title: str) -> Path:
    """One row per example: truth, measurement, then each method's estimate (PSNR in titles).

    ``examples``: dicts with ``label``, ``truth``, ``measurement`` and ``estimates`` (an ordered
    dict method -> (tensor, psnr)). Measurements smaller than the truth (super-resolution) are
    shown enlarged with nearest-neighbour pixels.
    """
    columns = 2 + max((len(e["estimates"]) for e in examples), default=0)
    fig, axes = new_figure(len(examples), columns, figsize=(1.9 * columns, 2.1 * len(examples)),
                           squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, ex in zip(axes, examples):
        panels = [("truth", ex["truth"], None), ("measurement", ex["measurement"], None)]
        panels += [(m, est, score) for m, (est, score) in ex["estimates"].items()]
        for ax, (name, image, score) in zip(row, panels):
            ax.imshow(_display(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(name if score is None else f"{name}\n{score:.2f} dB", fontsize=7)
        row[0].text(-0.08, 0.5, ex["label"], transform=row[0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return save_figure(fig, path, dpi=100)

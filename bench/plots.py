"""Bench plots (matplotlib, Agg backend, PNG files): accuracy vs compression, distillation time, image grids.

Every function takes the aggregated :class:`bench.report.Row` objects (or an artifact), writes one PNG and returns
its path; nothing here decides what to compare, only how it looks.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

#: images per class shown in a synthetic-set grid
GRID_MAX_PER_CLASS = 10
_DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "plot"


def accuracy_vs_compression(dataset: str, rows: Sequence[Any], metric: str, axis: str,
                            path: str | Path) -> Path:
    """One line per method (``row.series``) of ``metric`` against the compression ratio ``axis``.

    Baselines trained at the same budgets are dashed lines of their own; training on the full data is a
    dashed horizontal line. Error bars are the std over evaluation runs. The x axis is logarithmic.
    """
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    series: dict[str, list[tuple[float, float, float]]] = {}
    baselines: dict[str, dict[float, tuple[float, float]]] = {}
    full: list[tuple[float, float]] = []
    for row in rows:
        x = row.ratio.get(axis)
        if not x:
            continue
        for entry, stats in row.metrics.items():
            value = stats.get(metric)
            if value is None or value["mean"] is None:
                continue
            point = (100 * value["mean"], 100 * (value["std"] or 0.0))
            if entry == "distilled":
                series.setdefault(row.series, []).append((x, *point))
            elif entry == "full":
                full.append(point)
            else:
                baselines.setdefault(entry, {})[x] = point
    for name, points in sorted(series.items()):
        points.sort()
        xs, ys, es = zip(*points)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
    for name, points in sorted(baselines.items()):
        xs = sorted(points)
        ax.errorbar(xs, [points[x][0] for x in xs], yerr=[points[x][1] for x in xs], linestyle="--", marker=".",
                    capsize=2, alpha=0.8, label=f"{name} (baseline)")
    if full:
        mean = sum(p[0] for p in full) / len(full)
        ax.axhline(mean, linestyle="--", color="black", linewidth=1, label="full data")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"compression ratio ({axis}: original / distilled)")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (%)")
    ax.set_title(dataset)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def distillation_time(rows: Sequence[Any], path: str | Path) -> Path:
    """Horizontal bars: mean distillation wall time of each (method, dataset, budget), log scale, by method."""
    plt = _pyplot()
    timed = sorted((r for r in rows if r.distill_s is not None), key=lambda r: r.label)  # stable: keeps row order
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.32 * max(len(timed), 1)))
    colours = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(timed):
        colour = colours.setdefault(row.label, palette[len(colours) % len(palette)])
        ax.barh(i, row.distill_s, color=colour)
    ax.set_yticks(range(len(timed)), [r.name for r in timed], fontsize="small")
    ax.invert_yaxis()
    if timed and max(r.distill_s for r in timed) / max(min(r.distill_s for r in timed), 1e-9) > 20:
        ax.set_xscale("log")
    devices = sorted({r.device for r in timed})
    ax.set_xlabel(f"distillation wall time (s) on {', '.join(devices) or '-'}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    if handles:
        ax.legend(handles, list(colours), fontsize="small", loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def to_pixels(artifact) -> "Any":
    """An ``ImageSet``'s images in [0, 1] pixel space, as [N, C, H, W] float32 (for display).

    Inverts the stored preprocessing in reverse order: the ZCA transform (``x·zca_inverse + zca_mean`` on
    flattened images) when present, then the per-channel normalisation (``x·std + mean``). Values are then
    clipped to [0, 1], which only affects the picture.
    """
    import torch

    x = artifact["images"].to(torch.float64)
    n = x.shape[0]
    if "zca_inverse" in artifact:
        inv = artifact["zca_inverse"].to(torch.float64)
        mu = artifact["zca_mean"].to(torch.float64) if "zca_mean" in artifact else torch.zeros(inv.shape[0],
                                                                                                dtype=torch.float64)
        if inv.shape != (x[0].numel(), x[0].numel()):
            raise ValueError(f"zca_inverse has shape {list(inv.shape)}, expected [{x[0].numel()}, {x[0].numel()}] "
                             f"for images of shape {list(x.shape[1:])}")
        x = (x.reshape(n, -1) @ inv + mu).reshape(x.shape)
    if "mean" in artifact and "std" in artifact:
        c = x.shape[1]
        x = x * artifact["std"].to(torch.float64).view(1, c, 1, 1) + artifact["mean"].to(torch.float64).view(1, c, 1, 1)
    return x.clamp(0.0, 1.0).to(torch.float32)


def image_grid(artifact, title: str, path: str | Path, per_class: int = GRID_MAX_PER_CLASS) -> Path:
    """A PNG mosaic of a synthetic image set: one row per class, up to ``per_class`` images per row."""
    import torch

    plt = _pyplot()
    pixels = to_pixels(artifact)
    labels = artifact["labels"]
    classes = torch.unique(labels).tolist()
    cols = max(1, min(per_class, max(int((labels == c).sum()) for c in classes)))
    fig, axes = plt.subplots(len(classes), cols, figsize=(0.9 * cols + 0.6, 0.9 * len(classes) + 0.5),
                             squeeze=False)
    for r, c in enumerate(classes):
        idx = torch.nonzero(labels == c).flatten()[:cols].tolist()
        for j in range(cols):
            ax = axes[r][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j < len(idx):
                img = pixels[idx[j]].permute(1, 2, 0).numpy()
                if img.shape[2] == 1:
                    ax.imshow(img[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0)
                else:
                    ax.imshow(img)
            if j == 0:
                ax.set_ylabel(str(c), rotation=0, labelpad=10, fontsize="small")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path

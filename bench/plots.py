"""Bench plots (matplotlib, Agg backend, PNG files): accuracy vs compression and distillation time.

Every function takes the aggregated :class:`condense.bench.report.Row` objects, writes one PNG and returns its path;
nothing here decides what to compare, only how it looks. (Grids of synthetic images come from the vision
toolkit's own writer, ``condense.vision.plots.save_grid``, which knows how its artifacts are preprocessed.)
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

_DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "plot"


#: sideways offset between baselines drawn at one compression ratio (a factor on the log x axis), so that equal
#: values (herding and k-means often coincide) stay visible side by side
BASELINE_DODGE = 0.03


def accuracy_vs_compression(dataset: str, rows: Sequence[Any], metric: str, axis: str,
                            path: str | Path, subtitle: str | None = None) -> Path:
    """One solid line per method (``row.series``) of ``metric`` against the compression ratio ``axis``.

    Every other set the evaluator trained (random, herding, teacher, ...) is a dashed line at its own ratio
    (:meth:`Row.ratio_of`), dodged sideways by :data:`BASELINE_DODGE` per baseline; training on the full data is
    a dashed horizontal line (the rows should share one protocol, named by ``subtitle``). The robust-score runs
    (soft labels, no augmentation) are left to the table. Error bars are the std over evaluation runs. The x axis
    is logarithmic.
    """
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    series: dict[str, list[tuple[float, float, float]]] = {}
    baselines: dict[str, dict[float, tuple[float, float]]] = {}
    full: list[tuple[float, float]] = []
    for row in rows:
        for entry, stats in row.metrics.items():
            if "[" in entry:  # a score run (other labels or no augmentation): in the table, not in the plot
                continue
            value, x = stats.get(metric), row.ratio_of(entry, axis)
            if value is None or value["mean"] is None or not x:
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
    for i, (name, points) in enumerate(sorted(baselines.items())):
        xs = sorted(points)
        shift = 1 + BASELINE_DODGE * (i - (len(baselines) - 1) / 2)
        ax.errorbar([x * shift for x in xs], [points[x][0] for x in xs], yerr=[points[x][1] for x in xs],
                    linestyle="--", marker=".", capsize=2, alpha=0.8, label=name)
    if full:
        mean = sum(p[0] for p in full) / len(full)
        ax.axhline(mean, linestyle="--", color="black", linewidth=1, label="full data")
    ax.set_xscale("log")
    drawn = [p[0] for points in series.values() for p in points] + [x for points in baselines.values() for x in points]
    if drawn:  # whole decades around the points, so nearby ratios stay apart by their true factor
        ax.set_xlim(10 ** math.floor(math.log10(min(drawn) / 1.5)), 10 ** math.ceil(math.log10(max(drawn) * 1.5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"compression ratio ({axis}: original / distilled)")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (%)")
    ax.set_title(dataset if subtitle is None else f"{dataset}\n{subtitle}", fontsize="medium")
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
        ax.legend(handles, list(colours), fontsize="small", loc="best")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path

"""Bench report: Markdown tables beside the published numbers, and PNG plots, from results files.

:func:`aggregate` pools the records of one configuration over its seeds (every evaluation run of every seed
counts; mean ± population std, as docs/protocols.md says); :func:`render` writes ``report.md`` with

* one section per family (artifact kind: synthetic image sets, computation-tree sets, MLP students), with a
  table per metric: this library's number for the distilled set and for every baseline the evaluator trained
  (random real, herding, full data, teacher, ...), the published number from :mod:`condense.bench.anchors` and the
  difference, compression ratios (samples and bytes), distillation time and peak memory;
* the published numbers for the datasets present, as context (including "not retrieved" ones);
* failed cells with their errors, and where the numbers were measured;

and PNG files next to it: accuracy vs compression ratio per dataset, distillation time per method, and the
synthetic image grids of image-set runs.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from condense.artifacts import write_atomic
from condense.bench import anchors, plots, results
from condense.bench.suites import canonical_json, format_kv

FAMILY_TITLES = {
    "ImageSet": "Synthetic image sets",
    "TreeSet": "Graph classification: computation-tree sets",
    "Student": "GNN-to-MLP students",
}
#: the compression ratio each family is plotted against (bytes where "samples" means little: an itemset is not
#: a graph, a student has no training samples); the tables print a samples ratio only for "samples" families
PLOT_AXIS = {"ImageSet": "samples", "TreeSet": "bytes", "Student": "bytes"}
_NO_BUDGET = "(no budget)"
#: trained-set entries shown first and last; every other entry sits between them, alphabetically
_FIRST, _LAST = ("distilled",), ("full",)


@dataclass
class Row:
    """One configuration (everything but the seed) pooled over its seeds."""

    kind: str
    label: str
    dataset: str
    budget: dict
    variant: dict
    model: str | None
    suite: str
    seeds: list[int] = field(default_factory=list)
    metrics: dict[str, dict[str, dict]] = field(default_factory=dict)  # entry -> metric -> {mean, std, n}
    ratio: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, dict[str, float]] = field(default_factory=dict)  # entry -> {"samples"/"bytes": its size}
    full_sizes: dict[str, float] = field(default_factory=dict)  # {"samples"/"bytes": size of the full data}
    distill_s: float | None = None
    prepare_s: float | None = None
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None
    scores: dict[str, dict] = field(default_factory=dict)  # "LRS"/"ARS" -> {mean, std, n} over runs and seeds
    device: str = ""
    records: list[dict] = field(default_factory=list)

    @property
    def budget_text(self) -> str:
        return format_kv(self.budget)

    @property
    def variant_text(self) -> str:
        return format_kv(self.variant)

    @property
    def series(self) -> str:
        return " ".join(p for p in (self.label, self.variant_text, self.model and f"[{self.model}]") if p)

    def ratio_of(self, entry: str, axis: str) -> float | None:
        """Compression of one trained set: full size / its own size where the evaluator gives both (baselines
        may differ from the distilled set, e.g. Mirage's fixed-count baselines), else the distilled ratio."""
        size, full = self.sizes.get(entry, {}).get(axis), self.full_sizes.get(axis)
        if size and full:
            return full / size
        return self.ratio.get(axis)

    @property
    def protocol(self) -> str:
        """How this row's sets were trained and on which data: the evaluation network, its profile and overrides, and
        the training-data subsample. Rows with the same text ran the same protocol, so their baselines compare."""
        rec = self.records[0] if self.records else {}
        profile = (rec.get("eval_extra") or {}).get("profile")
        per_class = rec.get("train_per_class")
        parts = (self.model or "default network", profile and f"{profile} profile", format_kv(rec.get("evaluation") or {}),
                 f"{per_class} training items per class" if per_class else "all training data")
        return ", ".join(p for p in parts if p)

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.label, self.dataset, self.budget_text, self.variant_text) if p)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "label": self.label, "dataset": self.dataset, "budget": self.budget,
                "variant": self.variant, "model": self.model, "suite": self.suite, "seeds": self.seeds,
                "metrics": self.metrics, "ratio": self.ratio, "distill_s": self.distill_s, "prepare_s": self.prepare_s,
                "peak_rss_mb": self.peak_rss_mb, "peak_cuda_mb": self.peak_cuda_mb, "device": self.device}


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def pool(stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool one metric over seeds: all evaluation runs together (population std), else the seeds' means."""
    runs = [v for s in stats for v in (s.get("runs") or []) if isinstance(v, (int, float))]
    if not runs or any(not s.get("runs") for s in stats):
        runs = [s["mean"] for s in stats if s.get("mean") is not None]
        if len(stats) == 1 and runs:
            return {"mean": runs[0], "std": stats[0].get("std"), "n": 1}
    if not runs:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(runs) / len(runs)
    return {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in runs) / len(runs)), "n": len(runs)}


def aggregate(records: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Successful records grouped by configuration (kind, label, dataset, budget, variant, model, config)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        if rec.get("status") != "ok":
            continue
        key = canonical_json([rec.get("kind"), rec.get("label"), rec.get("dataset"), rec.get("budget"),
                              rec.get("variant"), rec.get("eval_model") or rec.get("model"), rec.get("config"),
                              rec.get("evaluation"), rec.get("runs"), rec.get("train_per_class")])
        groups[key].append(dict(rec))
    rows = []
    for recs in groups.values():
        first = recs[0]
        row = Row(kind=first.get("kind") or "?", label=first.get("label") or first["method"],
                  dataset=first["dataset"], budget=first.get("budget") or {}, variant=first.get("variant") or {},
                  model=first.get("eval_model") or first.get("model"), suite=first.get("suite", ""),
                  seeds=sorted(r["seed"] for r in recs), records=recs)
        entries: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for rec in recs:
            for entry, metrics in (rec.get("results") or {}).items():
                for metric in results.metric_names(metrics):
                    entries[entry][metric].append(metrics[metric])
        row.metrics = {e: {m: pool(v) for m, v in ms.items()} for e, ms in entries.items()}
        for name, key, part in (("LRS", "lrs", "lrs"), ("ARS", "ars", "ars")):
            stats = [((r.get("eval_extra") or {}).get("scores") or {}).get(key, {}).get(part) for r in recs]
            if stats and all(isinstance(st, dict) for st in stats):
                row.scores[name] = pool(stats)
        for axis in ("samples", "bytes"):
            value = _mean([(r.get("compression") or {}).get(axis) for r in recs])
            if value is not None:
                row.ratio[axis] = value
            full = _mean([(r.get("compression") or {}).get(f"full_{axis}") for r in recs])
            if full is not None:
                row.full_sizes[axis] = full
            for entry in row.metrics:
                size = _mean([((r.get("results") or {}).get(entry) or {}).get(axis) for r in recs])
                if size is not None:
                    row.sizes.setdefault(entry, {})[axis] = size
        fresh = {r["distill_key"]: r["distill"] for r in recs if r.get("distill")}
        row.distill_s = _mean([d.get("wall_s") for d in fresh.values()])
        steps = {json.dumps(p.get("argv")): p.get("wall_s") for r in recs for p in (r.get("prepare") or {}).values()}
        row.prepare_s = sum(v for v in steps.values() if v is not None) if steps else None
        rss = [d.get("peak_rss_mb") for d in fresh.values() if d.get("peak_rss_mb") is not None]
        cuda = [d.get("peak_cuda_mb") for d in fresh.values() if d.get("peak_cuda_mb") is not None]
        row.peak_rss_mb = max(rss) if rss else None
        row.peak_cuda_mb = max(cuda) if cuda else None
        row.device = ", ".join(sorted({r.get("device_name") or r.get("device", "") for r in recs}))
        rows.append(row)
    order = {k: i for i, k in enumerate(FAMILY_TITLES)}
    rows.sort(key=lambda r: (order.get(r.kind, len(order)), r.dataset, r.label, r.variant_text,
                             _natural(r.budget), r.model or ""))
    return rows


def _natural(mapping: Mapping[str, Any]) -> tuple:
    """Sort key for budgets: numbers by value (ipc=1 < ipc=10 < ipc=50), everything else as text."""
    return tuple((k, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))) for k, v in sorted(mapping.items()))


# -- formatting -----------------------------------------------------------------------------------------
def _pct(stats: Mapping[str, Any] | None) -> str:
    return results.percent(stats)


def _ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.3g}×"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return lines


def _entries(rows: Sequence[Row]) -> list[str]:
    names = {e for r in rows for e in r.metrics}
    middle = sorted(names - set(_FIRST) - set(_LAST))
    return [e for e in _FIRST if e in names] + middle + [e for e in _LAST if e in names]


def published(row: Row, metric: str) -> tuple[anchors.Anchor | None, str]:
    """The published anchor for a row: looked up by budget, then variant, then model, then no budget."""
    tables = anchors.KIND_TABLES.get(row.kind, ())
    for budget in (row.budget_text, row.variant_text, row.model and f"model={row.model}", None):
        if budget == "":
            continue
        found, note = anchors.find(row.label, row.dataset, budget, metric, tables)
        if found is not None:
            return found, note
    return None, ""


@dataclass
class _Notes:
    """Footnotes collected while building tables: sources [n] and caveats (†, ‡, ...)."""

    sources: dict[str, int] = field(default_factory=dict)
    caveats: dict[str, str] = field(default_factory=dict)

    def source(self, text: str) -> str:
        return f"[{self.sources.setdefault(text, len(self.sources) + 1)}]"

    def caveat(self, text: str) -> str:
        marks = "†‡§¶"
        if text not in self.caveats:
            n = len(self.caveats)
            self.caveats[text] = marks[n % len(marks)] * (n // len(marks) + 1)
        return self.caveats[text]


def _family_table(rows: Sequence[Row], metric: str, notes: _Notes) -> list[str]:
    entries = _entries(rows)
    show_variant = any(r.variant for r in rows)
    show_model = any(r.model for r in rows)
    show_suite = len({r.suite for r in rows}) > 1
    show_cuda = any(r.peak_cuda_mb is not None for r in rows)
    show_prepare = any(r.prepare_s is not None for r in rows)
    scores = [name for name in ("LRS", "ARS") if any(name in r.scores for r in rows)]
    header = ["method", "dataset", "budget"] + (["variant"] if show_variant else []) + (
        ["model"] if show_model else []) + (["suite"] if show_suite else []) + ["seeds"]
    header += [f"{e} (this library)" if e == "distilled" else e for e in entries]
    header += [f"{name} (DD-Ranking)" for name in scores]
    header += ["published", "Δ", "full (published)", "ratio (samples)", "ratio (bytes)"]
    header += (["prepare s"] if show_prepare else []) + ["distill s", "peak RSS MB"]
    header += ["peak GPU MB"] if show_cuda else []
    body, flagged = [], False
    for row in rows:
        if metric not in row.metrics.get("distilled", {}):
            continue
        cells = [row.label, row.dataset, row.budget_text or "–"] + ([row.variant_text or "–"] if show_variant else [])
        cells += [row.model or "default"] if show_model else []
        cells += [row.suite] if show_suite else []
        cells.append(f"{len(row.seeds)} ({','.join(str(s) for s in row.seeds)})")
        below = _full_below(row, metric)
        cells += [_pct(row.metrics.get(e, {}).get(metric)) + (FULL_BELOW_MARK if e == "full" and below else "")
                  for e in entries]
        flagged |= below
        cells += [_pct(row.scores.get(name)) for name in scores]
        anchor, proxy = published(row, metric)
        mark = notes.caveat(proxy) if proxy else ""
        if anchor is None:
            cells += ["–", "–"]
        elif anchor.value is None:
            cells += [anchors.NOT_RETRIEVED + " " + notes.source(anchor.source), "–"]
        else:
            mine = row.metrics["distilled"][metric]["mean"]
            delta = "–" if mine is None else f"{100 * mine - anchor.value:+.1f}{mark}"
            cells += [f"{anchor.text()} {notes.source(anchor.source)}{mark}", delta]
        full, proxy = anchors.find("full", row.dataset, None, metric, anchors.KIND_TABLES.get(row.kind, ()))
        if full is None:
            cells.append("–")
        else:
            cells.append(f"{full.text()} {notes.source(full.source)}" + (notes.caveat(proxy) if proxy else ""))
        samples = row.ratio.get("samples") if PLOT_AXIS.get(row.kind, "samples") == "samples" else None
        cells += [_ratio(samples), _ratio(row.ratio.get("bytes"))]
        cells += [_num(row.prepare_s)] if show_prepare else []
        cells += [_num(row.distill_s), _num(row.peak_rss_mb, 0)]
        cells += [_num(row.peak_cuda_mb, 0)] if show_cuda else []
        body.append(cells)
    if not body:
        return []
    note = ["", f"{FULL_BELOW_MARK} full data scored below a smaller set of its own cell: its training protocol is "
            "too short for that cell, so read the cell's numbers with care."] if flagged else []
    return _table(header, body) + note


#: marks a full-data score below a distilled set or coreset of the same cell
FULL_BELOW_MARK = " ⚠"


def _full_below(row: Row, metric: str) -> bool:
    """Whether training on the full data scored below some smaller set of the row trained the same way (mean over
    runs). The score runs (``distilled[soft]``, ``random[soft,plain]``, ...) use other labels or no augmentation:
    a soft-labelled set may legitimately beat hard-label full data, so they are not compared."""
    full = (row.metrics.get("full") or {}).get(metric) or {}
    if full.get("mean") is None:
        return False
    return any((stats.get(metric) or {}).get("mean") is not None and stats[metric]["mean"] > full["mean"]
               for entry, stats in row.metrics.items() if entry != "full" and "[" not in entry)


def _context(rows: Sequence[Row], kind: str, notes: _Notes) -> list[str]:
    """Published numbers for the family's datasets: rows = (table, method, metric), columns = budgets."""
    tables = anchors.KIND_CONTEXT.get(kind, ())
    lines: list[str] = []
    for dataset in sorted({r.dataset for r in rows}):
        found = anchors.for_dataset(dataset, tables)
        if not found:
            continue
        budgets = sorted({a.budget or _NO_BUDGET for a in found}, key=lambda b: (b != _NO_BUDGET, len(b), b))
        pivot: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
        sources: dict[tuple[str, str, str], str] = {}
        for a in found:
            key, column = (a.table, a.method, a.metric), a.budget or _NO_BUDGET
            pivot[key][column] = (pivot[key].get(column, "") + " / " + a.text()).strip(" /")
            sources[key] = a.source
        title = anchors.PROXIES.get(dataset, (dataset, ""))[0]
        lines += ["", f"Published numbers for {title}" + (f" (context for {dataset})" if title != dataset else "") + ":", ""]
        body = [[t, m, met] + [pivot[(t, m, met)].get(b, "") for b in budgets] + [notes.source(sources[(t, m, met)])]
                for (t, m, met) in sorted(pivot)]
        lines += _table(["table", "method", "metric"] + budgets + ["source"], body)
    for claim in anchors.CLAIMS.get(kind, ()):
        lines.append(f"- {claim}")
    return lines


def _failed(records: Sequence[Mapping[str, Any]]) -> list[str]:
    from condense.bench.suites import describe

    bad = [r for r in records if r.get("status") != "ok"]
    if not bad:
        return []
    body = []
    for r in bad:
        err = r.get("error") or {}
        message = (err.get("message") or "").strip().splitlines()
        body.append([describe(r), str(err.get("stage")), str(err.get("type")), message[0][:200] if message else ""])
    return ["", "## Failed cells", ""] + _table(["cell", "stage", "error", "message"], body)


def _environment(records: Sequence[Mapping[str, Any]]) -> list[str]:
    combos: dict[tuple, int] = defaultdict(int)
    for r in records:
        combos[(r.get("device_name") or r.get("device") or "?", r.get("library_version") or "?",
                r.get("torch_version") or "?", (r.get("git_commit") or "?")[:10], r.get("isolation") or "?")] += 1
    body = [[*map(str, k), str(n)] for k, n in sorted(combos.items())]
    return ["", "## Where these numbers come from", ""] + _table(
        ["device", "condense", "torch", "commit", "isolation", "cells"], body)


def _grid_writer():
    """The vision toolkit's PNG grid writer (``condense.vision.plots.save_grid``), or None where it is not installed."""
    try:
        from condense.vision.plots import save_grid
    except ImportError:
        return None
    return save_grid


def _image_grids(rows: Sequence[Row], out_dir: Path, pngs: list[Path]) -> list[str]:
    """A PNG grid of the synthetic images of each image-set configuration (its lowest seed)."""
    from condense import load

    image_rows = [r for r in rows if r.kind == "ImageSet"]
    if not image_rows:
        return []
    save_grid = _grid_writer()
    if save_grid is None:
        return ["*Synthetic image grids need the vision toolkit (`condense.vision.plots`), which is not installed here.*", ""]
    lines = []
    for row in image_rows:
        first = min(row.records, key=lambda r: r["seed"])
        path = _artifact_path(first)
        if path is None:
            lines += [f"*No grid for {row.name}: its artifact {first.get('artifact')!r} is not next to the results.*", ""]
            continue
        png = Path(save_grid(load(path), out_dir / f"grid-{plots.slug(row.name)}.png"))
        pngs.append(png)
        title = f"{row.name} (seed {first['seed']})"
        lines += [f"![{title}]({png.name})", "",
                  f"*Synthetic images of {title}, one row per class, in pixel space (the stored preprocessing "
                  "undone).*", ""]
    return lines


# -- the report -------------------------------------------------------------------------------------------
def _artifact_path(record: Mapping[str, Any]) -> Path | None:
    rel = record.get("artifact")
    if not rel:
        return None
    base = Path(record.get("_source", ".")).parent
    path = Path(rel) if Path(rel).is_absolute() else base / rel
    return path if path.is_file() else None


def render(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, plots_enabled: bool = True) -> dict:
    """Write ``out_dir/report.md`` (and PNGs) from results files; return a summary (paths, rows, counts)."""
    records = results.merge(paths)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = aggregate(records)
    notes = _Notes()
    n_ok = sum(r.get("status") == "ok" for r in records)
    lines = ["# condense bench report", "",
             f"{len(records)} cells from {', '.join(str(p) for p in paths)}: {n_ok} ok, {len(records) - n_ok} failed. "
             "Metrics are test percentages, mean ± population std over all evaluation runs of all seeds; "
             "ratios are original / distilled; 'distill s' is the wall time of the distillation alone, 'prepare s' that "
             "of its preparation steps (e.g. an expert buffer), counted once per distinct step."]
    pngs: list[Path] = []
    kinds = [k for k in FAMILY_TITLES if any(r.kind == k for r in rows)]
    kinds += sorted({r.kind for r in rows} - set(kinds))
    for kind in kinds:
        family = [r for r in rows if r.kind == kind]
        lines += ["", f"## {FAMILY_TITLES.get(kind, kind)}"]
        metrics = [m for m in results.TEST_METRICS if any(m in r.metrics.get("distilled", {}) for r in family)]
        for metric in metrics:
            table = _family_table(family, metric, notes)
            if table:
                lines += ["", f"Test {metric.replace('_', ' ')} (%):", ""] + table
        context = _context(family, kind, notes)
        if context:
            lines += ["", "### Published context"] + context
    if plots_enabled and rows:
        lines += ["", "## Plots", ""]
        groups: dict[tuple[str, str], list[Row]] = defaultdict(list)  # one plot per dataset and protocol
        drawn: dict[str, int] = {}
        for r in rows:
            groups[(r.dataset, r.protocol)].append(r)
        for (dataset, protocol), subset in sorted(groups.items(), key=lambda kv: (kv[0][0].lower(), kv[0][1])):
            several = sum(d == dataset for d, _ in groups) > 1
            preferred = PLOT_AXIS.get(subset[0].kind, "samples")
            axis = preferred if all(r.ratio.get(preferred) for r in subset) else "bytes"
            if not any(r.ratio.get(axis) for r in subset):
                continue
            metric = results.metric_names(subset[0].metrics.get("distilled"))[0]
            stem = f"accuracy-vs-compression-{plots.slug(dataset)}"
            if several:  # numbered in protocol order
                drawn[dataset] = drawn.get(dataset, 0) + 1
                stem += f"-{drawn[dataset]}"
            png = plots.accuracy_vs_compression(dataset, subset, metric, axis, out_dir / f"{stem}.png",
                                                subtitle=protocol)
            pngs.append(png)
            lines += [f"![{metric} vs compression on {dataset}]({png.name})", "",
                      f"*{dataset}, protocol: {protocol}. Test {metric.replace('_', ' ')} against the compression "
                      f"ratio in {axis} (log scale): one solid line per method, a dashed line for every baseline the "
                      "evaluator trained (at its own size, nudged sideways so equal values stay visible), the dashed "
                      "black line for training on the full data under this protocol.*", ""]
        if any(r.distill_s is not None for r in rows):
            png = plots.distillation_time(rows, out_dir / "distill-time.png")
            pngs.append(png)
            lines += [f"![distillation time]({png.name})", "",
                      "*Distillation wall time per configuration (mean over seeds), coloured by method.*", ""]
        lines += _image_grids(rows, out_dir, pngs)
    lines += _failed(records)
    lines += _environment(records)
    if notes.sources or notes.caveats:
        lines += ["", "## Notes", ""]
        lines += [f"{mark} {text}" for text, mark in notes.caveats.items()]
        lines += [f"[{n}] {text}" for text, n in notes.sources.items()]
    report = out_dir / "report.md"
    write_atomic(report, ("\n".join(lines).rstrip() + "\n").encode())
    return {"report": str(report), "plots": [str(p) for p in pngs], "cells": len(records), "ok": n_ok,
            "failed": len(records) - n_ok, "rows": [r.as_dict() for r in rows]}

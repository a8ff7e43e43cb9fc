"""Anchors transcribed from the papers, pooling over seeds, the Markdown tables and the PNG plots."""
from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest

from condense.bench import anchors, results
from condense.bench.report import aggregate, pool, render
from condense.bench.runner import run_suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_anchor_cells_parse():
    assert anchors.parse_cell("46.3±0.8") == (46.3, 0.8)
    assert anchors.parse_cell("84.8") == (84.8, None)
    assert anchors.parse_cell("not retrieved") is None
    with pytest.raises(ValueError, match="anchor cell"):
        anchors.parse_cell("46.3+-0.8")


@pytest.mark.parametrize("method, dataset, budget, expected", [
    ("mtt", "cifar10", "ipc=10", (65.3, 0.7)),
    ("datadam", "tiny-imagenet", "ipc=50", (28.7, 0.3)),
    ("dm", "cifar100", "ipc=1", (11.4, 0.3)),
    ("datm", "cifar10", "ipc=50", (76.1, 0.3)),
    ("dsa", "mnist", "ipc=50", (99.2, 0.1)),
    ("dc", "fashion-mnist", "ipc=1", (70.5, 0.6)),
    ("full", "cifar100", None, (56.2, 0.3)),
    ("mtt", "imagewoof", "ipc=10", (35.8, 1.8)),
    ("datadam", "imagenet-1k", "ipc=50", (15.5, 0.2)),
])
def test_anchor_values_match_the_spec(method, dataset, budget, expected):
    anchor, note = anchors.find(method, dataset, budget)
    assert (anchor.value, anchor.std) == expected and note == ""


def test_not_retrieved_absent_and_proxies():
    ast, _ = anchors.find("ast", "cifar10", "ipc=1")
    assert ast.value is None and ast.text() == "not retrieved"
    assert anchors.find("dc", "cifar100", "ipc=50") == (None, "")  # "–": no published number at all
    assert anchors.find("datadam", "mnist", "ipc=10")[0].value is None
    mtt, note = anchors.find("mtt", "cifar10-subset", "ipc=1")
    assert mtt.value == 46.3 and "subset" in note
    best, _ = anchors.find("random", "cifar10", "ipc=1", "accuracy_best", tables=("dcbench",))
    avg, _ = anchors.find("random", "cifar10", "ipc=1", "accuracy_avg", tables=("dcbench",))
    assert (best.value, avg.value) == (15.4, 14.71)
    cost, _ = anchors.find("mtt", "cifar10", "ipc=50", "s_per_step", tables=("cost",))
    assert cost.value is None and cost.text() == "out of memory"
    glnn, _ = anchors.find("glnn", "cora", "teacher=sage", tables=("glnn-readme",))
    assert glnn.value == 78.28 and "not comparable" in glnn.note
    assert all(a.value is None for a in anchors.ANCHORS if a.table in ("mirage", "g2m"))
    molhiv = [a for a in anchors.ANCHORS if a.table == "mirage-logs" and a.budget == "model=gat"]
    assert [(a.value, a.std) for a in molhiv if a.dataset == "ogbg-molhiv"] == [(71.7, 0.9)]
    image_sets = [a for a in anchors.ANCHORS if a.table == "image-sets"]
    assert len(image_sets) == 3 + 5 + 6 + 9 + 9 + 9 + 9 + 6 + 8 + 9  # the non-"–" cells of the image table


def test_pool_uses_every_run_of_every_seed():
    one = {"mean": 0.5, "std": 0.1, "runs": [0.4, 0.6]}
    two = {"mean": 0.8, "std": 0.0, "runs": [0.8, 0.8]}
    pooled = pool([one, two])
    assert pooled["n"] == 4 and math.isclose(pooled["mean"], 0.65)
    assert math.isclose(pooled["std"], math.sqrt(((0.25 ** 2) + 0.05 ** 2 + 2 * 0.15 ** 2) / 4))
    assert pool([{"mean": 0.5, "std": 0.1}]) == {"mean": 0.5, "std": 0.1, "n": 1}
    means = pool([{"mean": 0.2, "std": 0.1}, {"mean": 0.4, "std": 0.1}])
    assert math.isclose(means["mean"], 0.3) and math.isclose(means["std"], 0.1)


def record(key, kind, label, dataset, budget, seed, entries, variant=None, model=None, **extra):
    return {"schema": 1, "key": key, "distill_key": key, "status": "ok", "suite": "t", "index": 0, "kind": kind,
            "label": label, "method": label, "dataset": dataset, "budget": budget, "variant": variant or {},
            "seed": seed, "model": model, "eval_model": model, "config": {}, "evaluation": {}, "runs": None,
            "device": "cpu", "device_name": "test cpu", "library_version": "0.1.0",
            "results": {name: {m: {"mean": v, "std": 0.01, "runs": [v - 0.01, v + 0.01]} for m, v in metrics.items()}
                        for name, metrics in entries.items()},
            "compression": {"samples": 5000 / budget.get("ipc", 1), "bytes": 12.5},
            "distill": {"wall_s": 3.0, "peak_rss_mb": 500.0, "peak_cuda_mb": None}, **extra}


def test_report_tables_beside_published_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    for rec in (
        record("a", "ImageSet", "mtt", "cifar10-subset", {"ipc": 10}, 0, {"distilled": {"accuracy": 0.60},
                                                                             "random": {"accuracy": 0.30},
                                                                             "full": {"accuracy": 0.70}}),
        record("b", "ImageSet", "mtt", "cifar10-subset", {"ipc": 10}, 1, {"distilled": {"accuracy": 0.62},
                                                                             "random": {"accuracy": 0.32},
                                                                             "full": {"accuracy": 0.70}}),
        record("c", "TreeSet", "mirage", "NCI1", {"depth": 2}, 0,
               {"distilled": {"roc_auc": 0.7, "accuracy": 0.65, "val": 0.9}, "full": {"roc_auc": 0.8, "accuracy": 0.75}},
               model="gin"),
        record("d", "Student", "ffg2m", "cora", {}, 0,
               {"distilled": {"accuracy": 0.81}, "teacher": {"accuracy": 0.80}, "mlp": {"accuracy": 0.59}},
               variant={"teacher": "gcn"}),
        {"schema": 1, "key": "e", "status": "error", "method": "datadam", "label": "datadam", "dataset": "mnist",
         "budget": {"ipc": 1}, "seed": 0, "error": {"stage": "distill", "type": "DatasetNotFound",
                                                    "message": "dataset 'mnist' not found.\n  searched: x"}},
    ):
        results.append(path, rec)
    summary = render([path], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert summary["cells"] == 5 and summary["ok"] == 4 and summary["failed"] == 1
    for title in ("## Synthetic image sets", "## Graph classification", "## GNN-to-MLP students", "## Failed cells"):
        assert title in text
    mtt_row = next(line for line in text.splitlines() if line.startswith("| mtt | cifar10-subset"))
    cells = [c.strip() for c in mtt_row.strip("|").split("|")]
    # pooled over both seeds: runs 0.59, 0.61, 0.61, 0.63 -> 61.0 ± 1.4; published 65.3 -> Δ -4.3 (proxy mark)
    assert "61.0±1.4" in cells and "31.0±1.4" in cells and "70.0±1.0" in cells
    assert any(c.startswith("65.3±0.7 [") for c in cells) and "-4.3†" in cells
    assert any(c.startswith("84.8±0.1") for c in cells)  # whole-dataset CIFAR-10, as context for "full"
    assert "2 (0,1)" in cells and "500×" in cells and "12.5×" in cells
    assert "† the published number is for full CIFAR-10" in text
    assert "Test roc auc (%):" in text and "Test accuracy (%):" in text
    assert "val" not in text.split("## Graph classification")[1].split("### Published")[0]  # not a test metric
    assert "| mirage | NCI1 | depth=2 | gin | 1 (0) | 70.0±1.0 | 80.0±1.0 | not retrieved [" in text
    assert "teacher" in text and "| 59.0±1.0 |" in text
    assert "Published numbers for cifar10 (context for cifar10-subset)" in text
    assert "78.28" in text  # GLNN README context for Cora
    assert "| datadam mnist ipc=1 seed=0 | distill | DatasetNotFound | dataset 'mnist' not found. |" in text
    assert "| test cpu | 0.1.0 |" in text
    names = {p.split("/")[-1] for p in summary["plots"]}
    assert {"accuracy-vs-compression-cifar10-subset.png", "accuracy-vs-compression-nci1.png",
            "distill-time.png"} <= names
    for png in summary["plots"]:
        assert open(png, "rb").read(8) == PNG_MAGIC and f"]({png.split('/')[-1]})" in text


def test_report_from_a_real_run_draws_image_grids(fake, tiny, tmp_path, monkeypatch):
    drawn = []

    def save_grid(artifact, path):  # stands in for condense.vision.plots.save_grid, which lands with the vision toolkit
        drawn.append((artifact.meta["budget"]["ipc"], Path(path).name))
        Path(path).write_bytes(PNG_MAGIC)
        return Path(path)

    monkeypatch.setitem(sys.modules, "condense.vision.plots", types.SimpleNamespace(save_grid=save_grid))
    out = tmp_path / "runs" / "r.jsonl"
    run_suite(tiny(ipcs=(1, 3), seeds=(1, 0)), out, device="cpu", isolation="inline")
    summary = render([out], tmp_path / "report")
    assert drawn == [(1, "grid-fakecond-toy-ipc-1.png"), (3, "grid-fakecond-toy-ipc-3.png")]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "![fakecond toy ipc=3 (seed 0)](grid-fakecond-toy-ipc-3.png)" in text
    assert {str(tmp_path / "report" / name) for _, name in drawn} <= set(summary["plots"])
    rows = aggregate(results.read(out))
    assert [r.budget["ipc"] for r in rows] == [1, 3] and rows[0].model == "nearest-image" and rows[0].seeds == [0, 1]
    # the report only reads: rendering twice gives the same Markdown
    render([out], tmp_path / "report")
    assert (tmp_path / "report" / "report.md").read_text() == text
    monkeypatch.setitem(sys.modules, "condense.vision.plots", None)  # the vision toolkit not installed
    render([out], tmp_path / "report")
    assert "need the vision toolkit" in (tmp_path / "report" / "report.md").read_text()


def test_full_data_below_a_smaller_set_is_flagged_and_plots_split_by_protocol(tmp_path):
    """A cell whose full data scores below one of its own smaller sets is marked; two protocols on one dataset get
    two plots, each captioned with its protocol; a tree set prints no samples ratio (an itemset is not a graph)."""
    path = tmp_path / "r.jsonl"
    for rec in (
        record("a", "ImageSet", "datadam", "digits", {"ipc": 1}, 0,
               {"distilled": {"accuracy": 0.84}, "random": {"accuracy": 0.52}, "full": {"accuracy": 0.48}},
               model="convnet-d3", train_per_class=20, evaluation={"epochs": 100}),
        record("b", "ImageSet", "mtt", "digits", {"ipc": 1}, 0,
               {"distilled": {"accuracy": 0.60}, "random": {"accuracy": 0.61}, "full": {"accuracy": 0.92}},
               model="convnet-d3", train_per_class=None, evaluation={"epochs": 100}),
        record("c", "TreeSet", "mirage", "MUTAG", {"depth": 2}, 0,
               {"distilled": {"accuracy": 0.68}, "full": {"accuracy": 0.84}}, model="gin"),
    ):
        results.append(path, rec)
    summary = render([path], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():  # the first line of each method: its results row (the published tables follow)
        if line.startswith(("| datadam", "| mtt", "| mirage")):
            rows.setdefault(line.split("|")[1].strip(), [c.strip() for c in line.strip("|").split("|")])
    assert "48.0±1.0 ⚠" in rows["datadam"] and "92.0±1.0" in rows["mtt"]  # flagged only where full is below
    assert text.count("⚠ full data scored below a smaller set of its own cell") == 1
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| mirage"))
    header = next(line for line in reversed(lines[:at]) if line.startswith("| method"))
    samples_col = [c.strip() for c in header.strip("|").split("|")].index("ratio (samples)")
    assert rows["mirage"][samples_col] == "–" and "5,000×" in rows["datadam"]
    names = sorted(p.split("/")[-1] for p in summary["plots"] if "accuracy-vs" in p)
    assert names == ["accuracy-vs-compression-digits-1.png", "accuracy-vs-compression-digits-2.png",
                     "accuracy-vs-compression-mutag.png"]
    assert "*digits, protocol: convnet-d3, epochs=100, 20 training items per class." in text
    assert "*digits, protocol: convnet-d3, epochs=100, all training data." in text

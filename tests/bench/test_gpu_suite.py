"""The GPU check suite: multi-rank and CPU-dry-run cells as data, and ``condense bench run gpu --device cpu`` end to
end (every method at tiny sizes, DataDAM and MTT also on two gloo ranks)."""
from __future__ import annotations

import json

import pytest

from condense.bench import results
from condense.bench.runner import run_suite
from condense.bench.suites import SUITES, Grid, Suite, expand
from condense.cli import main


def test_ranks_and_on_cpu_shape_the_cells():
    grid = Grid("m", ("big",), config={"iterations": 300, "keep": 1}, runs=3, ranks=2,
                on_cpu={"datasets": ["small"], "config": {"iterations": 2}, "runs": 1, "train_per_class": 5})
    (gpu,), (cpu,) = expand(Suite("s", "", (grid,)), "cuda"), expand(Suite("s", "", (grid,)), "cpu")
    assert (gpu.dataset, gpu.config, gpu.runs, gpu.train_per_class) == ("big", {"iterations": 300, "keep": 1}, 3, None)
    assert (cpu.dataset, cpu.config, cpu.runs, cpu.train_per_class) == ("small", {"iterations": 2, "keep": 1}, 1, 5)
    assert gpu.ranks == cpu.ranks == 2 and gpu.describe().endswith("ranks=2")
    one = expand(Suite("s", "", (Grid("m", ("big",), config={"iterations": 300, "keep": 1}, runs=3),)), "cuda")[0]
    assert "ranks" not in one.identity() and one.key("cuda") != gpu.key("cuda")  # one-rank keys stay as they were
    with pytest.raises(ValueError, match="ranks"):
        Grid("m", ("d",), ranks=0)
    with pytest.raises(ValueError, match="on_cpu"):
        Grid("m", ("d",), on_cpu={"seeds": [1]})


def test_a_multi_rank_cell_needs_worker_processes(fake, tmp_path):
    suite = Suite("r", "", (Grid("fakecond", ("toy",), ranks=2),))
    summary = run_suite(suite, tmp_path / "r.jsonl", device="cpu", isolation="inline")
    (record,) = results.read(tmp_path / "r.jsonl")
    assert summary.failed == 1 and "drop --in-process" in record["error"]["message"]


def test_gpu_suite_dry_run_on_cpu(data_root, tmp_path, capsys):
    out = tmp_path / "gpu.jsonl"
    assert main(["bench", "run", "gpu", "--device", "cpu", "--out", str(out), "--data-root", str(data_root),
                 "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["cells"], summary["ok"]) == (7, 7), summary["lines"]
    assert summary["environment"]["torch_version"] and summary["environment"]["device_name"]
    records = results.read(out)
    assert {r["method"] for r in records} == {"datadam", "mtt", "mirage", "ffg2m"}
    assert sorted(r["ranks"] for r in records) == [1, 1, 1, 1, 1, 2, 2]
    for r in records:
        assert r["status"] == "ok" and r["results"]["distilled"]
        if r["method"] in ("datadam", "mtt"):
            assert r["artifact_summary"]["it_per_s"] > 0 and r["artifact_summary"]["ranks"] == r["ranks"]
    assert {c.dataset for c in expand(SUITES["gpu"], "cuda")} == {"mnist", "MUTAG", "cora"}

"""Results files: atomic appends, torn last lines, corruption, precedence of records, merging."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from condense.bench import results


def rec(key, status="ok", **extra):
    return {"schema": results.SCHEMA, "key": key, "status": status, **extra}


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "sub" / "r.jsonl"
    assert results.read(path) == []  # a missing file is an empty run
    results.append(path, rec("a", value=1.5))
    results.append(path, rec("b", tensor=torch.tensor([1, 2]), array=np.float32(0.5), bad=math.nan))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    a, b = results.read(path)
    assert a == rec("a", value=1.5)
    assert b["tensor"] == [1, 2] and b["array"] == 0.5 and b["bad"] is None  # NaN is stored as null


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "r.jsonl"
    results.append(path, rec("a"))
    whole = path.read_bytes()
    partial = results.encode(rec("b"))[:-7]  # a write cut short by a kill: no closing brace, no newline
    path.write_bytes(whole + partial)
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["key"] for r in results.read(path)] == ["a"]
    with pytest.warns(UserWarning, match="torn last line"):
        results.append(path, rec("c"))
    assert path.read_bytes() == whole + results.encode(rec("c"))  # the torn bytes are gone, nothing merged
    assert [r["key"] for r in results.read(path)] == ["a", "c"]


def test_torn_line_without_any_newline(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"schema": 1, "ke')
    with pytest.warns(UserWarning):
        assert results.read(path) == []
    with pytest.warns(UserWarning):
        results.append(path, rec("a"))
    assert results.read(path) == [rec("a")]


def test_corruption_in_the_middle_raises(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(results.encode(rec("a")) + b"garbage\n" + results.encode(rec("b")))
    with pytest.raises(results.ResultsError, match=r"r.jsonl:2"):
        results.read(path)
    path.write_bytes(b'{"no": "key"}\n')
    with pytest.raises(results.ResultsError, match="not a bench record"):
        results.read(path)
    path.write_bytes(results.encode(rec("a") | {"schema": results.SCHEMA + 1}))
    with pytest.raises(results.ResultsError, match="upgrade"):
        results.read(path)


def test_latest_prefers_success_then_recency():
    records = [rec("a", "error", n=1), rec("a", "ok", n=2), rec("a", "error", n=3),
               rec("b", "error", n=4), rec("b", "error", n=5), rec("c", "ok", n=6), rec("c", "ok", n=7)]
    latest = results.latest(records)
    assert {k: v["n"] for k, v in latest.items()} == {"a": 2, "b": 5, "c": 7}


def test_merge_and_write(tmp_path):
    one, two = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    results.append(one, rec("x", suite="s", index=2))
    results.append(one, rec("y", "error", suite="s", index=0))
    results.append(two, rec("y", suite="s", index=0))
    merged = results.merge([one, two])
    assert [(r["key"], r["status"]) for r in merged] == [("y", "ok"), ("x", "ok")]  # suite order, success wins
    out = results.write(tmp_path / "all.jsonl", merged)
    assert [r["key"] for r in results.read(out)] == ["y", "x"]
    assert "_source" not in results.read(out)[0]
    with pytest.raises(FileNotFoundError):
        results.merge([tmp_path / "missing.jsonl"])


def test_encode_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="cannot store"):
        results.encode(rec("a", obj=object()))


def test_percent_and_summary():
    assert results.percent({"mean": 0.9123, "std": 0.004}) == "91.2±0.4"
    assert results.percent(None) == "–"
    ok = rec("k", method="m", label="m", dataset="d", budget={"ipc": 1}, variant={}, seed=0,
             results={"distilled": {"accuracy": {"mean": 0.5, "std": 0.1}}, "full": {"accuracy": {"mean": 0.9, "std": 0}}},
             compression={"samples": 100.0}, distill={"wall_s": 2.0})
    line = results.summarise(ok)
    assert "m d ipc=1 seed=0" in line and "distilled 50.0±10.0" in line and "full 90.0±0.0" in line
    assert "100x fewer samples" in line and "distill 2.0 s" in line
    bad = rec("k", "error", method="m", dataset="d", seed=1, error={"stage": "distill", "type": "DatasetNotFound",
                                                                  "message": "dataset 'd' not found.\nmore"})
    assert results.summarise(bad).endswith("FAILED (distill) DatasetNotFound: dataset 'd' not found.")

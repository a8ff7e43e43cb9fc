"""The runner on the fake method: one line per cell, resume after an interruption, failures recorded and the
suite goes on, shards that merge into the full run, worker processes (crash, time limit), preparation steps."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from condense import registry
from condense.bench import results
from condense.bench.report import render
from condense.bench.runner import run_suite
from condense.bench.suites import Grid, Prepare, Suite, expand
from condense.shard import Shard

NUMBERS = ("results", "compression", "artifact_budget", "artifact_bytes", "resolved_config")


def numbers(record):
    return {k: record[k] for k in NUMBERS}


def calls(path):
    return path.read_text().split() if path.exists() else []


def test_run_writes_one_line_per_cell_and_resumes(fake, tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = run_suite(tiny(), out, device="cpu", isolation="inline")
    assert (summary.cells, summary.ran, summary.ok, summary.failed, summary.skipped) == (4, 4, 4, 0, 0)
    records = results.read(out)
    assert len(out.read_text().splitlines()) == 4 == len(records)
    assert [(r["budget"]["ipc"], r["seed"]) for r in records] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for r in records:
        assert r["status"] == "ok" and r["device"] == "cpu" and r["library_version"]
        assert set(r["results"]) == {"distilled", "random", "full"}
        acc = r["results"]["distilled"]["accuracy"]
        assert 0 <= acc["mean"] <= 1 and len(acc["runs"]) == 2
        assert r["compression"]["samples"] == 90 / (3 * r["budget"]["ipc"])
        assert r["distill"]["wall_s"] > 0 and r["distill"]["peak_rss_mb"] > 0 and r["evaluate"]["wall_s"] > 0
        assert r["resolved_config"]["ipc"] == r["budget"]["ipc"]
        assert (out.parent / r["artifact"]).is_file()
    again = run_suite(tiny(), out, device="cpu", isolation="inline")
    assert (again.ran, again.skipped) == (0, 4)
    assert len(results.read(out)) == 4


def test_interrupted_run_finishes_only_the_missing_cells(fake, tiny, tmp_path, monkeypatch):
    out, log = tmp_path / "r.jsonl", tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_CALLS", str(log))
    monkeypatch.setenv("FAKE_INTERRUPT_AT", "toy:2:0")  # the third cell
    with pytest.raises(KeyboardInterrupt):
        run_suite(tiny(), out, device="cpu", isolation="inline")
    before = out.read_bytes()
    assert len(results.read(out)) == 2
    assert calls(log) == ["toy:1:0", "toy:1:1", "toy:2:0"]
    monkeypatch.delenv("FAKE_INTERRUPT_AT")
    summary = run_suite(tiny(), out, device="cpu", isolation="inline")
    assert (summary.ran, summary.skipped) == (2, 2)
    assert calls(log)[3:] == ["toy:2:0", "toy:2:1"]  # only the missing cells ran
    assert out.read_bytes().startswith(before)  # finished cells untouched
    full = tmp_path / "full.jsonl"
    run_suite(tiny(), full, device="cpu", isolation="inline")
    resumed = {r["key"]: numbers(r) for r in results.read(out)}
    assert resumed == {r["key"]: numbers(r) for r in results.read(full)}


def test_failing_cell_is_recorded_and_the_suite_goes_on(fake, tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = run_suite(tiny(datasets=("toy", "missing", "toy2"), ipcs=(1,), seeds=(0,)), out, device="cpu",
                        isolation="inline")
    assert (summary.ran, summary.ok, summary.failed) == (3, 1, 2)
    ok, missing, _ = results.read(out)
    assert ok["status"] == "ok" and ok["dataset"] == "toy"
    assert missing["status"] == "error" and missing["dataset"] == "missing"
    assert missing["error"]["stage"] == "distill" and missing["error"]["type"] == "DatasetNotFound"
    assert "dataset 'missing' not found" in missing["error"]["message"] and "Traceback" in missing["error"]["traceback"]
    assert missing["results"] is None and missing["distill"] is None
    # failed cells count as done on resume, and run again only when asked
    rerun = run_suite(tiny(datasets=("toy", "missing", "toy2"), ipcs=(1,), seeds=(0,)), out, device="cpu",
                      isolation="inline")
    assert rerun.ran == 0
    retry = run_suite(tiny(datasets=("toy", "missing", "toy2"), ipcs=(1,), seeds=(0,)), out, device="cpu",
                      isolation="inline", retry_failed=True)
    assert (retry.ran, retry.failed) == (2, 2)
    assert len(results.read(out)) == 5 and len(results.latest(results.read(out))) == 3


def test_bad_evaluation_settings_fail_the_cell_not_the_run(fake, tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    run_suite(tiny(ipcs=(1,), seeds=(0,), evaluation={"epochs": 3}), out, device="cpu", isolation="inline")
    (record,) = results.read(out)
    assert record["status"] == "error" and record["error"]["stage"] == "evaluate"
    assert "epochs" in record["error"]["message"] and record["distill"]["wall_s"] > 0


def test_two_shards_merge_to_the_full_run(fake, tiny, tmp_path):
    suite = tiny(ipcs=(1, 2, 3), seeds=(0, 1))
    full = tmp_path / "full.jsonl"
    run_suite(suite, full, device="cpu", isolation="inline")
    shards = [tmp_path / f"shard{i}.jsonl" for i in (1, 2)]
    for i, path in enumerate(shards, 1):
        summary = run_suite(suite, path, device="cpu", isolation="inline", shard=Shard(i, 2))
        assert summary.ran == 3 and summary.shard == f"{i}/2"
    one, two = ({r["key"] for r in results.read(p)} for p in shards)
    assert one and two and not one & two
    merged = results.merge(shards)
    assert [r["key"] for r in merged] == [r["key"] for r in results.merge([full])]
    assert {r["key"]: numbers(r) for r in merged} == {r["key"]: numbers(r) for r in results.read(full)}


def test_unavailable_methods_are_skipped_and_unknown_ones_fail(fake, tmp_path):
    registry.register(registry.MethodEntry(name="ghost", target="no_such_module_for_bench:run", family="vision",
                                           produces="ImageSet", summary="", paper="", default_dataset="toy"))
    try:
        suite = Suite("s", "", (Grid("ghost", ("toy",), seeds=(0, 1)), Grid("fakecond", ("toy",)),
                                Grid("nosuchmethod", ("toy",))))
        out = tmp_path / "r.jsonl"
        summary = run_suite(suite, out, device="cpu", isolation="inline")
    finally:
        registry.unregister("ghost")
    assert summary.unavailable == {"ghost": 2} and (summary.ran, summary.ok, summary.failed) == (2, 1, 1)
    records = results.read(out)
    assert [r["method"] for r in records] == ["fakecond", "nosuchmethod"]
    assert records[1]["error"]["stage"] == "setup" and "unknown method" in records[1]["error"]["message"]


def test_distillation_is_shared_by_cells_that_differ_in_evaluation(fake, tiny, tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_CALLS", str(log))
    out = tmp_path / "r.jsonl"
    run_suite(tiny(ipcs=(1,), seeds=(0,), models=("a", "b")), out, device="cpu", isolation="inline")
    a, b = results.read(out)
    assert calls(log) == ["toy:1:0"]
    assert (a["distill"]["reused"], b["distill"]["reused"]) == (False, True)
    assert a["distill"]["wall_s"] == b["distill"]["wall_s"] and a["artifact"] == b["artifact"]
    assert (a["eval_model"], b["eval_model"]) == ("a", "b") and a["key"] != b["key"]


def test_preparation_runs_once_and_its_failure_is_recorded(fake, tmp_path):
    good = Prepare("p", ("datasets", "--data-root", "{out}"))
    bad = Prepare("p", ("no-such-verb", "{out}"))
    suite = Suite("s", "", (
        Grid("fakecond", ("toy",), seeds=(0, 1), config={"prepared": "{prep:p}"}, prepare=(good,)),
        Grid("fakecond", ("toy",), seeds=(0,), config={"prepared": "{prep:p}", "noise": 0.2}, prepare=(bad,)),
    ))
    out = tmp_path / "r.jsonl"
    summary = run_suite(suite, out, device="cpu", isolation="inline")
    assert (summary.ok, summary.failed) == (2, 1)
    first, second, failed = results.read(out)
    assert (first["prepare"]["p"]["reused"], second["prepare"]["p"]["reused"]) == (False, True)
    folder = first["prepare"]["p"]["folder"]
    assert first["resolved_config"]["prepared"] == folder and os.path.isdir(folder)
    assert first["config"]["prepared"] == "{prep:p}"  # the key keeps the template, not the machine's path
    assert failed["error"]["stage"] == "prepare" and "no-such-verb" in failed["error"]["message"]
    render([out], tmp_path / "report", plots_enabled=False)
    table = (tmp_path / "report" / "report.md").read_text()
    assert "| prepare s | distill s |" in table and "prepare" in table.split("## Failed cells")[1]


def test_worker_processes_record_crashes_and_time_limits(fake, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CRASH_AT", "toy:1:1")
    monkeypatch.setenv("FAKE_HANG_AT", "toy:1:2")
    monkeypatch.setenv("FAKE_HANG_MARKER", str(tmp_path / "hanging"))
    out = tmp_path / "r.jsonl"
    t0 = time.perf_counter()
    summary = run_suite(tiny(ipcs=(1,), seeds=(0, 1, 2)), out, device="cpu", isolation="process",
                        plugins=[str(fake.__file__)], timeout=10)
    assert time.perf_counter() - t0 < 60
    assert (summary.ran, summary.ok, summary.failed) == (3, 1, 2)
    ok, crashed, hung = results.read(out)
    assert ok["isolation"] == "process" and ok["status"] == "ok"
    assert crashed["error"]["stage"] == "worker" and "killed by SIGKILL" in crashed["error"]["message"]
    assert hung["error"]["stage"] == "worker" and "time limit of 10 s" in hung["error"]["message"]
    inline = tmp_path / "inline.jsonl"
    run_suite(tiny(ipcs=(1,), seeds=(0,)), inline, device="cpu", isolation="inline")
    assert numbers(results.read(inline)[0]) == numbers(ok)  # same numbers in and out of process


def test_killing_the_command_midway_then_rerunning_finishes_only_the_missing_cells(fake, tiny, tmp_path):
    suite_file = tmp_path / "tiny.json"
    suite_file.write_text(json.dumps({"name": "tiny", "grids": [
        {"method": "fakecond", "datasets": ["toy"], "budgets": [{"ipc": 1}], "seeds": [0, 1, 2]}]}))
    out, log, marker = tmp_path / "r.jsonl", tmp_path / "calls.txt", tmp_path / "hanging"
    cmd = [sys.executable, "-m", "condense", "bench", "run", str(suite_file), "--out", str(out), "--device", "cpu",
           "--in-process", "--plugin", str(fake.__file__), "--json", "--quiet"]
    env = {**os.environ, "FAKE_CALLS": str(log), "FAKE_HANG_AT": "toy:1:1", "FAKE_HANG_MARKER": str(marker)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the run never reached the second cell"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [r["seed"] for r in results.read(out)] == [0]
    env.pop("FAKE_HANG_AT")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["ran"], summary["skipped"], summary["failed"]) == (2, 1, 0)
    assert calls(log) == ["toy:1:0", "toy:1:1", "toy:1:1", "toy:1:2"]
    assert sorted(r["seed"] for r in results.read(out)) == [0, 1, 2]
    assert {r["key"] for r in results.read(out)} == {c.key("cpu") for c in expand(tiny(ipcs=(1,), seeds=(0, 1, 2)))}

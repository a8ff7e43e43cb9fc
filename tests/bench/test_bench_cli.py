"""``condense bench run/report/list/merge`` through the real CLI entry point (in this process)."""
from __future__ import annotations

import json

import pytest

from condense.bench import results
from condense.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors exit with status 2 too
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"name": "tiny", "description": "cli test", "grids": [
        {"method": "fakecond", "datasets": ["toy", "missing"], "budgets": [{"ipc": 1}, {"ipc": 2}], "seeds": [0]}]}))
    return path


def test_run_shards_merge_and_report(fake, suite_file, tmp_path, capsys):
    common = ["--device", "cpu", "--in-process", "--plugin", fake.__file__, "--json"]
    outs = []
    for i in (1, 2):
        out = tmp_path / f"s{i}.jsonl"
        code, stdout, _ = run_cli(capsys, "bench", "run", str(suite_file), "--out", str(out), "--shard", f"{i}/2",
                                  *common)
        summary = json.loads(stdout)
        assert code == 0 and summary["shard"] == f"{i}/2" and summary["ran"] == 2
        outs.append(out)
    code, stdout, _ = run_cli(capsys, "bench", "merge", *map(str, outs), "--out", str(tmp_path / "all.jsonl"),
                              "--json")
    assert code == 0 and json.loads(stdout)["cells"] == 4
    merged = results.read(tmp_path / "all.jsonl")
    assert sorted((r["dataset"], r["budget"]["ipc"], r["status"]) for r in merged) == [
        ("missing", 1, "error"), ("missing", 2, "error"), ("toy", 1, "ok"), ("toy", 2, "ok")]
    code, stdout, _ = run_cli(capsys, "bench", "report", *map(str, outs), "--out", str(tmp_path / "rep"), "--json")
    payload = json.loads(stdout)
    assert code == 0 and payload["ok"] == 2 and payload["failed"] == 2
    assert (tmp_path / "rep" / "report.md").is_file()
    assert {p.split("/")[-1] for p in payload["plots"]} >= {"accuracy-vs-compression-toy.png", "distill-time.png"}
    code, stdout, _ = run_cli(capsys, "bench", "report", str(outs[0]), "--out", str(tmp_path / "rep2"))
    assert code == 0 and stdout.startswith("wrote ")


def test_list(capsys, suite_file, fake):
    code, stdout, _ = run_cli(capsys, "bench", "list", "--json")
    suites = {s["name"]: s for s in json.loads(stdout)["suites"]}
    assert code == 0 and {"smoke", "vision", "graph", "g2m", "paper"} <= set(suites)
    assert suites["graph"]["cells"] == 30  # 4 datasets x L 2, 3 x 3 GNNs, plus NCI1 at θ 0.1 and ENZYMES at L 1
    assert {g["method"] for g in suites["smoke"]["grids"]} == {"datadam", "mtt", "mirage", "ffg2m"}
    code, stdout, _ = run_cli(capsys, "bench", "list", str(suite_file), "--plugin", fake.__file__, "--json")
    (suite,) = json.loads(stdout)["suites"]
    assert suite["grids"][0]["available"] is True and len(suite["cell_list"]) == 4
    code, stdout, _ = run_cli(capsys, "bench", "list", "smoke")
    assert code == 0 and "[3] ffg2m cora seed=0" in stdout


@pytest.mark.parametrize("argv, message", [
    (["bench"], "choose a bench command"),
    (["bench", "run", "smoke", "--out", "x.jsonl", "--shard", "3/2"], "--shard"),
    (["bench", "run", "nope", "--out", "x.jsonl"], "unknown suite 'nope'"),
    (["bench", "run", "smoke", "--out", "x.txt", "--device", "cpu"], "must end in .jsonl"),
    (["bench", "run", "smoke", "--out", "x.jsonl", "--device", "cpu", "--in-process", "--timeout", "5"], "timeout"),
    (["bench", "report", "missing.jsonl", "--out", "rep"], "no results file"),
])
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err

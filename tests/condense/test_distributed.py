"""Two gloo ranks under ``torch.distributed.run`` against one process: the same buffers, evaluations, DataDAM
images and MTT meta-gradients; bench cells run exactly once; a killed buffer run resumes.

Every command is the one a user types, launched with ``python -m torch.distributed.run --standalone
--nproc-per-node 2 -m condense ...``. Both sides run with one thread per process (``OMP_NUM_THREADS=1`` for the
ranks, ``torch.set_num_threads(1)`` for the in-process reference), so any difference comes from splitting the work.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from condense import distributed
from condense.artifacts import read_file
from condense.bench import results
from condense.cli import main

HERE = Path(__file__).resolve().parent
FAKE_PLUGIN = HERE.parent / "bench" / "fake_method.py"
LAUNCH_TIMEOUT_S = 240
pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def launcher(*argv: str, module: bool = True) -> list[str]:
    """The command line of a two-rank standalone launch of ``condense argv`` (or of the script ``argv[0]``)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            *(["-m", "condense"] if module else []), *argv]


def rank_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "CONDENSE_QUIET": "1", **extra}


def torchrun(*argv: str, cwd: Path, module: bool = True, **env: str) -> dict:
    """Run ``condense argv`` on two ranks; the JSON rank 0 printed (or ``{}``)."""
    proc = subprocess.run(launcher(*argv, module=module), cwd=cwd, env=rank_env(**env), capture_output=True,
                          text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) <= 1, "only rank 0 prints: " + proc.stdout[-2000:]
    return json.loads(lines[0]) if lines else {}


@pytest.fixture
def one_thread():
    """The in-process reference with one thread, like each rank."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def single(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_datadam_images_and_evaluation_match_one_process(tmp_path, capsys, one_thread):
    distill = ["distill", "datadam", "--dataset", "digits", "--train-per-class", "10", "--ipc", "2", "--iterations",
               "20", "--device", "cpu", "--quiet", "--json"]
    ref = single(capsys, *distill, "--out", str(tmp_path / "one"))
    two = torchrun(*distill, "--out", str(tmp_path / "two"), cwd=tmp_path)
    a, _ = read_file(ref["artifact"])
    b, _ = read_file(tmp_path / two["artifact"])
    assert (a["images"] - b["images"]).abs().max() <= 1e-5
    assert (ref["summary"]["ranks"], two["summary"]["ranks"]) == (1, 2)

    # evaluation: 4 networks on the distilled set and on each baseline, split 2 + 2 across the ranks
    evaluate = ["evaluate", ref["artifact"], "--runs", "4", "--baselines", "--device", "cpu", "--set", "epochs=4",
                "--set", "full_epochs=2", "--quiet", "--json"]
    one = single(capsys, *evaluate)
    both = torchrun(*evaluate, cwd=tmp_path)
    assert set(one["results"]) == set(both["results"]) >= {"distilled", "random", "herding", "full"}
    for name in one["results"]:
        assert len(one["results"][name]["accuracy"]["runs"]) == 4 or name == "full"
        assert one["results"][name]["accuracy"] == both["results"][name]["accuracy"], name


def test_mtt_meta_gradient_matches_one_process(tmp_path, one_thread):
    sys.path.insert(0, str(HERE))
    try:
        from distributed_meta_gradient import CASES, meta_gradients
    finally:
        sys.path.remove(str(HERE))
    ref = meta_gradients()
    torchrun(str(HERE / "distributed_meta_gradient.py"), str(tmp_path / "mg.safetensors"), cwd=tmp_path, module=False)
    got, meta = read_file(tmp_path / "mg.safetensors")
    assert meta["shares"] == [3, 2]  # each rank unrolled its part of every minibatch of 5
    assert {f"{name}/{part}" for name, *_ in CASES for part in ("loss", "images", "alpha")} == set(got)
    for key, value in ref.items():
        scale = max(1.0, float(value.abs().max())) if key.endswith("loss") else float(value.abs().max())
        assert scale > 0 and (value - got[key]).abs().max() <= 1e-5 * scale, key


BUFFER = ["buffer", "--dataset", "digits", "--model", "convnet-d1-w4", "--experts", "4", "--epochs", "40",
          "--device", "cpu", "--quiet", "--json"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the rank processes through Linux /proc")
def test_killed_buffer_run_resumes_bit_identical(tmp_path, capsys, one_thread):
    out = tmp_path / "two"
    proc = subprocess.Popen(launcher(*BUFFER, "--out", str(out)), cwd=tmp_path, env=rank_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while not list(out.glob("expert-*.safetensors")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    ranks = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(ranks) == 2, ranks
    os.kill(int(ranks[-1]), signal.SIGKILL)  # one rank dies mid-buffer; the launcher then stops the other
    assert proc.wait(timeout=LAUNCH_TIMEOUT_S) != 0
    survivors = sorted(p.name for p in out.glob("expert-*.safetensors"))
    assert 1 <= len(survivors) < 4, survivors
    for name in survivors:  # every file under its final name is whole; a killed write leaves only a hidden .tmp
        read_file(out / name)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert all(p.endswith(".tmp") for p in leftovers), leftovers

    resumed = torchrun(*BUFFER, "--out", str(out), cwd=tmp_path)
    done = {int(name[7:12]) for name in survivors}
    assert resumed["experts_skipped"] == sorted(done)  # only the missing experts are trained
    assert resumed["experts_run"] == [r["expert"] for r in resumed["records"]] == sorted(set(range(4)) - done)
    assert resumed["experts_on_disk"] == [0, 1, 2, 3]

    single(capsys, *BUFFER, "--out", str(tmp_path / "one"))
    for i in range(4):
        name = f"expert-{i:05d}.safetensors"
        a, b = read_file(tmp_path / "one" / name)[0], read_file(out / name)[0]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_bench_cells_run_exactly_once_and_resume(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "ranks", "description": "two ranks", "grids": [
        {"method": "fakecond", "datasets": ["toy"], "budgets": [{"ipc": 1}, {"ipc": 2}, {"ipc": 3}],
         "seeds": [0, 1]}]}))
    calls, out = tmp_path / "calls.txt", tmp_path / "results.jsonl"
    run = ["bench", "run", str(suite), "--out", str(out), "--device", "cpu", "--in-process", "--plugin",
           str(FAKE_PLUGIN), "--json"]
    first = torchrun(*run, cwd=tmp_path, FAKE_CALLS=str(calls))
    assert (first["cells"], first["ran"], first["ok"]) == (6, 6, 6) and first["shard"] == "2 ranks"
    lines = calls.read_text().splitlines()
    assert sorted(lines) == sorted(f"toy:{ipc}:{seed}" for ipc in (1, 2, 3) for seed in (0, 1))  # each once
    keys = [r["key"] for r in results.read(out)]
    assert len(keys) == len(set(keys)) == 6
    second = torchrun(*run, cwd=tmp_path, FAKE_CALLS=str(calls))
    assert (second["ran"], second["skipped"]) == (0, 6) and len(calls.read_text().splitlines()) == 6


def test_a_single_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.requested() and not distributed.init("cpu") and not distributed.active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    t = torch.ones(3)
    assert distributed.all_reduce_sum(t) is t and distributed.differentiable_sum(t) is t
    assert distributed.gather_objects("x") == ["x"] and distributed.take([1, 2, 3]) == [1, 2, 3]


def test_merge_by_position_inverts_take():
    from condense.shard import Shard

    items = list(range(11))
    parts = [Shard(r + 1, 3).take(items) for r in range(3)]
    assert distributed.merge_by_position(parts, len(items)) == items

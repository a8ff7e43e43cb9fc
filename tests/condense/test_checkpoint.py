import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from condense.checkpoint import (
    Checkpointer,
    CheckpointMismatch,
    Counter,
    NonFiniteLossError,
    checkpoint_files,
)


def _toy_run(run_dir, total, *, stop_at=None, nan_steps=(), every=3, identity=None, **kw):
    """A tiny optimisation whose every future-deciding piece lives in the checkpointed state."""
    x = torch.zeros(5, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(1)
    skipped = Counter(0)
    ckpt = Checkpointer(run_dir, {"x": x, "opt": opt, "sched": sched, "g": g, "rng": rng, "skipped": skipped},
                        every=every, identity=identity or {"run": "toy"}, **kw)
    seen = []
    for it in ckpt.loop(total):
        if it == stop_at:
            raise KeyboardInterrupt
        target = torch.randn(5, generator=g) + float(rng.normal())
        loss = ((x - target) ** 2).sum()
        if it in nan_steps and it not in seen:
            loss = loss * float("nan")
        seen.append(it)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ckpt.report(loss)
    return x.detach().clone(), ckpt, seen


def test_resume_after_interrupt_is_bit_identical(tmp_path):
    reference, _, _ = _toy_run(None, 11)
    with pytest.raises(KeyboardInterrupt):
        _toy_run(tmp_path, 11, stop_at=8)
    assert [s for s, _ in checkpoint_files(tmp_path)] == [3, 6]
    resumed, ckpt, seen = _toy_run(tmp_path, 11)
    assert ckpt.resumed_from == 6 and seen[0] == 6
    assert torch.equal(resumed, reference)
    # a finished run resumes to "nothing left to do" and keeps only the newest `keep` files
    assert [s for s, _ in checkpoint_files(tmp_path)] == [9, 11]
    again, _, seen = _toy_run(tmp_path, 11)
    assert seen == [] and torch.equal(again, reference)


def test_killed_process_resumes_bit_identical(tmp_path):
    """SIGKILL a real process mid-run (no cleanup at all), resume in a new one, compare with a clean run."""
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(
        """
        import sys, time, torch
        from condense.checkpoint import Checkpointer
        run_dir, total, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        w = torch.zeros(3, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.05)
        g = torch.Generator().manual_seed(3)
        ck = Checkpointer(None if run_dir == "-" else run_dir, {"w": w, "opt": opt, "g": g}, every=2)
        for it in ck.loop(total):
            loss = ((w - torch.randn(3, generator=g)) ** 2).sum()
            opt.zero_grad(); loss.backward(); opt.step(); ck.report(loss)
            time.sleep(pause)
        torch.set_printoptions(precision=10)
        print(w.detach().numpy().tobytes().hex())
        """
    ))
    env = {**os.environ, "CONDENSE_QUIET": "1"}
    clean = subprocess.run([sys.executable, str(script), "-", "30", "0"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), "30", "0.05"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(s >= 6 for s, _ in checkpoint_files(run_dir)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps = [s for s, _ in checkpoint_files(run_dir)]
    assert steps and max(steps) < 30, steps
    resumed = subprocess.run([sys.executable, str(script), str(run_dir), "30", "0"], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
    assert resumed == clean


def test_transient_nan_rolls_back_and_recovers():
    x, ckpt, seen = _toy_run(None, 10, nan_steps=(4,))
    assert ckpt.rollbacks == 1
    assert seen.count(3) == 2 and seen.count(4) == 2  # rewound to the snapshot at step 3, replayed 3 and 4
    assert torch.isfinite(x).all()


def test_persistent_nan_stops_with_a_clear_error():
    x = torch.zeros(2, requires_grad=True)
    ckpt = Checkpointer(None, {"x": x}, every=2, max_rollbacks=2)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 3 after 2 rollback\(s\)"):
        for it in ckpt.loop(10):
            ckpt.report(torch.tensor(float("nan")) if it == 3 else torch.tensor(1.0))
    assert ckpt.rollbacks == 2


def test_raise_policy_stops_at_once():
    x = torch.zeros(2)
    ckpt = Checkpointer(None, {"x": x}, on_nonfinite="raise")
    with pytest.raises(NonFiniteLossError, match="inf at step 0"):
        for _ in ckpt.loop(3):
            ckpt.report(float("inf"))


def test_identity_mismatch_refuses_to_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _toy_run(tmp_path, 10, stop_at=5, identity={"lr": 0.1})
    with pytest.raises(CheckpointMismatch, match=r"differs in \['lr'\]"):
        _toy_run(tmp_path, 10, identity={"lr": 0.2})


def test_loop_contract_errors():
    ckpt = Checkpointer(None, {"x": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="must call report"):
        for _ in ckpt.loop(2):
            pass
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Checkpointer(None, {}, every=0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        Checkpointer(None, {}, on_nonfinite="ignore")
    with pytest.raises(TypeError, match="cannot checkpoint a str"):
        Checkpointer(None, {"s": "text"}).loop(1).__next__()

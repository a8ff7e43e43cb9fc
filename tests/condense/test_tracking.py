"""Experiment tracking: the image grid, the TensorBoard and W&B back ends read back, the CLI flag, missing extras."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from condense import tracking


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list(folder.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {folder}"
    acc = EventAccumulator(str(files[0].parent), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_image_grid_by_hand():
    images = torch.tensor([[[[0.0, 2.0], [4.0, 8.0]]], [[[5.0, 5.0], [5.0, 5.0]]]])  # two grey 2x2 images
    grid = tracking.image_grid(images, row=2, pad=1)
    assert grid.shape == (3, 4, 7)  # 1 row: 1 + 2 + 1 high; 2 columns: 1 + 2 + 1 + 2 + 1 wide
    assert torch.equal(grid[0, 1:3, 1:3], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))  # min-max scaled on its own
    assert torch.equal(grid[:, 1:3, 4:6], torch.zeros(3, 2, 2))  # a constant image maps to 0
    assert bool((grid[:, 0] == 1).all()) and bool((grid[:, :, 3] == 1).all())  # white padding
    assert torch.equal(grid[0], grid[2])  # grey repeated to RGB
    with pytest.raises(ValueError, match="non-empty"):
        tracking.image_grid(torch.zeros(0, 1, 2, 2))


def test_tensorboard_events_read_back(tmp_path):
    images = torch.randn(4, 3, 5, 5)
    with tracking.tracking("tensorboard", tmp_path, config={"ipc": 1}):
        for step in range(1, 25):
            tracking.step("toy", step, 24, loss=torch.tensor(1.0 / step), lr=0.5, images=images)
        tracking.summary("toy/final", {"accuracy": {"mean": 0.75}, "name": "not a number"})
    assert tracking.active() is None
    acc = _events(tmp_path)
    loss = acc.Scalars("toy/loss")
    assert [e.step for e in loss] == [10, 20, 24]  # every SCALAR_EVERY steps and the last one
    assert loss[0].value == pytest.approx(0.1)
    assert [e.value for e in acc.Scalars("toy/lr")] == [0.5, 0.5, 0.5]
    assert len(acc.Scalars("toy/it_per_s")) == 2 and acc.Scalars("toy/rss_mb")[0].value > 0
    assert [e.step for e in acc.Images("toy/images")] == [24]  # IMAGE_EVERY = 100 > 24: only the last step
    assert acc.Scalars("toy/final/accuracy/mean")[0].value == pytest.approx(0.75)


def test_wandb_writes_an_offline_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    with tracking.tracking("wandb", tmp_path, config={"ipc": 1}, name="toy"):
        for step in range(1, 11):
            tracking.step("toy", step, 10, loss=float(step), images=torch.randn(2, 1, 4, 4))
        tracking.summary("toy/final", {"accuracy": 0.5})
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(tmp_path.rglob("*"))
    assert list(runs[0].glob("*.wandb")), "the offline run holds no .wandb record file"


def test_missing_back_ends_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'condense-kit\[wandb\]'"):
        tracking.start("wandb", tmp_path)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'condense-kit\[tensorboard\]'"):
        tracking.start("tensorboard", tmp_path)
    with pytest.raises(ValueError, match="log back end"):
        tracking.start("mlflow", tmp_path)
    assert tracking.active() is None


def test_no_tracker_changes_nothing():
    assert tracking.active() is None
    tracking.step("toy", 10, 10, loss=1.0)  # no back end: a no-op
    tracking.summary("toy", {"a": 1})


def test_cli_distill_logs_to_tensorboard(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "condense", "distill", "datadam", "--dataset", "digits", "--train-per-class", "5",
           "--iterations", "12", "--set", "ipc=1", "--set", "batch_real=4", "--device", "cpu", "--quiet",
           "--log", "tensorboard", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    acc = _events(out / "logs")
    assert [e.step for e in acc.Scalars("datadam/loss")] == [10, 12]
    assert [e.step for e in acc.Images("datadam/images")] == [12]
    assert acc.Scalars("datadam/final/iterations")[0].value == 12

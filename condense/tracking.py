"""Experiment tracking for long runs: TensorBoard or Weights & Biases (both optional extras).

One tracker is active at a time (:func:`start`, or ``--log tensorboard|wandb`` on ``distill``, ``buffer``,
``evaluate`` and ``bench run``). Library loops report to it through :func:`step` and :func:`summary`, which do
nothing when no tracker is active, so a run without ``--log`` is unchanged.

What is logged, under the loop's name (``datadam/``, ``mtt/``, ``experts/``, ...):

* every :data:`SCALAR_EVERY` steps: the loss, the loop's extra values (MTT's learned lr), iterations per second
  since the previous point, and memory (process RSS; peak CUDA memory on a GPU). Values that live on the device
  are read only then, so logging adds a host synchronisation every :data:`SCALAR_EVERY` steps, not every step;
* every :data:`IMAGE_EVERY` steps, and at the last step: a grid of the synthetic images (each image scaled to
  its own min-max range for display; at most :data:`GRID_IMAGES` of them);
* at the end: the run's final metrics (the distillation summary, the evaluation accuracies, a bench cell's
  results).

``tensorboard`` writes event files under the log folder (``pip install 'condense-kit[tensorboard]'``; read them
with ``tensorboard --logdir DIR``). ``wandb`` runs **offline** unless ``WANDB_MODE`` says otherwise, writing its
run folder under the log folder (``pip install 'condense-kit[wandb]'``; ``wandb sync`` uploads it later).
"""
from __future__ import annotations

import abc
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

BACKENDS = ("tensorboard", "wandb")
#: steps between two logged points of a loop's scalars
SCALAR_EVERY = 10
#: steps between two logged image grids
IMAGE_EVERY = 100
#: at most this many synthetic images in a grid (the first ones, class-major)
GRID_IMAGES = 100
#: images per row of a grid
GRID_ROW = 10
INSTALL = {"tensorboard": "pip install 'condense-kit[tensorboard]'", "wandb": "pip install 'condense-kit[wandb]'"}


def image_grid(images: torch.Tensor, row: int = GRID_ROW, pad: int = 1) -> torch.Tensor:
    """Images ``[N, C, H, W]`` (any range) tiled into one ``[3, rows·(H+pad)+pad, row·(W+pad)+pad]`` float image in
    [0, 1]; each image is min-max scaled on its own, grey images are repeated to RGB, padding is white."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [N, C, H, W] tensor, got {getattr(images, 'shape', images)}")
    x = images.detach().float().cpu()[:GRID_IMAGES]
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        x = x[:, :3] if x.shape[1] > 3 else torch.cat([x, x[:, -1:].repeat(1, 3 - x.shape[1], 1, 1)], 1)
    lo = x.amin((1, 2, 3), keepdim=True)
    hi = x.amax((1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    n, _, h, w = x.shape
    cols = min(row, n)
    rows = math.ceil(n / cols)
    # every image in a white (h + pad) x (w + pad) cell, the cells tiled rows x cols, one white border on top/left
    cells = torch.ones(rows * cols, 3, h + pad, w + pad)
    cells[:n, :, :h, :w] = x
    tiled = cells.view(rows, cols, 3, h + pad, w + pad).permute(2, 0, 3, 1, 4).reshape(3, rows * (h + pad),
                                                                                        cols * (w + pad))
    grid = torch.ones(3, rows * (h + pad) + pad, cols * (w + pad) + pad)
    grid[:, pad:, pad:] = tiled
    return grid


class Tracker(abc.ABC):
    """A logging back end (:class:`TensorBoard`, :class:`WandB`): scalars, image grids, a final summary."""

    backend = ""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._last: dict[str, tuple[int, float]] = {}

    @abc.abstractmethod
    def scalars(self, prefix: str, step: int, values: Mapping[str, float]) -> None:
        """Log ``values`` under ``prefix/`` at ``step``."""

    @abc.abstractmethod
    def image(self, tag: str, step: int, grid: torch.Tensor) -> None:
        """Log a [3, H, W] image in [0, 1] at ``step``."""

    @abc.abstractmethod
    def summary(self, prefix: str, values: Mapping[str, Any]) -> None:
        """Log a run's final numbers (nested mappings flattened)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and close; the files are complete afterwards."""

    # -- what the loops call ------------------------------------------------------------------------
    def step(self, loop: str, step: int, total: int, *, loss: Any = None, images: torch.Tensor | None = None,
             **values: Any) -> None:
        """Step ``step`` (1-based, after it ran) of loop ``loop``; logs on the schedule of the module docstring."""
        last = step == total
        if step % SCALAR_EVERY == 0 or last:
            now = time.perf_counter()
            prev_step, prev_time = self._last.get(loop, (None, None))
            row = {k: _number(v) for k, v in (("loss", loss), *values.items()) if v is not None}
            if prev_step is not None and step > prev_step:
                row["it_per_s"] = (step - prev_step) / max(now - prev_time, 1e-9)
            from condense.runtime import current_rss_mb

            row["rss_mb"] = current_rss_mb()
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
            self.scalars(loop, step, row)
            self._last[loop] = (step, now)
        if images is not None and (step % IMAGE_EVERY == 0 or last):
            self.image(f"{loop}/images", step, image_grid(images))


def _number(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().reshape(-1)[0])
    return float(value)


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a nested mapping, keys joined with ``/`` (strings, lists and None are left out)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flat(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


class TensorBoard(Tracker):
    backend = "tensorboard"

    def __init__(self, log_dir: Path, config: Mapping[str, Any] | None = None):
        super().__init__(log_dir)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(f"--log tensorboard needs the tensorboard package: {INSTALL['tensorboard']}") from exc
        self.writer = SummaryWriter(log_dir=str(log_dir))
        if config:
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(config.items())))

    def scalars(self, prefix, step, values):
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, tag, step, grid):
        self.writer.add_image(tag, grid, step)

    def summary(self, prefix, values):
        for key, value in _flat(values, prefix).items():
            self.writer.add_scalar(key, value, 0)
        self.writer.flush()

    def close(self):
        self.writer.close()


class WandB(Tracker):
    backend = "wandb"

    def __init__(self, log_dir: Path, config: Mapping[str, Any] | None = None, name: str | None = None):
        super().__init__(log_dir)
        try:
            import wandb
        except ImportError as exc:
            raise ImportError(f"--log wandb needs the wandb package: {INSTALL['wandb']}") from exc
        self.wandb = wandb
        mode = os.environ.get("WANDB_MODE", "offline")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "condense"), dir=str(log_dir), mode=mode,
                              config=dict(config or {}), name=name, reinit="finish_previous")

    def scalars(self, prefix, step, values):
        self.run.log({f"{prefix}/{k}": v for k, v in values.items()} | {f"{prefix}/step": step})

    def image(self, tag, step, grid):
        pixels = (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        self.run.log({tag: self.wandb.Image(pixels), f"{tag}/step": step})

    def summary(self, prefix, values):
        for key, value in _flat(values, prefix).items():
            self.run.summary[key] = value

    def close(self):
        self.run.finish()


_active: Tracker | None = None


def start(backend: str, log_dir: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
          name: str | None = None) -> Tracker:
    """Make a ``backend`` tracker writing under ``log_dir`` the active one (closing any previous one)."""
    global _active
    if backend not in BACKENDS:
        raise ValueError(f"log back end must be one of {list(BACKENDS)}, got {backend!r}")
    stop()
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in (config or {}).items() if isinstance(v, (str, int, float, bool)) or v is None}
    _active = TensorBoard(path, clean) if backend == "tensorboard" else WandB(path, clean, name)
    return _active


def stop() -> None:
    """Close the active tracker (its files are complete afterwards)."""
    global _active
    if _active is not None:
        tracker, _active = _active, None
        tracker.close()


def active() -> Tracker | None:
    return _active


@contextmanager
def tracking(backend: str, log_dir: str | os.PathLike, **kwargs: Any) -> Iterator[Tracker]:
    """``with tracking("tensorboard", "runs/logs"): condense.distill(...)``"""
    tracker = start(backend, log_dir, **kwargs)
    try:
        yield tracker
    finally:
        stop()


def step(loop: str, step: int, total: int, **values: Any) -> None:
    """Report step ``step`` of ``loop`` to the active tracker (nothing happens without one)."""
    if _active is not None:
        _active.step(loop, step, total, **values)


def summary(prefix: str, values: Mapping[str, Any]) -> None:
    """Report a run's final metrics to the active tracker (nothing happens without one)."""
    if _active is not None:
        _active.summary(prefix, values)

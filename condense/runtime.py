"""Runtime: device choice, seeding, deterministic mode, subnormal flushing, and a wall-time / peak-memory meter."""
from __future__ import annotations

import os
import random
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a device.

    Under a launcher that starts several processes (``torchrun``: ``WORLD_SIZE`` > 1 and ``LOCAL_RANK`` set),
    ``"auto"`` and ``"cuda"`` mean this process's own GPU, ``cuda:LOCAL_RANK``. Asking for CUDA on a machine
    without it, or for a GPU index that does not exist, raises ``ValueError``.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is None or spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    from condense import distributed

    if spec == "cuda" and "LOCAL_RANK" in os.environ and distributed.requested():
        spec = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if not isinstance(spec, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")
    text = spec.strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} asked for CUDA, but no CUDA device is available here; use 'cpu' or 'auto'")
        if text == "cuda":
            return torch.device("cuda")
        index = text.split(":", 1)[1]
        if not index.isdigit():
            raise ValueError(f"device={spec!r}: expected 'cuda:N' with an integer N")
        n = torch.cuda.device_count()
        if int(index) >= n:
            raise ValueError(f"device={spec!r}: only {n} CUDA device(s) here (cuda:0..cuda:{n - 1})")
        return torch.device(text)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (methods draw all randomness from one)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


@contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Opt-in deterministic kernels (slower on GPU): ``torch.use_deterministic_algorithms`` plus cuDNN flags.

    Restores the previous settings on exit. On CUDA it also sets ``CUBLAS_WORKSPACE_CONFIG`` as cuBLAS needs.
    """
    if not enabled:
        yield
        return
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0])
        torch.backends.cudnn.deterministic = prev[1]
        torch.backends.cudnn.benchmark = prev[2]
        if prev[3] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = prev[3]


_flush_depth = 0


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU while the block runs (``torch.set_flush_denormal``).

    Long CPU trainings with weight decay drive some weights and Adam moments into the subnormal range, where
    every arithmetic instruction is many times slower: NCI1 GIN epochs went from 1.0 s to 3-4 s after about 220
    epochs. Values below ``torch.finfo(dtype).tiny`` change the model by less than float rounding does. Nested
    blocks share one setting, switched off when the outermost exits (torch offers no getter to restore a user's
    own setting). No effect on CUDA tensors. Works as a decorator too: ``@flush_denormals()``.
    """
    global _flush_depth
    if _flush_depth == 0:
        torch.set_flush_denormal(True)
    _flush_depth += 1
    try:
        yield
    finally:
        _flush_depth -= 1
        if _flush_depth == 0:
            torch.set_flush_denormal(False)


# -- memory ------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``/proc/self/clear_refs`` value 5); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def current_rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return float("nan") if kb is None else kb / 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (since the last reset, where the OS supports one)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = ru / 1024 if sys.platform == "darwin" else ru  # macOS reports bytes, Linux KiB
    return kb / 1024


@dataclass
class Measurement:
    wall_s: float = float("nan")
    peak_rss_mb: float = float("nan")
    peak_cuda_mb: float | None = None
    rss_is_process_peak: bool = False

    def as_dict(self) -> dict:
        return {
            "wall_s": self.wall_s,
            "peak_rss_mb": self.peak_rss_mb,
            "peak_cuda_mb": self.peak_cuda_mb,
            "rss_is_process_peak": self.rss_is_process_peak,
        }


class Meter:
    """Measure wall time and peak memory of a block::

        with Meter(device) as m:
            ...
        m.result.wall_s, m.result.peak_rss_mb, m.result.peak_cuda_mb

    Peak RSS is the peak within the block on Linux (the kernel counter is reset on entry); elsewhere it is
    the process's lifetime peak, flagged by ``rss_is_process_peak``. On CUDA, ``peak_cuda_mb`` is
    ``torch.cuda.max_memory_allocated`` within the block.
    """

    def __init__(self, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else None
        self.result = Measurement()

    @property
    def _cuda(self) -> bool:
        return self.device is not None and self.device.type == "cuda" and torch.cuda.is_available()

    def __enter__(self) -> "Meter":
        self._reset_ok = _reset_peak_rss()
        if self._cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)
        self.result.wall_s = time.perf_counter() - self._t0
        self.result.peak_rss_mb = peak_rss_mb()
        self.result.rss_is_process_peak = not self._reset_ok
        if self._cuda:
            self.result.peak_cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20

"""Shared test setup: quiet progress bars, a private cache folder, and the real data root when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("CONDENSE_QUIET", "1")
os.environ.setdefault("DGLBACKEND", "pytorch")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Writable copies and downloads go to a per-session temp folder, never the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "condense-cache"
    monkeypatch.setenv("CONDENSE_CACHE", str(cache))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets (``$CONDENSE_DATA``, else ``../shared/data``); tests needing them skip if absent."""
    root = Path(os.environ.get("CONDENSE_DATA") or SHARED_DATA)
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture
def recording_sgd():
    """An SGD class that logs each construction (lr, momentum, weight decay) and the lr of every step; patch it in
    for ``torch.optim.SGD`` to check a training schedule."""
    import torch

    class RecordingSGD(torch.optim.SGD):
        built: list = []
        steps: list = []

        def __init__(self, params, lr, momentum, weight_decay):
            super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
            RecordingSGD.built.append((lr, momentum, weight_decay))

        def step(self, closure=None):
            RecordingSGD.steps.append(self.param_groups[0]["lr"])
            return super().step(closure)

    return RecordingSGD

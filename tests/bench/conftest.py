"""Bench test fixtures: the ``fakecond`` stand-in method (see fake_method.py) and tiny suites around it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from condense import registry
from condense.bench.execute import load_plugins
from condense.bench.suites import Grid, Suite

FAKE = Path(__file__).with_name("fake_method.py")


@pytest.fixture
def fake(monkeypatch):
    """Register ``fakecond`` (and its ImageSet evaluator) for one test; undone afterwards."""
    monkeypatch.setitem(registry.EVALUATORS, "ImageSet", registry.EVALUATORS["ImageSet"])
    load_plugins([str(FAKE)])
    module = sys.modules["fake_method"]
    module.install()
    yield module
    registry.unregister("fakecond")


def tiny_suite(datasets=("toy",), ipcs=(1, 2), seeds=(0, 1), name="tiny", **grid) -> Suite:
    """``fakecond`` over datasets x ipcs x seeds (4 cells by default)."""
    return Suite(name, "bench test suite", (
        Grid("fakecond", tuple(datasets), budgets=tuple({"ipc": k} for k in ipcs), seeds=tuple(seeds), **grid),))


@pytest.fixture
def tiny():
    """The :func:`tiny_suite` factory."""
    return tiny_suite

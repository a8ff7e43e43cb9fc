"""FF-G2M: full-frequency GNN-to-MLP distillation (Wu et al., AAAI 2024), with the GLNN and plain-MLP baselines.

The method and its formulas are in :mod:`condense.graph.g2m.method`; the other modules hold one job each (config,
losses, problem, training, comparison, evaluate, inference_speed). The names most users need are importable from
here; they load on first use, so that finding the package (as the CLI does at start-up) does not import PyTorch
Geometric.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("COMPARE_MODES", "Comparison", "compare"), "comparison"),
    **dict.fromkeys(("MODES", "PLANETOID", "G2MConfig"), "config"),
    **dict.fromkeys(("g2m_loss", "hfd_loss", "kd_loss", "label_loss", "lfd_edge_values", "lfd_loss"), "losses"),
    **dict.fromkeys(("FFG2M", "NodeGraph", "student_artifact"), "method"),
    **dict.fromkeys(("inductive_split", "mask_split", "prepare_problem", "random_split"), "problem"),
    **dict.fromkeys(("inference_benchmark", "speed", "speed_table", "synthetic_graph", "throughput"),
                    "inference_speed"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

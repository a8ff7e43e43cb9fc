"""Method registry: one entry point, ``condense.distill(name, **kwargs)``, for every method.

The table below is data. Each entry names the module and function that runs the method, so nothing in
``vision``/``graph`` is imported until a method is asked for. A method's runner has the signature::

    run(dataset: str = <default>, *, data_root=None, device="auto", seed=0, train_per_class=None,
        out=None, quiet=None, **overrides) -> Artifact

where ``overrides`` are config fields (typed values or ``--set`` strings) and ``out`` is a run folder
(checkpoints, the artifact, plots). ``cli_options`` lists the method's own command-line flags, each mapped
to a keyword argument of ``run``.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class CliOption:
    """A method-specific CLI flag: ``flag`` (e.g. ``--ipc``) feeds ``run(dest=value)``."""

    flag: str
    type: Callable[[str], Any] | None
    help: str
    dest: str | None = None
    action: str | None = None  # e.g. "store_true"

    @property
    def key(self) -> str:
        return self.dest or self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class MethodEntry:
    name: str
    target: str  # "module:function"
    family: str  # "vision" or "graph"
    produces: str  # artifact kind
    summary: str
    paper: str
    default_dataset: str
    cli_options: tuple[CliOption, ...] = field(default=())

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    def available(self) -> bool:
        """Whether the method's module is installed (checked without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def resolve(self) -> Callable[..., Any]:
        module_name, _, func = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, func)


_REGISTRY: dict[str, MethodEntry] = {}


def register(entry: MethodEntry, *, replace: bool = False) -> None:
    """Add a method (plugins and tests use this); a name clash raises unless ``replace``."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"method {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


for _entry in (
    MethodEntry(
        name="datadam",
        target="condense.vision.datadam:run",
        family="vision",
        produces="ImageSet",
        summary="image dataset distillation by spatial-attention and embedding matching",
        paper="Sajedi et al., DataDAM, ICCV 2023",
        default_dataset="digits",
        cli_options=(
            CliOption("--ipc", int, "images per class"),
            CliOption("--iterations", int, "distillation iterations"),
            CliOption("--init", str, "initialisation: real, noise or kmeans"),
        ),
    ),
    MethodEntry(
        name="mtt",
        target="condense.vision.trajectory:run",
        family="vision",
        produces="ImageSet",
        summary="image dataset distillation by matching expert training trajectories (with AST options)",
        paper="Cazenavette et al., MTT, CVPR 2022; Shen et al., AST, 2023",
        default_dataset="digits",
        cli_options=(
            CliOption("--ipc", int, "images per class"),
            CliOption("--iterations", int, "distillation iterations"),
            CliOption("--buffer", str, "expert buffer folder (from `condense buffer`)"),
            CliOption("--ast", None, "turn on the AST improvements (preset `ast`)", action="store_true"),
        ),
    ),
    MethodEntry(
        name="mirage",
        target="condense.graph.mirage:run",
        family="graph",
        produces="TreeSet",
        summary="graph-classification distillation by frequent computation-tree itemsets",
        paper="Gupta et al., Mirage, ICLR 2024",
        default_dataset="MUTAG",
        cli_options=(
            CliOption("--depth", int, "computation-tree depth L (hops)"),
            CliOption("--support", float, "per-class support threshold: a fraction in (0, 1] or a count >= 1"),
        ),
    ),
    MethodEntry(
        name="ffg2m",
        target="condense.graph.g2m:run",
        family="graph",
        produces="Student",
        summary="GNN-to-MLP distillation of low- and high-frequency knowledge",
        paper="Wu et al., FF-G2M, AAAI 2024",
        default_dataset="cora",
        cli_options=(
            CliOption("--teacher", str, "teacher GNN: gcn, sage, gat or appnp"),
            CliOption("--mode", str, "ffg2m, glnn, mlp, lfd_only or hfd_only"),
        ),
    ),
):
    register(_entry)


def get(name: str) -> MethodEntry:
    """The registry entry for ``name``; an unknown name raises an error listing the known ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(methods())}")
    return _REGISTRY[key]


def methods(*, include_unavailable: bool = False) -> list[str]:
    """Names of the registered methods whose code is installed (all of them with ``include_unavailable``)."""
    return sorted(n for n, e in _REGISTRY.items() if include_unavailable or e.available())


def entries() -> list[MethodEntry]:
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def distill(name: str, **kwargs: Any):
    """Run method ``name`` and return its artifact, e.g. ``distill("datadam", dataset="mnist", ipc=10)``.

    With ``out=DIR`` the artifact is also saved (atomically) as ``DIR/<name>.safetensors``; its path is
    available as ``artifact.path``.
    """
    from pathlib import Path

    entry = get(name)
    if not entry.available():
        raise ValueError(f"method {name!r} is registered but its module {entry.module!r} is not installed")
    artifact = entry.resolve()(**kwargs)
    out = kwargs.get("out")
    if out is not None:
        artifact.path = artifact.save(Path(out) / f"{entry.name}.safetensors")
    return artifact


# -- evaluation and extra CLI verbs (also resolved lazily) -----------------------------------------
#: artifact kind -> "module:function" evaluating it. Signature and result contract (the CLI and the bench rely
#: on it)::
#:
#:     f(artifact, *, model=None, runs=None, data_root=None, device="auto", seed=0, baselines=False,
#:       **overrides) -> {
#:         "kind": "ImageSet", "method": "datadam", "dataset": "mnist", "model": "convnet-d3",
#:         "results": {                      # one entry per trained set: "distilled", and with baselines=True
#:             "distilled": {"accuracy": {"mean": 0.91, "std": 0.01, "runs": [...]}, ...},   # "random", "full", ...
#:         },
#:         "compression": {"samples": ratio, "bytes": ratio, "distilled_samples": n, "full_samples": n,
#:                         "distilled_bytes": b, "full_bytes": b},
#:         "timing": {...}, "_text": "a human-readable table (popped by the CLI)",
#:     }
#:
#: Metrics are fractions in [0, 1] (accuracy, roc_auc); std is the population std over runs.
EVALUATORS: dict[str, str] = {
    "ImageSet": "condense.vision.evaluate:evaluate_artifact",
    "TreeSet": "condense.graph.mirage:evaluate_artifact",
    "Student": "condense.graph.g2m:evaluate_artifact",
}

def run_stats(values) -> dict[str, Any]:
    """A metric over runs in the contract's form: ``{"mean", "std" (population), "runs"}``. NaN runs (e.g. a
    ROC-AUC undefined on a one-class split) stay in ``runs`` but not in mean and std; all NaN gives NaN."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    ok = arr[~np.isnan(arr)]
    return {"mean": float(ok.mean()) if ok.size else float("nan"),
            "std": float(ok.std()) if ok.size else float("nan"), "runs": arr.tolist()}


CLI_HOOKS: tuple[str, ...] = (
    # "module:function" taking the CLI's subparsers object and adding verbs (buffer, g2m, bench, ...);
    # these modules import only argparse at top level and defer heavy imports to their handlers
    "condense.vision.cli:add_commands",
    "condense.graph.cli:add_commands",
    "condense.bench.cli:add_commands",
)


def _resolve_target(target: str) -> Callable[..., Any] | None:
    module_name, _, func = target.partition(":")
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(module_name), func)


def evaluator(kind: str) -> Callable[..., Any]:
    """The evaluation function for an artifact kind."""
    if kind not in EVALUATORS:
        raise ValueError(f"no evaluator for artifact kind {kind!r}; known: {sorted(EVALUATORS)}")
    func = _resolve_target(EVALUATORS[kind])
    if func is None:
        raise ValueError(f"the evaluator for {kind} ({EVALUATORS[kind]}) is not installed")
    return func


def cli_hooks() -> list[Callable[..., Any]]:
    """The installed CLI extensions (see :data:`CLI_HOOKS`)."""
    return [f for f in (_resolve_target(t) for t in CLI_HOOKS) if f is not None]

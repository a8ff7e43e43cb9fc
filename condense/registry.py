"""Registries: the methods behind ``condense.distill``, the evaluators behind ``condense.evaluate``, and named
user networks.

**Methods.** The table below is data. Each entry names the method's class (see :mod:`condense.method` for the
protocol) as ``"module:Class"``, so nothing in ``condense.vision``/``condense.graph`` is imported until a method
is asked for. An entry also records the data kinds the method accepts, its CLI flags and the notes on its presets;
the config class and the preset table are read from the class itself (:attr:`MethodEntry.config_class`,
:attr:`MethodEntry.presets`).

**Evaluators** (:data:`EVALUATORS`) score an artifact kind by training fresh models on it; their result is the
contract the CLI's ``--json`` prints and the bench records.

**Networks.** :class:`NetworkRegistry` maps a name to a user's builder; ``condense.vision.nets.register`` and
``condense.graph.teachers.register`` are instances, so a user's network can be named wherever the library takes a
network name.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class CliOption:
    """A method-specific CLI flag: ``flag`` (e.g. ``--ipc``) feeds ``condense.distill(dest=value)``.

    With ``action="store_true"`` and a ``const``, the flag sets ``dest`` to ``const`` (``--ast`` is
    ``preset="mtt-ast"``)."""

    flag: str
    type: Callable[[str], Any] | None
    help: str
    dest: str | None = None
    action: str | None = None  # e.g. "store_true"
    const: Any = None

    @property
    def key(self) -> str:
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    @property
    def attribute(self) -> str:
        """The argparse attribute the flag is stored in."""
        return self.flag.lstrip("-").replace("-", "_") if self.const is not None else self.key


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its class (``"module:Class"``), what it makes and takes, and its CLI flags."""

    name: str
    target: str  # "module:Class" implementing condense.method.Method
    family: str  # "vision" or "graph"
    produces: str  # artifact kind
    summary: str
    paper: str
    default_dataset: str
    data_kinds: tuple[str, ...] = ()  # what ``data=`` may be, besides a catalogue name
    cli_options: tuple[CliOption, ...] = field(default=())
    preset_notes: str | None = None  # "module:TABLE" of {preset: {field: where its value comes from}}
    cli_handler: str | None = None  # "module:function(args, kwargs)" replacing the generic distill command

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    def available(self) -> bool:
        """Whether the method's module is installed (checked without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def resolve(self) -> Any:
        """The method class."""
        return resolve_target(self.target)

    @property
    def config_class(self) -> type:
        return self.resolve().config_class

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        return dict(self.resolve().presets)

    def notes(self, presets: list[str]) -> dict[str, Any]:
        """Where the values of ``presets`` come from, for those that say (recorded in artifacts)."""
        if self.preset_notes is None:
            return {}
        table = resolve_target(self.preset_notes)
        return {name: table[name] for name in presets if name in table}


def resolve_target(target: str) -> Any:
    """Import ``"module:attribute"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


_REGISTRY: dict[str, MethodEntry] = {}


def register(entry: MethodEntry, *, replace: bool = False) -> None:
    """Add a method (plugins and tests use this); a name clash raises unless ``replace``."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"method {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


_IMAGE_DATA = ("tensors (images [N, C, H, W], labels [N])", "condense.vision.data.ImageData",
               "a torch.utils.data.Dataset of (image, label)")
for _entry in (
    MethodEntry(
        name="datadam",
        target="condense.vision.datadam:DataDAM",
        family="vision",
        produces="ImageSet",
        summary="image dataset distillation by spatial-attention and embedding matching",
        paper="Sajedi et al., DataDAM, ICCV 2023",
        default_dataset="digits",
        data_kinds=_IMAGE_DATA,
        cli_options=(
            CliOption("--ipc", int, "images per class"),
            CliOption("--iterations", int, "distillation iterations"),
            CliOption("--init", str, "initialisation: real, noise or kmeans"),
        ),
    ),
    MethodEntry(
        name="mtt",
        target="condense.vision.trajectory:TrajectoryMatching",
        family="vision",
        produces="ImageSet",
        summary="image dataset distillation by matching expert training trajectories (with AST options)",
        paper="Cazenavette et al., MTT, CVPR 2022; Shen et al., AST, 2023",
        default_dataset="digits",
        data_kinds=_IMAGE_DATA,
        cli_options=(
            CliOption("--ipc", int, "images per class"),
            CliOption("--iterations", int, "distillation iterations"),
            CliOption("--buffer", str, "expert buffer folder (from `condense buffer`; default: trained first)"),
            CliOption("--ast", None, "turn on the AST improvements (the same as --preset mtt-ast)", dest="preset",
                      action="store_true", const="mtt-ast"),
        ),
        preset_notes="condense.vision.presets:MTT_PRESET_NOTES",
    ),
    MethodEntry(
        name="mirage",
        target="condense.graph.mirage:Mirage",
        family="graph",
        produces="TreeSet",
        summary="graph-classification distillation by frequent computation-tree itemsets",
        paper="Gupta et al., Mirage, ICLR 2024",
        default_dataset="MUTAG",
        data_kinds=("a PyG dataset of labelled graphs", "a list of torch_geometric.data.Data with graph labels y",
                    "condense.graph.data.GraphSplit"),
        cli_options=(
            CliOption("--depth", int, "computation-tree depth L (hops)"),
            CliOption("--support", float, "per-class support threshold: a fraction in (0, 1] or a count >= 1"),
        ),
    ),
    MethodEntry(
        name="ffg2m",
        target="condense.graph.g2m.method:FFG2M",
        family="graph",
        produces="Student",
        summary="GNN-to-MLP distillation of low- and high-frequency knowledge",
        paper="Wu et al., FF-G2M, AAAI 2024",
        default_dataset="cora",
        data_kinds=("a torch_geometric.data.Data with x, y, edge_index (and optional split masks)",
                    "a dgl.DGLGraph with node data feat, label (dgl extra)"),
        cli_options=(
            CliOption("--teacher", str, "teacher GNN: gcn, sage, gat, appnp or a registered name"),
            CliOption("--mode", str, "ffg2m, glnn, mlp, lfd_only or hfd_only"),
            CliOption("--setting", str, "transductive (default) or inductive (20%% of the test nodes held out)"),
            CliOption("--compare", None, "train teacher, MLP, GLNN and the mode over --runs seeds", action="store_true"),
            CliOption("--runs", int, "seeds for --compare (default: 5, as the paper)"),
        ),
        cli_handler="condense.graph.g2m.comparison:cli_distill",
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


def distill(name: str, data: Any = None, *, config: Any = None, preset: str | None = None,
            data_root: str | os.PathLike | None = None, device: Any = "auto", seed: int = 0,
            train_per_class: int | None = None, out: str | os.PathLike | None = None, quiet: bool | None = None,
            data_options: Mapping[str, Any] | None = None, **overrides: Any):
    """Run method ``name`` on ``data`` and return its artifact.

    ``data``: a catalogue dataset name (default: the method's ``default_dataset``) or one of the method's data
    kinds (``condense.registry.get(name).data_kinds``). ``config``: a config object (complete: no dataset preset
    applies) or a mapping of fields; ``preset``: a named preset; ``overrides``: config fields, plus the method's
    own inputs (MTT ``buffer``, FF-G2M ``teacher`` as a module or logits, DataDAM ``init_images``). The order is
    defaults, the dataset's preset, ``preset``, ``config``, ``overrides`` (see :meth:`condense.method.Method.configure`).

    ``train_per_class`` keeps a seeded, stratified subsample of a catalogue dataset's training split;
    ``data_options`` are further keyword arguments of the method's ``load_data`` (the image methods take
    ``image_size`` and ``stream`` for image folders: :func:`condense.vision.data.load_folder`). With
    ``out=DIR`` the run's checkpoints and plots go to DIR and the artifact is saved (atomically) as
    ``DIR/<name>.safetensors``; its path is ``artifact.path``. The presets applied are recorded in
    ``artifact.meta["extra"]["presets"]``.
    """
    from condense.progress import quiet as quiet_mode

    entry = get(name)
    if not entry.available():
        raise ValueError(f"method {name!r} is registered but its module {entry.module!r} is not installed")
    cls = entry.resolve()
    data = entry.default_dataset if data is None else data
    settings, inputs = cls.split_inputs(overrides)
    with quiet_mode(quiet) if quiet is not None else nullcontext():
        options = dict(data_options or {})
        if options:
            accepted = inspect.signature(cls.load_data).parameters
            unknown = sorted(k for k in options if k not in accepted)
            if unknown:
                raise ValueError(f"method {name!r} loads data without the option(s) {unknown} (image_size and "
                                 "stream apply to image folders)")
        if isinstance(data, (str, os.PathLike)):
            data = cls.load_data(str(data), data_root=data_root, train_per_class=train_per_class, seed=seed,
                                 **options)
        elif train_per_class is not None or options:
            raise ValueError("train_per_class and data_options apply to a dataset loaded by name or path; with "
                             "your own data, pass it prepared")
        cfg, chain = cls.configure(data, preset=preset, config=config, **settings)
        artifact = cls(cfg).fit(data, device=device, seed=seed, run_dir=out, **inputs)
    artifact.meta.setdefault("extra", {})["presets"] = {"used": chain, "notes": entry.notes(chain)}
    if out is not None:
        from condense import distributed

        artifact.path = Path(out) / f"{entry.name}.safetensors"
        if distributed.is_main():  # under torchrun every rank holds the same artifact; rank 0 writes it
            artifact.save(artifact.path)
        distributed.barrier()
    return artifact


# -- evaluation ------------------------------------------------------------------------------------------
#: artifact kind -> "module:function" evaluating it. Signature and result contract (the CLI's ``--json``, the bench
#: and :func:`evaluate` share it)::
#:
#:     f(artifact, data=None, *, model=None, runs=None, data_root=None, device="auto", seed=0, baselines=False,
#:       **overrides) -> {
#:         "kind": "ImageSet", "method": "datadam", "dataset": "mnist", "model": "convnet-d3",
#:         "results": {                      # one entry per trained set: "distilled", and with baselines=True
#:             "distilled": {"accuracy": {"mean": 0.91, "std": 0.01, "runs": [...]}, ...},   # "random", "full", ...
#:         },
#:         "compression": {"samples": ratio, "bytes": ratio, "distilled_samples": n, "full_samples": n,
#:                         "distilled_bytes": b, "full_bytes": b},
#:         "timing": {...}, "table": "the human-readable table the CLI prints",
#:     }
#:
#: ``data`` is the real data to score on when the artifact's source is not a catalogue dataset (see each
#: evaluator). Metrics are fractions in [0, 1] (accuracy, roc_auc); std is the population std over runs.
EVALUATORS: dict[str, str] = {
    "ImageSet": "condense.vision.evaluate:evaluate_artifact",
    "TreeSet": "condense.graph.mirage:evaluate_artifact",
    "Student": "condense.graph.g2m.evaluate:evaluate_artifact",
}


def run_stats(values) -> dict[str, Any]:
    """A metric over runs in the contract's form: ``{"mean", "std" (population), "runs"}``. NaN runs (e.g. a
    ROC-AUC undefined on a one-class split) stay in ``runs`` but not in mean and std; all NaN gives NaN."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    ok = arr[~np.isnan(arr)]
    return {"mean": float(ok.mean()) if ok.size else float("nan"),
            "std": float(ok.std()) if ok.size else float("nan"), "runs": arr.tolist()}


def _installed(target: str) -> Callable[..., Any] | None:
    module_name = target.partition(":")[0]
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return resolve_target(target)


def evaluator(kind: str) -> Callable[..., Any]:
    """The evaluation function for an artifact kind."""
    if kind not in EVALUATORS:
        raise ValueError(f"no evaluator for artifact kind {kind!r}; known: {sorted(EVALUATORS)}")
    func = _installed(EVALUATORS[kind])
    if func is None:
        raise ValueError(f"the evaluator for {kind} ({EVALUATORS[kind]}) is not installed")
    return func


def evaluate(artifact: Any, data: Any = None, *, model: str | None = None, runs: int | None = None,
             baselines: bool = False, data_root: str | os.PathLike | None = None, device: Any = "auto", seed: int = 0,
             quiet: bool | None = None, **overrides: Any) -> dict[str, Any]:
    """Train fresh models on ``artifact`` (an artifact or its file) and score them on real data.

    Returns the evaluator contract above, exactly what ``condense evaluate --json`` prints (plus nothing): the
    table the CLI shows is under ``"table"``. ``data`` is needed only when the artifact was made from your own data
    (its source is not a catalogue dataset): the real evaluation data, in the kinds each evaluator documents.
    ``model`` is a network name (a built-in one or one you registered), ``overrides`` evaluation settings.
    """
    from condense.artifacts import Artifact, load
    from condense.progress import quiet as quiet_mode

    if isinstance(artifact, (str, os.PathLike)):
        artifact = load(artifact)
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be a condense artifact or its file, got {type(artifact).__name__}")
    with quiet_mode(quiet) if quiet is not None else nullcontext():
        return evaluator(artifact.kind)(artifact, data, model=model, runs=runs, data_root=data_root, device=device,
                                        seed=seed, baselines=baselines, **overrides)


# -- named networks ---------------------------------------------------------------------------------------
class NetworkRegistry:
    """Names for users' own networks: ``register(name, builder)``, then the name works wherever the library takes a
    network name of this kind (``what`` says which, and the builder's signature)."""

    def __init__(self, what: str, signature: str, builtin: Callable[[str], bool]):
        self.what = what
        self.signature = signature
        self._builtin = builtin
        self._builders: dict[str, Callable[..., Any]] = {}

    def __call__(self, name: str, builder: Callable[..., Any] | None = None, *, replace: bool = False):
        """Register ``builder`` under ``name``; without a builder, return a decorator (``@register("my-net")``)."""
        if builder is None:
            return lambda fn: self(name, fn, replace=replace) or fn
        if not isinstance(name, str) or not name.strip() or name != name.strip().lower():
            raise ValueError(f"a {self.what} name must be a non-empty lower-case string, got {name!r}")
        if not callable(builder):
            raise TypeError(f"builder must be callable as {self.signature}, got {type(builder).__name__}")
        if self._builtin(name):
            raise ValueError(f"{name!r} is a built-in {self.what}; choose another name")
        if name in self._builders and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered (pass replace=True to replace it)")
        self._builders[name] = builder
        return None

    def get(self, name: str) -> Callable[..., Any] | None:
        return self._builders.get(name.lower()) if isinstance(name, str) else None

    def unregister(self, name: str) -> None:
        self._builders.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._builders)


CLI_HOOKS: tuple[str, ...] = (
    # "module:function" taking the CLI's subparsers object and adding verbs (buffer, bench, ...);
    # these modules import only argparse at top level and defer heavy imports to their handlers
    "condense.vision.cli:add_commands",
    "condense.graph.cli:add_commands",
    "condense.bench.cli:add_commands",
)


def cli_hooks() -> list[Callable[..., Any]]:
    """The installed CLI extensions (see :data:`CLI_HOOKS`)."""
    return [f for f in (_installed(t) for t in CLI_HOOKS) if f is not None]

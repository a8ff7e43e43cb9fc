"""Bench suites: named grids of (method, dataset, budget, config, evaluation model, seed) as plain data.

A :class:`Suite` is a list of :class:`Grid` entries; :func:`expand` turns it into :class:`Cell` objects, the
cartesian product ``datasets × budgets × variants × seeds × models`` of every grid, in that order. A cell is
everything the runner needs for one measurement, and nothing about how to run a particular method:

* ``method`` names a registry entry; ``budget``, ``config`` (and the ``variant`` merged into it) are passed as
  keyword arguments to ``condense.distill(method, dataset=..., seed=..., train_per_class=..., **budget, **config)``,
  so method-specific inputs such as ``buffer=...`` (MTT) or ``teacher=...`` (FF-G2M) are just entries there;
* ``model``, ``runs`` and ``evaluation`` go to the artifact kind's evaluator,
  ``registry.evaluator(kind)(artifact, model=..., runs=..., baselines=True, **evaluation)``;
* ``prepare`` lists :class:`Prepare` steps: ``condense`` command lines run once (and cached) before the cells
  that need them, e.g. ``condense buffer ...`` for MTT's expert buffer. A config value ``"{prep:NAME}"`` is
  replaced by the output folder of the step called NAME.

A new method therefore plugs into the bench with one :class:`Grid` and no bench code. Suites can also be read
from a JSON file with the same field names (``condense bench run my_suite.json``): ``{"name": ...,
"description": ..., "grids": [{"method": ..., "datasets": [...], ...}]}``.

Field names of method configs used below are the ones the methods' CLI flags and specs define (``ipc``,
``iterations``, ``buffer``, ``preset``, ``syn_steps``, ``expert_epochs``, ``max_start_epoch``, ``depth``,
``support``, ``node_codes``, ``n_codes``, ``max_itemset_size``, ``teacher``, ``mode``, ``max_epochs``,
``patience``) and, for evaluation, ``epochs``; ``condense buffer`` takes ``--experts``, ``--epochs``, ``--zca``
and ``--ast``. A cell whose key a method does not know fails with the
method's ``ConfigError`` and is recorded as a failed cell (the runner never drops a setting silently).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from itertools import product
from pathlib import Path
from typing import Any, Iterable, Mapping

from condense.shard import Shard

#: placeholders a preparation command may use; ``{out}`` is the step's own output folder
PREPARE_PLACEHOLDERS = ("dataset", "seed", "device", "train_per_class", "out")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PREP_REF = re.compile(r"^\{prep:([A-Za-z0-9_.-]+)\}$")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the form that cell keys hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def format_kv(mapping: Mapping[str, Any]) -> str:
    """``{"ipc": 10, "ast": True}`` -> ``"ipc=10 ast=true"`` (display only)."""
    return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in mapping.items())


def describe(cell: Mapping[str, Any]) -> str:
    """``"datadam digits ipc=1 model=convnet seed=0"`` for a cell (or a record, which holds the cell's fields)."""
    parts = [cell.get("label") or cell.get("method", "?"), cell.get("dataset", "?"),
             format_kv(cell.get("budget") or {}), format_kv(cell.get("variant") or {})]
    if cell.get("model"):
        parts.append(f"model={cell['model']}")
    parts.append(f"seed={cell.get('seed')}")
    if (cell.get("ranks") or 1) > 1:
        parts.append(f"ranks={cell['ranks']}")
    return " ".join(p for p in parts if p)


# -- the data types -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepare:
    """A preparation step: ``condense <argv...>`` run once, before the first cell that needs it.

    ``argv`` may use the placeholders ``{dataset}``, ``{seed}``, ``{device}``, ``{train_per_class}`` and
    ``{out}`` (the step's output folder, chosen by the runner and shared by every cell whose step resolves to
    the same command). A step is done when its command exits 0; it is rerun (and may resume) otherwise.
    """

    name: str
    argv: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"prepare name must be a word of letters, digits, '_', '.', '-'; got {self.name!r}")
        if isinstance(self.argv, str) or not all(isinstance(a, str) for a in self.argv) or not self.argv:
            raise TypeError(f"prepare {self.name!r}: argv must be a non-empty list of strings, got {self.argv!r}")
        object.__setattr__(self, "argv", tuple(self.argv))
        unknown = {m for a in self.argv for m in _PLACEHOLDER.findall(a)} - set(PREPARE_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"prepare {self.name!r}: unknown placeholder(s) {sorted(unknown)}; "
                             f"known: {', '.join(PREPARE_PLACEHOLDERS)}")

    def resolve(self, *, dataset: str, seed: int, device: str, train_per_class: int | None) -> tuple[str, ...]:
        """The command line with every placeholder but ``{out}`` filled in."""
        values = {"dataset": dataset, "seed": str(seed), "device": device, "train_per_class": train_per_class}

        def fill(match: re.Match) -> str:
            key = match.group(1)
            if key == "out":
                return match.group(0)
            if values[key] is None:
                raise ValueError(f"prepare {self.name!r} uses {{{key}}} but the cell has no {key}")
            return str(values[key])

        return tuple(_PLACEHOLDER.sub(fill, a) for a in self.argv)


@dataclass(frozen=True)
class Grid:
    """One method's part of a suite: the product ``datasets × budgets × variants × seeds × models``.

    ``budget`` dicts and ``config`` (+ each ``variant``) are keyword arguments of the method's runner;
    ``models``/``runs``/``evaluation`` go to the evaluator. ``label`` is the name shown in reports and used to
    look up published numbers (default: the method name; e.g. ``"ast"`` for MTT with the AST options).
    ``notes`` say where settings come from (published, or a library choice). ``ranks > 1`` runs each cell's worker
    under ``torchrun`` with that many processes (one GPU each on CUDA; gloo processes on the CPU). ``on_cpu``
    replaces ``datasets``, ``config``/``evaluation`` keys, ``runs`` and ``train_per_class`` when the suite runs on a
    CPU (a quick dry run of a suite sized for a GPU), e.g. ``{"datasets": ["digits"], "config": {...}, "runs": 1}``.
    """

    method: str
    datasets: tuple[str, ...]
    budgets: tuple[Mapping[str, Any], ...] = ({},)
    config: Mapping[str, Any] = field(default_factory=dict)
    variants: tuple[Mapping[str, Any], ...] = ({},)
    seeds: tuple[int, ...] = (0,)
    models: tuple[str | None, ...] = (None,)
    runs: int | None = None
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    train_per_class: int | None = None
    prepare: tuple[Prepare, ...] = ()
    label: str | None = None
    notes: str = ""
    ranks: int = 1
    on_cpu: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def seq(name: str) -> tuple:
            value = getattr(self, name)
            if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
                raise TypeError(f"grid {self.method!r}: {name} must be a list, got {value!r}")
            value = tuple(value)
            if not value:
                raise ValueError(f"grid {self.method!r}: {name} must not be empty")
            object.__setattr__(self, name, value)
            return value

        if not isinstance(self.method, str) or not self.method:
            raise TypeError(f"grid method must be a method name, got {self.method!r}")
        for d in seq("datasets"):
            if not isinstance(d, str) or not d:
                raise TypeError(f"grid {self.method!r}: datasets must be names, got {d!r}")
        for name in ("budgets", "variants"):
            for m in seq(name):
                if not isinstance(m, Mapping):
                    raise TypeError(f"grid {self.method!r}: each of {name} must be a mapping, got {m!r}")
        for s in seq("seeds"):
            if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                raise ValueError(f"grid {self.method!r}: seeds must be non-negative integers, got {s!r}")
        for m in seq("models"):
            if m is not None and not isinstance(m, str):
                raise TypeError(f"grid {self.method!r}: models must be names or null, got {m!r}")
        for name in ("runs", "train_per_class"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"grid {self.method!r}: {name} must be a positive integer or null, got {v!r}")
        for name in ("config", "evaluation", "on_cpu"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(f"grid {self.method!r}: {name} must be a mapping, got {getattr(self, name)!r}")
        if not isinstance(self.ranks, int) or isinstance(self.ranks, bool) or self.ranks < 1:
            raise ValueError(f"grid {self.method!r}: ranks must be a positive integer, got {self.ranks!r}")
        unknown = set(self.on_cpu) - {"datasets", "config", "evaluation", "runs", "train_per_class"}
        if unknown:
            raise ValueError(f"grid {self.method!r}: on_cpu takes datasets, config, evaluation, runs and "
                             f"train_per_class, got {sorted(unknown)}")
        prepare = tuple(p if isinstance(p, Prepare) else Prepare(**p) for p in self.prepare)
        object.__setattr__(self, "prepare", prepare)
        names = [p.name for p in prepare]
        if len(set(names)) != len(names):
            raise ValueError(f"grid {self.method!r}: prepare step names must be unique, got {names}")
        # JSON round trip: a cell must be exactly what a results file can hold
        for name in ("config", "evaluation", "on_cpu"):
            object.__setattr__(self, name, json.loads(canonical_json(dict(getattr(self, name)))))
        for name in ("budgets", "variants"):
            object.__setattr__(self, name, tuple(json.loads(canonical_json(dict(m))) for m in getattr(self, name)))
        configured = set(self.config).union(*self.variants)
        clash = set().union(*(set(b) & configured for b in self.budgets))
        if clash:
            raise ValueError(f"grid {self.method!r}: budget key(s) {sorted(clash)} are also set in config/variants")
        refs = {m.group(1) for v in self.config.values() if isinstance(v, str) for m in [PREP_REF.match(v)] if m}
        refs |= {m.group(1) for var in self.variants for v in var.values()
                 if isinstance(v, str) for m in [PREP_REF.match(v)] if m}
        missing = refs - set(names)
        if missing:
            raise ValueError(f"grid {self.method!r}: config refers to prepare step(s) {sorted(missing)} "
                             f"that the grid does not declare (declared: {names})")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Grid":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown grid field(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))


@dataclass(frozen=True)
class Cell:
    """One measurement: distil ``method`` on ``dataset`` at ``budget`` with ``seed``, evaluate with ``model``."""

    suite: str
    index: int
    method: str
    label: str
    dataset: str
    budget: dict
    config: dict
    variant: dict
    seed: int
    model: str | None
    runs: int | None
    evaluation: dict
    train_per_class: int | None
    prepare: tuple[Prepare, ...]
    notes: str
    ranks: int = 1

    def identity(self) -> dict:
        """What the measurement depends on (labels, notes and the suite name do not count)."""
        ident = {
            "method": self.method, "dataset": self.dataset, "budget": self.budget, "config": self.config,
            "seed": self.seed, "train_per_class": self.train_per_class,
            "prepare": [[p.name, list(p.argv)] for p in self.prepare],
            "model": self.model, "runs": self.runs, "evaluation": self.evaluation,
        }
        return ident if self.ranks == 1 else {**ident, "ranks": self.ranks}

    def distill_identity(self) -> dict:
        """What the distillation depends on (cells differing only in evaluation share one artifact)."""
        ident = self.identity()
        for key in ("model", "runs", "evaluation"):
            ident.pop(key)
        return ident

    def key(self, device_type: str) -> str:
        """The resume key: a hash of :meth:`identity` and the device type (``cpu``/``cuda``)."""
        return digest({**self.identity(), "device": device_type})

    def distill_key(self, device_type: str) -> str:
        return digest({**self.distill_identity(), "device": device_type})

    def describe(self) -> str:
        return describe(self.as_dict())

    def as_dict(self) -> dict:
        return {"suite": self.suite, "index": self.index, "label": self.label, "variant": self.variant,
                "notes": self.notes, **self.identity()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Cell":
        """Inverse of :meth:`as_dict` (the worker process receives cells this way)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name not in ("prepare", "ranks")}
        return cls(**values, prepare=tuple(Prepare(name, tuple(argv)) for name, argv in data["prepare"]),
                   ranks=data.get("ranks", 1))


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    grids: tuple[Grid, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "grids", tuple(g if isinstance(g, Grid) else Grid.from_dict(g) for g in self.grids))
        if not self.grids:
            raise ValueError(f"suite {self.name!r} has no grids")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> "Suite":
        if not isinstance(data, Mapping) or "grids" not in data:
            raise ValueError("a suite file must hold a JSON object with a 'grids' list")
        unknown = set(data) - {"name", "description", "grids"}
        if unknown:
            raise ValueError(f"unknown suite field(s) {sorted(unknown)}; known: name, description, grids")
        return cls(name=data.get("name") or name or "custom", description=data.get("description", ""),
                   grids=tuple(data["grids"]))


def expand(suite: Suite, device_type: str | None = None) -> list[Cell]:
    """Every cell of ``suite``, in a fixed order (grids, then datasets, budgets, variants, seeds, models); with
    ``device_type="cpu"`` the grids' ``on_cpu`` settings apply."""
    cells: list[Cell] = []
    for grid in suite.grids:
        cpu = grid.on_cpu if device_type == "cpu" else {}
        datasets = tuple(cpu.get("datasets", grid.datasets))
        for dataset, budget, variant, seed, model in product(datasets, grid.budgets, grid.variants, grid.seeds,
                                                             grid.models):
            cells.append(Cell(
                suite=suite.name, index=len(cells), method=grid.method.lower(),
                label=grid.label or grid.method.lower(), dataset=dataset, budget=dict(budget),
                config={**grid.config, **variant, **cpu.get("config", {})}, variant=dict(variant), seed=seed,
                model=model, runs=cpu.get("runs", grid.runs),
                evaluation={**grid.evaluation, **cpu.get("evaluation", {})},
                train_per_class=cpu.get("train_per_class", grid.train_per_class),
                prepare=grid.prepare, notes=grid.notes, ranks=grid.ranks,
            ))
    return cells


def shard(cells: list[Cell], part: Shard, device_type: str) -> list[Cell]:
    """The cells of shard ``part`` (:mod:`condense.shard`: 1-based ``i/n``), dealing distillation groups round-robin
    in suite order.

    Cells that share a distillation (they differ only in the evaluation model) stay in one shard, so each
    artifact is made once. Every cell is in exactly one shard, whatever the shard count is.
    """
    groups: dict[str, int] = {}
    for cell in cells:
        groups.setdefault(cell.distill_key(device_type), len(groups))
    return [c for c in cells if part.owns(groups[c.distill_key(device_type)])]


# -- the named suites ---------------------------------------------------------------------------------
_VISION_DATASETS = ("mnist", "cifar10-subset")
_IPCS = ({"ipc": 1}, {"ipc": 10}, {"ipc": 50})

#: tiny settings for a CPU run of every landed method in a few minutes. Per-cell times in the comments were
#: measured on the 2-core development machine with the methods' branches merged (worker start-up included)
#: the image cells also train the runs of DD-Ranking's robust scores (soft labels from a 30-epoch teacher, and
#: no-augmentation runs): the report's soft-label columns and LRS/ARS
_SMOKE_EVAL_IMAGES = {"epochs": 100, "scores": True}
SMOKE = Suite("smoke", "every landed method at tiny settings on CPU (a few minutes in total)", (
    # ~20 s: 50 iterations on digits (8x8, 20 images per class), two evaluation nets per trained set. The
    # evaluation net is ConvNet-3 with instance norm: with 10 images and 100 epochs the profile's BatchNorm net
    # swings between runs (18% and 73% on the same set), which would make the smoke number meaningless
    Grid("datadam", ("digits",), budgets=({"ipc": 1},), config={"iterations": 50}, models=("convnet-d3",),
         runs=2, evaluation=_SMOKE_EVAL_IMAGES, train_per_class=20,
         notes="tiny CPU settings; instance-norm evaluation net for a stable 10-image number"),
    # ~40 s: the digits preset (N=10, M=2, T+=2) for 50 iterations on a 3-expert x 8-epoch buffer built by
    # `condense buffer` first (the buffer takes ~15 s)
    Grid("mtt", ("digits",), budgets=({"ipc": 1},), config={"iterations": 50, "buffer": "{prep:buffer}"},
         runs=1, evaluation=_SMOKE_EVAL_IMAGES,
         prepare=(Prepare("buffer", ("buffer", "--dataset", "{dataset}", "--seed", "{seed}", "--experts", "3",
                                     "--epochs", "8", "--batch", "64", "--device", "{device}", "--out", "{out}")),),
         notes="tiny CPU settings on the method's digits preset"),
    # ~10 s: MUTAG at L=2; support 0.3 per class is a library choice (47 and 171 itemsets)
    Grid("mirage", ("MUTAG",), budgets=({"depth": 2},), config={"support": 0.3},
         models=("gin",), runs=1, evaluation={"epochs": 20}, notes="support 0.3: library choice"),
    # ~50 s: Cora with a GCN teacher and a 50-epoch cap (the evaluator retrains teacher, MLP, GLNN, FF-G2M)
    Grid("ffg2m", ("cora",), config={"teacher": "gcn", "max_epochs": 50, "patience": 10},
         runs=1, notes="epoch cap 50, patience 10: tiny CPU settings"),
))

def _buffer(experts: int, epochs: int, *, zca: bool, ast: bool) -> Prepare:
    """``condense buffer`` for a trajectory-matching grid: the experts must share the distillation's
    preprocessing (ZCA or not) and, for AST, be its smooth experts."""
    flags = (("--zca",) if zca else ()) + (("--ast",) if ast else ())
    return Prepare("buffer", ("buffer", "--dataset", "{dataset}", "--experts", str(experts), "--epochs", str(epochs),
                              *flags, "--device", "{device}", "--out", "{out}"))


def _trajectory_grids(groups: Iterable[tuple[tuple[str, ...], tuple[int, ...], bool]], *, ast: bool, experts: int,
                      epochs: int, config: Mapping[str, Any], runs: int | None, notes: str,
                      evaluation: Mapping[str, Any] | None = None) -> tuple[Grid, ...]:
    """MTT (or AST) grids, one per (datasets, IPCs, ZCA) group: the published presets whiten some
    (dataset, IPC) rows and not others, and each needs a buffer trained in the same space."""
    return tuple(
        Grid("mtt", datasets, budgets=tuple({"ipc": k} for k in ipcs),
             config={**config, "buffer": "{prep:buffer}", **({"preset": "mtt-ast"} if ast else {})}, runs=runs,
             evaluation=dict(evaluation or {}),
             prepare=(_buffer(experts, epochs, zca=zca, ast=ast),), label="ast" if ast else None,
             notes=f"{notes}; {'ZCA' if zca else 'no ZCA'} as the preset")
        for datasets, ipcs, zca in groups
    )


#: the published configuration of each (dataset, IPC) with iteration counts cut to a tenth and 3 evaluation
#: nets: a one-GPU run of a few hours (or an overnight CPU run). ZCA per row as in the MTT presets (CIFAR-10:
#: IPC 1 and 10 whitened, IPC 50 not; the MNIST rows are a library extension without ZCA).
#: the vision cells also report DD-Ranking's LRS and ARS (with their soft-label and no-augmentation runs)
_SCORES = {"scores": True}
_VISION_MTT_GROUPS = ((("mnist",), (1, 10, 50), False), (("cifar10-subset",), (1, 10), True),
                      (("cifar10-subset",), (50,), False))
VISION = Suite("vision", "DataDAM and MTT/AST on MNIST and the CIFAR-10 subset at IPC 1/10/50 (reduced iterations)", (
    Grid("datadam", _VISION_DATASETS, budgets=_IPCS, config={"iterations": 2000}, runs=3,
         evaluation=_SCORES, notes="published presets, 2000 of 20000 iterations"),
    *_trajectory_grids(_VISION_MTT_GROUPS, ast=False, experts=10, epochs=20, config={"iterations": 500}, runs=3,
                       evaluation=_SCORES, notes="published presets, 500 of 5000 iterations, 10 experts x 20 epochs"),
    *_trajectory_grids(_VISION_MTT_GROUPS, ast=True, experts=10, epochs=20, config={"iterations": 500}, runs=3,
                       evaluation=_SCORES,
                       notes="AST options and recipes, 500 of 5000 iterations, 10 smooth experts x 20 epochs"),
))

#: Mirage thresholds, explicit per dataset and depth. Only NCI1 at L=2 is published: the reference config says
#: {460, 590} for classes 0/1 (counts), and its script steps the grid down by 20 before the first training, so
#: (440, 570) is what it trains on and what the ``mirage-NCI1`` preset uses. Every other value is a library
#: choice, checked offline to give each class between a few and a few hundred itemsets on the seed-0 80/10/10
#: training split.
MIRAGE_THRESHOLDS: dict[tuple[str, int], dict[str, Any]] = {
    ("MUTAG", 2): {"support": 0.3},
    ("MUTAG", 3): {"support": 0.3},
    ("NCI1", 2): {"support": [440, 570]},  # the preset: the published grid's first trained point
    ("NCI1", 3): {"support": 0.1},
    # the best GIN validation ROC-AUC (3 seeds) of θ 0.05 / 0.1 / 0.2 at L=2 and 0.1 / 0.2 at L=1
    ("PTC_MR", 2): {"support": 0.05},
    ("PTC_MR", 3): {"support": 0.05},
    # 18 continuous attributes through 3 k-means codes; at L=3 no single fraction gives every class itemsets
    # without an explosion from near-duplicate graphs, hence the itemset-size cap
    ("ENZYMES", 2): {"support": 0.05, "node_codes": "kmeans", "n_codes": 3},
    ("ENZYMES", 3): {"support": 0.03, "node_codes": "kmeans", "n_codes": 3, "max_itemset_size": 3},
}
_MIRAGE_SOURCES = {("NCI1", 2): "published threshold (reference config)"}


def _mirage_grids(models: tuple[str, ...], runs: int, evaluation: Mapping[str, Any] | None = None,
                  keys: Iterable[tuple[str, int]] = tuple(MIRAGE_THRESHOLDS)) -> tuple[Grid, ...]:
    return tuple(
        Grid("mirage", (name,), budgets=({"depth": depth},), config=MIRAGE_THRESHOLDS[(name, depth)],
             models=models, runs=runs, evaluation=dict(evaluation or {}),
             notes=_MIRAGE_SOURCES.get((name, depth), "thresholds: library choice"))
        for name, depth in keys
    )


#: NCI1 at L = 2 a second time with θ = 10 % of each class (the issue's own ``--support 0.1`` command), keeping the
#: preset's class-exclusive filter: 286 itemsets (5 + 281), where the published point keeps 6 (2 + 4)
NCI1_SUPPORT_10 = Grid("mirage", ("NCI1",), budgets=({"depth": 2},), config={"support": 0.1},
                       models=("gin", "gcn", "gat"), runs=10,
                       notes="θ = 0.1 per class (the issue's command), class-exclusive as the preset")

#: ENZYMES at L = 1 with 4 k-means codes and θ = 0.1: the best GIN validation accuracy (3 seeds) among the settings
#: that give every class itemsets: L=2 with 3 codes at θ 0.05 (also with support sampling, or discretised evaluation
#: features), L=1 with 8 codes at θ 0.1, L=1 with 4 codes at θ 0.1. L=1 with 8 codes at θ 0.05 keeps 18.5k itemsets
#: (1.6x compression) and was dropped.
ENZYMES_DEPTH_1 = Grid("mirage", ("ENZYMES",), budgets=({"depth": 1},),
                       config={"support": 0.1, "node_codes": "kmeans", "n_codes": 4},
                       models=("gin", "gcn", "gat"), runs=10, notes="chosen by GIN validation accuracy")

GRAPH = Suite("graph", "Mirage on MUTAG, NCI1, PTC_MR and ENZYMES at L = 2 and 3 (and NCI1 at θ 0.1, ENZYMES at L = 1), "
              "GIN/GCN/GAT, 10 runs",
              (*_mirage_grids(("gin", "gcn", "gat"), 10), NCI1_SUPPORT_10, ENZYMES_DEPTH_1))

#: FF-G2M's evaluator retrains teacher, MLP, GLNN and FF-G2M over ``runs`` seeds (seed, seed+1, ...) when asked
#: for baselines, so one distillation seed per teacher with runs=5 is the published 5-seed protocol
_TEACHERS = ({"teacher": "gcn"}, {"teacher": "sage"}, {"teacher": "gat"})
G2M = Suite("g2m", "FF-G2M on Cora (public split) with GCN, GraphSAGE and GAT teachers, 5 seeds", (
    Grid("ffg2m", ("cora",), variants=_TEACHERS, runs=5, notes="published Cora presets per teacher; seeds 0..4"),
))

#: ZCA per (dataset, IPC) as the presets: MTT rows (CIFAR-10 1/10 yes, 50 no; CIFAR-100 1/50 yes, 10 no) and
#: AST recipes (every CIFAR-100 recipe and CIFAR-10 IPC 10 whiten; CIFAR-10 IPC 1/50 follow the MTT row)
_PAPER_MTT_GROUPS = ((("cifar10",), (1, 10), True), (("cifar10",), (50,), False), (("cifar100",), (1, 50), True),
                     (("cifar100",), (10,), False))
_PAPER_AST_GROUPS = ((("cifar10",), (1, 10), True), (("cifar10",), (50,), False), (("cifar100",), (1, 10, 50), True))
PAPER = Suite("paper", "the published settings (full iterations, evaluation profiles and buffers): for a GPU", (
    Grid("datadam", ("cifar10", "cifar100", "mnist"), budgets=_IPCS, notes="published presets"),
    *_trajectory_grids(_PAPER_MTT_GROUPS, ast=False, experts=100, epochs=50, config={}, runs=None,
                       notes="published presets, 100 experts x 50 epochs"),
    *_trajectory_grids(_PAPER_AST_GROUPS, ast=True, experts=100, epochs=50, config={}, runs=None,
                       notes="AST recipes and the README buffer recipe (smooth experts)"),
    *_mirage_grids(("gin", "gcn", "gat"), 10, keys=(("NCI1", 2),)),
    Grid("ffg2m", ("cora",), variants=_TEACHERS, seeds=(2022,), runs=5, notes="published presets, seeds 2022 + 0..4"),
))

#: the GPU check: every method at small settings on MNIST, MUTAG and Cora, DataDAM and MTT also on two ranks
#: (torchrun, one GPU each; skipped with one GPU). Sized for a few minutes on one modern GPU; ``on_cpu`` shrinks
#: every cell to seconds (built-in digits and karate, MUTAG) so ``condense bench run gpu --device cpu`` checks the
#: plumbing (gloo ranks on the CPU).
_GPU_DATADAM = dict(budgets=({"ipc": 10},), config={"iterations": 300}, runs=2,
                    evaluation={"epochs": 300, "full_epochs": 2},
                    on_cpu={"datasets": ["digits"], "config": {"iterations": 2},
                            "evaluation": {"epochs": 1, "full_epochs": 0}, "runs": 1, "train_per_class": 20})
_GPU_MTT = dict(budgets=({"ipc": 10},), runs=2, evaluation={"epochs": 300, "full_epochs": 2},
                config={"iterations": 200, "expert": {"experts": 2, "epochs": 25}},
                on_cpu={"datasets": ["digits"], "config": {"iterations": 2, "syn_steps": 2, "expert_epochs": 1,
                                                           "max_start_epoch": 1, "expert": {"experts": 2, "epochs": 2},
                                                           "on_nonpositive_lr": "warn"},
                        "evaluation": {"epochs": 1, "full_epochs": 0, "lr": 0.01}, "runs": 1, "train_per_class": 20})
GPU = Suite("gpu", "what works on this GPU: every method at small settings (it/s, peak GPU memory, accuracy), "
                   "DataDAM and MTT also on two ranks where two GPUs exist", (
    Grid("datadam", ("mnist",), **_GPU_DATADAM, notes="300 iterations: a speed and memory check"),
    Grid("datadam", ("mnist",), **_GPU_DATADAM, ranks=2, notes="the real batch split across two ranks"),
    Grid("mtt", ("mnist",), **_GPU_MTT, notes="automatic 2-expert x 25-epoch buffer, then 200 iterations"),
    Grid("mtt", ("mnist",), **_GPU_MTT, ranks=2, notes="experts and inner minibatches split across two ranks"),
    Grid("mirage", ("MUTAG",), budgets=({"depth": 2},), config={"support": 0.3}, models=("gin",), runs=2,
         evaluation={"epochs": 100}, on_cpu={"evaluation": {"epochs": 2}, "runs": 1}),  # MUTAG: no built-in graph set
    Grid("ffg2m", ("cora",), variants=({"teacher": "gcn"}, {"teacher": "sage", "teacher_sampling": "neighbors"}),
         config={"max_epochs": 200, "patience": 50}, runs=2,
         on_cpu={"datasets": ["karate"], "runs": 1,
                 "config": {"max_epochs": 3, "split_train_per_class": 4, "split_val": 10, "split_test": 10}},
         notes="GCN full batch; SAGE on neighbour-sampled minibatches with layer-wise inference"),
))

SUITES: dict[str, Suite] = {s.name: s for s in (SMOKE, VISION, GRAPH, G2M, PAPER, GPU)}


def get_suite(name_or_path: str | os.PathLike) -> Suite:
    """A named suite, or one read from a ``.json`` file."""
    text = str(name_or_path)
    if text in SUITES:
        return SUITES[text]
    path = Path(text)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no suite file at {text!r}")
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"suite file {text!r} is not valid JSON: {exc}") from None
        return Suite.from_dict(data, name=path.stem)
    raise ValueError(f"unknown suite {text!r}; known: {', '.join(SUITES)} (or a path to a .json suite file)")

"""FF-G2M: full-frequency GNN-to-MLP distillation (Wu, Lin, Huang, Fan, Li, AAAI 2024), with the GLNN (Zhang et
al., ICLR 2022) and plain-MLP baselines and the low-/high-frequency ablations.

A GNN teacher (:mod:`condense.graph.teachers`) is trained on the graph; an MLP student with the teacher's depth and width
then learns from node features alone. With student logits :math:`h`, fixed teacher logits :math:`z`,
:math:`p_T(v) = \\mathrm{softmax}(z_v)`, :math:`\\mathrm{KL}(P \\| Q) = \\sum_k P_k (\\log P_k - \\log Q_k)` and
means over the listed rows (the losses as the official FF-G2M code computes them):

.. math::

    \\mathcal{L}_{CE}  &= \\mathrm{mean}_{v \\in V_L} -\\log p_S(v)[y_v] \\\\
    \\mathcal{L}_{LFD} &= \\mathrm{mean}_{(u,v) \\in E^+} \\mathrm{KL}(p_T(v) \\| p_S(u)) \\\\
    \\mathcal{L}_{HFD} &= \\mathrm{mean}_{(u,v) \\in E} \\mathrm{KL}(\\mathrm{softmax}(|z_u - z_v| / \\tau) \\|
                          \\mathrm{softmax}(|h_u - h_v| / \\tau)) \\\\
    \\mathcal{L}_{KD}  &= \\mathrm{mean}_{v \\in V_{obs}} \\mathrm{KL}(p_T(v) \\| p_S(v))

:math:`E^+` is every directed edge of the symmetric graph with one self-loop per node, :math:`E` the same without
self-loops; in an edge row :math:`(u, v)` the student side is :math:`u = ` ``edge_index[0]``. :math:`|\\cdot|` is
elementwise on raw logits; :math:`\\tau` enters only the high-frequency term. The modes:

===========  =====================================================================
``ffg2m``     :math:`\\lambda L_{CE} + (1-\\lambda)(L_{LFD} + L_{HFD})`
``lfd_only``  :math:`\\lambda L_{CE} + (1-\\lambda) L_{LFD}`
``hfd_only``  :math:`\\lambda L_{CE} + (1-\\lambda) L_{HFD}`
``glnn``      :math:`\\lambda L_{CE} + (1-\\lambda) L_{KD}` (all nodes of the training graph, temperature 1)
``mlp``       :math:`L_{CE}`
===========  =====================================================================

Protocol (spec ``g2m.md`` and ``evaluation.md`` section 6): the teacher trains with Adam (lr 0.01, weight decay
5e-4) and early stopping (patience 50 on validation accuracy, ties update, <= 500 epochs); the student trains full
batch with the preset lr and the same early stopping; the reported number is test accuracy at the best-validation
epoch. Planetoid graphs use the public split with row-normalised features, the other datasets a random 20 per
class / 500 / 1000 split drawn per seed. ``setting="inductive"`` holds out ``floor(0.2 |test|)`` test nodes and
every edge touching them from everything the teacher and the student train on, and reports the student's accuracy
on them from features alone. ``edge_batch_size > 0`` trains on seeded edge subsets per step (an approximation for
graphs whose |E| x K gathers do not fit one batch).

Entry points: :class:`FFG2M` (``FFG2M(config).fit(graph, teacher) -> Student``), :func:`run` (the registry
runner), :func:`compare` (teacher / MLP / GLNN / FF-G2M over seeds), :func:`evaluate_artifact` and
:func:`inference_benchmark` (nodes per second, student vs teacher).
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condense.artifacts import Student
from condense.config import apply_overrides, from_dict, require, to_dict
from condense.progress import get_logger, quiet as quiet_mode
from condense.registry import run_stats
from condense.runtime import Meter, generator, resolve_device, seed_everything
from condense.graph.teachers import (
    TEACHERS,
    MLP,
    PreparedGraph,
    TeacherConfig,
    accuracy,
    build_teacher,
    check_edge_index,
    fit_early_stopping,
    prepare_graph,
    sparse_adjacency,
    student_for,
    train_teacher,
)

MODES: tuple[str, ...] = ("ffg2m", "glnn", "mlp", "lfd_only", "hfd_only")
PLANETOID: tuple[str, ...] = ("cora", "citeseer", "pubmed")
SEED_BASE = 2022
COMPARE_MODES: tuple[str, ...] = ("mlp", "glnn", "ffg2m")

# which distillation terms each mode adds to the label loss (mlp: the label loss alone, without lambda)
_MODE_TERMS: dict[str, tuple[str, ...]] = {
    "ffg2m": ("lfd", "hfd"),
    "lfd_only": ("lfd",),
    "hfd_only": ("hfd",),
    "glnn": ("kd",),
    "mlp": (),
}

# -- presets (official FF-G2M repository, param/best_parameters.json) -------------------------------
# dataset: (student lr, {teacher: (layers, hidden, mlp_dropout, gnn_dropout, tau, lambda)})
_PUBLISHED: dict[str, tuple[float, dict[str, tuple[int, int, float, float, float, float]]]] = {
    "cora": (0.01, {"gcn": (3, 512, 0.6, 0.5, 1.5, 0.4), "gat": (3, 1024, 0.3, 0.6, 1.2, 0.5),
                    "sage": (3, 512, 0.4, 0.3, 1.3, 0.5)}),
    "citeseer": (0.01, {"gcn": (2, 256, 0.5, 0.5, 1.5, 0.1), "gat": (2, 2048, 0.4, 0.5, 1.0, 0.1),
                        "sage": (2, 1024, 0.5, 0.5, 1.2, 0.1)}),
    "pubmed": (0.01, {"gcn": (2, 1024, 0.3, 0.6, 1.5, 0.0), "gat": (2, 2048, 0.3, 0.5, 1.2, 0.0),
                      "sage": (2, 2048, 0.6, 0.3, 1.3, 0.0)}),
    "coauthor-cs": (0.01, {"gcn": (2, 1024, 0.5, 0.6, 1.5, 0.3), "gat": (2, 128, 0.4, 0.5, 1.1, 0.3),
                           "sage": (2, 256, 0.6, 0.3, 1.4, 0.5)}),
    "coauthor-physics": (0.01, {"gcn": (2, 2048, 0.3, 0.4, 1.2, 0.2), "gat": (2, 256, 0.3, 0.4, 1.4, 0.3),
                                "sage": (2, 1024, 0.5, 0.6, 1.1, 0.5)}),
    "amazon-photo": (0.001, {"gcn": (3, 2048, 0.5, 0.6, 1.3, 0.1), "gat": (3, 256, 0.3, 0.3, 1.4, 0.3),
                             "sage": (3, 1024, 0.4, 0.4, 1.5, 0.2)}),
}
_PRESET_FIELDS = ("num_layers", "hidden", "mlp_dropout", "gnn_dropout", "tau", "lam")

#: ``ffg2m-<dataset>-<teacher>`` -> config fields. GLNN and the plain MLP use the same architecture and lambda.
PRESETS: dict[str, dict[str, Any]] = {
    f"ffg2m-{dataset}-{teacher}": {"teacher": teacher, "lr": lr, **dict(zip(_PRESET_FIELDS, values))}
    for dataset, (lr, table) in _PUBLISHED.items()
    for teacher, values in table.items()
}


@dataclass
class G2MConfig:
    """FF-G2M configuration. Defaults: the Cora / GCN preset and the reference's fixed settings.

    ``num_layers``/``hidden`` describe the teacher and the student alike (GAT: ``hidden`` is the concatenated
    width, ``heads`` heads of ``hidden // heads``); ``mlp_dropout`` acts after the student's hidden ReLUs,
    ``gnn_dropout`` in the teacher. ``lam`` weighs the label loss, ``tau`` is the high-frequency temperature.
    ``split="auto"`` uses the graph's masks when it has them (Planetoid public split), else a random split of
    ``split_train_per_class`` / ``split_val`` / ``split_test`` nodes drawn per seed. ``feature_norm="auto"``
    row-normalises Planetoid features (as DGL's loaders do). ``edge_batch_size=0`` trains full batch.
    """

    teacher: Literal["gcn", "sage", "gat", "appnp"] = "gcn"
    mode: Literal["ffg2m", "glnn", "mlp", "lfd_only", "hfd_only"] = "ffg2m"
    num_layers: int = 3
    hidden: int = 512
    mlp_dropout: float = 0.6
    gnn_dropout: float = 0.5
    tau: float = 1.5
    lam: float = 0.4
    lr: float = 0.01
    teacher_lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 500
    patience: int = 50
    heads: int = 4
    attn_dropout: float = 0.3
    negative_slope: float = 0.2
    appnp_k: int = 10
    appnp_alpha: float = 0.1
    setting: Literal["transductive", "inductive"] = "transductive"
    inductive_rate: float = 0.2
    split: Literal["auto", "public", "random"] = "auto"
    split_train_per_class: int = 20
    split_val: int = 500
    split_test: int = 1000
    feature_norm: Literal["auto", "row", "none"] = "auto"
    symmetrise: bool = True
    edge_batch_size: int = 0
    checkpoint_every: int = 50

    def __post_init__(self):
        require(self.teacher in TEACHERS, "teacher", f"expected one of {', '.join(TEACHERS)}, got {self.teacher!r}")
        require(self.mode in MODES, "mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        require(0.0 <= self.lam <= 1.0, "lam", f"must be in [0, 1], got {self.lam}")
        require(self.tau > 0, "tau", f"must be > 0, got {self.tau}")
        require(0.0 <= self.mlp_dropout < 1.0, "mlp_dropout", f"must be in [0, 1), got {self.mlp_dropout}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0.0 < self.inductive_rate < 1.0, "inductive_rate", f"must be in (0, 1), got {self.inductive_rate}")
        for key in ("split_train_per_class", "split_val", "split_test"):
            require(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        require(self.edge_batch_size >= 0, "edge_batch_size", f"must be >= 0 (0 = full batch), got {self.edge_batch_size}")
        require(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        self.teacher_config()  # validates the teacher fields (GAT widths, dropouts, ...)

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(arch=self.teacher, num_layers=self.num_layers, hidden=self.hidden,
                             dropout=self.gnn_dropout, heads=self.heads, attn_dropout=self.attn_dropout,
                             negative_slope=self.negative_slope, appnp_k=self.appnp_k, appnp_alpha=self.appnp_alpha,
                             lr=self.teacher_lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs,
                             patience=self.patience)


def resolve_config(dataset: Any = "cora", *, teacher: str | None = None, mode: str | None = None,
                   preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> G2MConfig:
    """The config for a run: the preset (``preset``, else ``ffg2m-<dataset>-<teacher>`` where one exists), then
    ``teacher``/``mode``, then ``overrides`` (typed values or ``--set`` strings)."""
    from condense.config import preset as lookup

    values: dict[str, Any] = {}
    if preset is not None:
        values.update(lookup(PRESETS, preset))
    elif isinstance(dataset, str):
        from condense.data import canonical_name

        try:
            key = canonical_name(dataset).lower()
        except ValueError:
            key = dataset.lower()
        values.update(PRESETS.get(f"ffg2m-{key}-{teacher or values.get('teacher', 'gcn')}", {}))
    if teacher is not None:
        values["teacher"] = teacher
    if mode is not None:
        values["mode"] = mode
    values.update(overrides or {})
    return apply_overrides(G2MConfig(), values)


# -- losses ------------------------------------------------------------------------------------------
def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Row-wise :math:`\\sum_k P_k (\\log P_k - \\log Q_k)` from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def label_loss(h: Tensor, y: Tensor, train_idx: Tensor) -> Tensor:
    """:math:`L_{CE} = \\mathrm{mean}_{v \\in V_L} -\\log \\mathrm{softmax}(h_v)[y_v]`."""
    return F.cross_entropy(h[train_idx], y[train_idx])


def lfd_edge_values(h: Tensor, z: Tensor, edges_plus: Tensor) -> Tensor:
    """Per-row :math:`\\mathrm{KL}(p_T(v) \\| p_S(u))` for rows ``(u, v)`` of ``edges_plus`` (u = student side)."""
    u, v = edges_plus
    return _kl_rows(F.log_softmax(z.detach(), dim=-1)[v], F.log_softmax(h, dim=-1)[u])


def lfd_loss(h: Tensor, z: Tensor, edges_plus: Tensor) -> Tensor:
    """Low-frequency distillation :math:`\\mathrm{mean}_{(u,v) \\in E^+} \\mathrm{KL}(p_T(v) \\| p_S(u))`;
    ``edges_plus`` must include the self-loops."""
    return lfd_edge_values(h, z, edges_plus).mean()


def hfd_loss(h: Tensor, z: Tensor, edges: Tensor, tau: float) -> Tensor:
    """High-frequency distillation :math:`\\mathrm{mean}_{(u,v) \\in E} \\mathrm{KL}(\\mathrm{softmax}(|z_u - z_v|
    / \\tau) \\| \\mathrm{softmax}(|h_u - h_v| / \\tau))` on raw logits; ``edges`` has no self-loops. Zero (with a
    gradient path) when there are no edges."""
    if edges.shape[1] == 0:
        return h.sum() * 0.0
    u, v = edges
    z = z.detach()
    log_p = F.log_softmax((z[u] - z[v]).abs() / tau, dim=-1)
    log_q = F.log_softmax((h[u] - h[v]).abs() / tau, dim=-1)
    return _kl_rows(log_p, log_q).mean()


def kd_loss(h: Tensor, z: Tensor, nodes: Tensor | None = None) -> Tensor:
    """GLNN's node-wise distillation :math:`\\mathrm{mean}_v \\mathrm{KL}(p_T(v) \\| p_S(v))` (temperature 1),
    over ``nodes`` (default: every row)."""
    if nodes is not None:
        h, z = h[nodes], z[nodes]
    return _kl_rows(F.log_softmax(z.detach(), dim=-1), F.log_softmax(h, dim=-1)).mean()


def g2m_loss(mode: str, h: Tensor, z: Tensor, y: Tensor, train_idx: Tensor, edges_plus: Tensor | None,
             edges: Tensor | None, *, lam: float, tau: float, kd_nodes: Tensor | None = None) -> Tensor:
    """The total loss of ``mode`` (see the module docstring); ``z`` is detached, so the teacher gets no gradient."""
    if mode not in _MODE_TERMS:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ce = label_loss(h, y, train_idx)
    if mode == "mlp":
        return ce
    terms = {"lfd": lambda: lfd_loss(h, z, edges_plus), "hfd": lambda: hfd_loss(h, z, edges, tau),
             "kd": lambda: kd_loss(h, z, kd_nodes)}
    return lam * ce + (1.0 - lam) * sum(terms[t]() for t in _MODE_TERMS[mode])


# -- splits ------------------------------------------------------------------------------------------
class NodeSplit(NamedTuple):
    """Sorted global node ids of the training, validation and test nodes."""

    train: Tensor
    val: Tensor
    test: Tensor


def mask_split(data) -> NodeSplit:
    """The split stored in a graph's ``train_mask``/``val_mask``/``test_mask`` (e.g. the Planetoid public split)."""
    return NodeSplit(*(getattr(data, f"{k}_mask").nonzero().view(-1) for k in ("train", "val", "test")))


def random_split(y: Tensor, num_classes: int, gen: torch.Generator, *, per_class: int = 20, num_val: int = 500,
                 num_test: int = 1000, dataset: str = "graph") -> NodeSplit:
    """``per_class`` random nodes of every class for training, then ``num_val`` random validation nodes from the
    rest, then ``num_test`` random test nodes from the rest (FF-G2M's Coauthor / Amazon protocol).

    A class with fewer than ``per_class`` nodes contributes all of them (with a warning); too few remaining
    nodes for validation and test raises ``ValueError`` naming the dataset and the counts.
    """
    y_cpu = y.detach().cpu()
    n = y_cpu.shape[0]
    perm = torch.randperm(n, generator=gen)
    order = torch.argsort(y_cpu[perm], stable=True)  # grouped by class, random order inside each class
    counts = torch.bincount(y_cpu, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n) - starts[y_cpu[perm][order]]
    chosen = torch.zeros(n, dtype=torch.bool)
    chosen[order[rank < per_class]] = True
    small = (counts < per_class).nonzero().view(-1).tolist()
    if small:
        warnings.warn(f"{dataset}: classes {small} have fewer than {per_class} nodes "
                      f"({[int(counts[c]) for c in small]}); all of their nodes are used for training", stacklevel=2)
    rest = perm[~chosen]
    if rest.numel() < num_val + num_test:
        raise ValueError(f"{dataset}: after taking {int(chosen.sum())} training nodes only {rest.numel()} remain, "
                         f"fewer than the {num_val} validation + {num_test} test nodes asked for")
    return NodeSplit(perm[chosen].sort().values, rest[:num_val].sort().values,
                     rest[num_val:num_val + num_test].sort().values)


def inductive_split(test: Tensor, rate: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(test_ind, test_tran)``: a seeded random ``floor(rate * |test|)`` of the test nodes is held out."""
    n_ind = int(math.floor(rate * test.numel()))
    perm = torch.randperm(test.numel(), generator=gen)
    return test[perm[:n_ind]].sort().values, test[perm[n_ind:]].sort().values


def row_normalise(x: Tensor) -> Tensor:
    """Each row divided by its sum (rows summing to 0 stay 0), as DGL's citation loaders do."""
    from condense.graph.data import row_normalise as _row

    return _row(x)


_FEATURE_NORMS = {"none": lambda x: x, "row": row_normalise}


# -- the problem: features, labels, graph(s) and split on the device ---------------------------------
def as_pyg(graph: Any):
    """A PyG ``Data`` from a PyG ``Data`` or a ``dgl.DGLGraph`` (node data ``feat``/``label`` and masks)."""
    if type(graph).__module__.startswith("dgl"):
        from condense.graph.data import from_dgl

        return from_dgl(graph)
    if not all(hasattr(graph, k) for k in ("x", "edge_index")):
        raise TypeError(f"graph must be a torch_geometric Data (x, y, edge_index) or a dgl.DGLGraph, "
                        f"got {type(graph).__name__}")
    return graph


def load_node_graph(name: str, data_root=None):
    """A node-classification dataset from the catalogue, features unnormalised."""
    from condense.data import canonical_name, info
    from condense.graph.data import load_graph

    key = canonical_name(name)
    if info(key).family != "node-classification":
        raise ValueError(f"dataset {key!r} is a {info(key).family} dataset; FF-G2M needs a node-classification graph "
                         f"({', '.join(PLANETOID)}, amazon-photo, coauthor-cs, coauthor-physics, karate)")
    return load_graph(key, data_root=data_root)


@dataclass
class NodeProblem:
    """Everything a run needs, on the device. ``x``/``y``/``full`` describe the whole graph; the ``obs_*`` fields
    the graph training sees (the whole graph when transductive, the observed subgraph when inductive) with
    ``train``/``val``/``test`` as local ids in it. ``test_ind`` (global ids) is empty when transductive."""

    name: str
    x: Tensor
    y: Tensor
    num_classes: int
    full: PreparedGraph
    split: NodeSplit
    test_ind: Tensor
    obs: Tensor | None
    obs_graph: PreparedGraph
    train: Tensor
    val: Tensor
    test: Tensor
    setting: str
    feature_norm: str
    split_kind: str
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def x_obs(self) -> Tensor:
        return self.x if self.obs is None else self.x[self.obs]

    @property
    def y_obs(self) -> Tensor:
        return self.y if self.obs is None else self.y[self.obs]


def _validate_node_data(x: Any, y: Any, num_classes: int | None) -> tuple[Tensor, Tensor, int]:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise TypeError(f"graph features x must be a float tensor [N, F], got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else f'{x.dtype} {list(x.shape)}'}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("graph features x contain NaN or inf values")
    if not isinstance(y, Tensor):
        raise TypeError(f"graph labels y must be a tensor [N], got {type(y).__name__}")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y.view(-1)
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"graph labels y must be an integer tensor [N], got {y.dtype} {list(y.shape)}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"features and labels disagree on the number of nodes: x has {x.shape[0]} rows, "
                         f"y has {y.shape[0]}")
    y = y.long()
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"labels must be class ids in [0, {k - 1}] ({k} classes), got values in [{lo}, {hi}]")
    return x.float(), y, k


def prepare_problem(graph: Any, cfg: G2MConfig, *, seed: int, device: torch.device, name: str | None = None,
                    train_per_class: int | None = None) -> NodeProblem:
    """Validate ``graph``, normalise features, prepare the graph (§2), draw the split and the inductive hold-out."""
    from condense.graph.data import fingerprint

    data = as_pyg(graph)
    name = name or "graph"
    x, y, k = _validate_node_data(getattr(data, "x", None), getattr(data, "y", None),
                                  getattr(data, "num_classes", None))
    x, y = x.detach().cpu(), y.cpu()
    n = x.shape[0]
    full = prepare_graph(check_edge_index(data.edge_index, n).cpu(), n, symmetrise=cfg.symmetrise)
    log = get_logger("condense.g2m")
    if full.symmetrised:
        log.info("%s: the input graph was directed; reverse edges were added (recorded in the artifact)", name)
    if full.edges.shape[1] == 0:
        warnings.warn(f"{name}: the graph has no edges besides self-loops; the teachers see each node alone, LFD "
                      "uses the self-loops only and HFD is 0", stacklevel=2)
    has_masks = all(isinstance(getattr(data, f"{s}_mask", None), Tensor) for s in ("train", "val", "test"))
    split_kind = cfg.split if cfg.split != "auto" else ("public" if has_masks else "random")
    if split_kind == "public" and not has_masks:
        raise ValueError(f"split='public' needs train_mask/val_mask/test_mask on the graph; {name} has none "
                         "(use split='random')")
    gen = generator(seed, "cpu")
    if split_kind == "public":
        split = mask_split(data)
    else:
        split = random_split(y, k, gen, per_class=cfg.split_train_per_class, num_val=cfg.split_val,
                             num_test=cfg.split_test, dataset=name)
    if train_per_class is not None:
        from condense.data import stratified_subsample

        keep = stratified_subsample(y[split.train].numpy(), train_per_class, seed)
        split = split._replace(train=split.train[torch.as_tensor(keep, dtype=torch.long)])
    for part, idx in split._asdict().items():
        if idx.numel() == 0:
            raise ValueError(f"{name}: the {part} split is empty")
    norm = cfg.feature_norm if cfg.feature_norm != "auto" else ("row" if name.lower() in PLANETOID else "none")
    x = _FEATURE_NORMS[norm](x)

    if cfg.setting == "inductive":
        test_ind, test_tran = inductive_split(split.test, cfg.inductive_rate, gen)
        obs = torch.cat([split.train, split.val, test_tran]).unique()
        obs_graph = _observed_subgraph(full, obs)
        local = torch.full((n,), -1, dtype=torch.long)
        local[obs] = torch.arange(obs.numel())
        train, val, test = local[split.train], local[split.val], local[test_tran]
    else:
        test_ind, obs, obs_graph = torch.zeros(0, dtype=torch.long), None, full
        train, val, test = split
    source = {"name": name, "fingerprint": fingerprint(data), "num_nodes": n,
              "num_edges": int(full.edges.shape[1]), "num_features": int(x.shape[1]), "num_classes": k,
              "split": split_kind, "symmetrised": full.symmetrised}
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return NodeProblem(
        name=name, x=x.to(device), y=y.to(device), num_classes=k,
        full=PreparedGraph(full.edges_plus.to(device), full.edges.to(device), n, full.symmetrised),
        split=NodeSplit(*(to(t) for t in split)), test_ind=to(test_ind), obs=to(obs),
        obs_graph=PreparedGraph(obs_graph.edges_plus.to(device), obs_graph.edges.to(device), obs_graph.num_nodes,
                                obs_graph.symmetrised),
        train=to(train), val=to(val), test=to(test), setting=cfg.setting, feature_norm=norm, split_kind=split_kind,
        source=source)


def _observed_subgraph(full: PreparedGraph, obs: Tensor) -> PreparedGraph:
    """The subgraph induced by ``obs`` (relabelled 0..|obs|-1): no held-out node and no edge touching one."""
    from torch_geometric.utils import add_self_loops, subgraph

    edges, _ = subgraph(obs, full.edges, relabel_nodes=True, num_nodes=full.num_nodes)
    edges_plus, _ = add_self_loops(edges, num_nodes=obs.numel())
    return PreparedGraph(edges_plus, edges, int(obs.numel()), full.symmetrised)


# -- teacher stage -----------------------------------------------------------------------------------
@dataclass
class TeacherOutcome:
    """Teacher logits on the training graph (detached) and the teacher's scores (fractions)."""

    logits: Tensor
    val_acc: float
    test_acc: float
    test_ind_acc: float | None
    best_epoch: int | None
    epochs_run: int
    train_time_s: float
    params: int
    arch: str
    model: nn.Module | None = None


def teach(problem: NodeProblem, cfg: G2MConfig, teacher: Any = None, *, device: torch.device,
          train: bool = True, run_dir=None, identity: Mapping[str, Any] | None = None) -> TeacherOutcome:
    """Train (or take) the teacher and return its eval-mode logits on the graph training sees.

    ``teacher``: ``None`` (build ``cfg.teacher`` and train it), any ``nn.Module`` mapping ``(x, edge_index)`` to
    logits (trained with the protocol, or used as is with ``train=False``), or precomputed logits ``[N, K]`` for
    every node of the graph (in the inductive setting they must not have seen the held-out nodes).
    """
    p = problem
    if isinstance(teacher, Tensor):
        z = teacher.detach().to(device).float()
        if z.shape != (p.x.shape[0], p.num_classes):
            raise ValueError(f"teacher logits must have shape [num_nodes={p.x.shape[0]}, num_classes={p.num_classes}]"
                             f", got {list(z.shape)}")
        if not bool(torch.isfinite(z).all()):
            raise ValueError("teacher logits contain NaN or inf values")
        z_obs = z if p.obs is None else z[p.obs]
        y_obs = p.y_obs
        test_ind = float(accuracy(z[p.test_ind], p.y[p.test_ind])) if p.setting == "inductive" else None
        return TeacherOutcome(z_obs, float(accuracy(z_obs[p.val], y_obs[p.val])),
                              float(accuracy(z_obs[p.test], y_obs[p.test])), test_ind, None, 0, 0.0, 0, "logits")
    tcfg = cfg.teacher_config()
    if teacher is None:
        model, arch = build_teacher(tcfg, p.x.shape[1], p.num_classes), cfg.teacher
    elif isinstance(teacher, nn.Module):
        model, arch = teacher, type(teacher).__name__
    else:
        raise TypeError(f"teacher must be None, an nn.Module mapping (x, edge_index) to logits, or a logits tensor "
                        f"[N, K]; got {type(teacher).__name__}")
    model = model.to(device)
    x_obs, y_obs, edges = p.x_obs, p.y_obs, p.obs_graph.edges_plus
    if train:
        res = train_teacher(model, x_obs, y_obs, edges, p.train, p.val, p.test, tcfg, device=device,
                            run_dir=run_dir, identity=identity, desc=f"teacher {arch}")
        z, val, test, best, elapsed = res.logits, res.val_acc, res.test_acc, res.best_epoch, res.train_time_s
        epochs = res.epochs_run
    else:
        model.eval()
        with torch.no_grad():
            z = model(x_obs, edges).detach().float()
        if z.shape != (x_obs.shape[0], p.num_classes):
            raise ValueError(f"the teacher module returned logits of shape {list(z.shape)}, expected "
                             f"[{x_obs.shape[0]}, {p.num_classes}]")
        val, test = float(accuracy(z[p.val], y_obs[p.val])), float(accuracy(z[p.test], y_obs[p.test]))
        best, elapsed, epochs = None, 0.0, 0
    test_ind = None
    if p.setting == "inductive":
        model.eval()
        with torch.no_grad():  # the held-out nodes' accuracy is measured on the full graph
            full_logits = model(p.x, p.full.edges_plus)
        test_ind = float(accuracy(full_logits[p.test_ind], p.y[p.test_ind]))
    params = sum(t.numel() for t in model.parameters())
    return TeacherOutcome(z, val, test, test_ind, best, epochs, elapsed, params, arch, model)


# -- student stage -----------------------------------------------------------------------------------
class _Batch(NamedTuple):
    """One optimisation step's rows, in local ids of ``nodes`` (``nodes=None``: all nodes, no gather)."""

    nodes: Tensor | None
    train: Tensor
    edges_plus: Tensor | None
    edges: Tensor | None
    kd_nodes: Tensor | None


def _full_batch(mode: str, p: NodeProblem) -> _Batch:
    if mode == "mlp":  # labels only: the student runs on the training nodes alone
        return _Batch(p.train, torch.arange(p.train.numel(), device=p.train.device), None, None, None)
    return _Batch(None, p.train, p.obs_graph.edges_plus, p.obs_graph.edges, None)


def _edge_batches(mode: str, p: NodeProblem, batch_size: int, gen: torch.Generator) -> list[_Batch]:
    """Seeded edge-subset minibatches covering E+ (and E, and the nodes for GLNN) once per epoch; the label loss
    uses every training node in every step."""
    terms = _MODE_TERMS[mode]
    g, dev = p.obs_graph, p.train.device
    steps = max(1, math.ceil(g.edges_plus.shape[1] / batch_size))
    pick = lambda n: torch.randperm(n, generator=gen, device=dev).tensor_split(steps)  # noqa: E731
    plus = pick(g.edges_plus.shape[1]) if "lfd" in terms else [None] * steps
    plain = pick(g.edges.shape[1]) if "hfd" in terms else [None] * steps
    kd = pick(g.num_nodes) if "kd" in terms else [None] * steps
    batches = []
    for cp, ce, ck in zip(plus, plain, kd):
        parts = [p.train]
        ep = g.edges_plus[:, cp] if cp is not None else None
        ee = g.edges[:, ce] if ce is not None else None
        parts += [t.reshape(-1) for t in (ep, ee) if t is not None] + ([ck] if ck is not None else [])
        nodes, inv = torch.cat(parts).unique(return_inverse=True)
        pieces = list(inv.split([t.numel() for t in parts]))
        train = pieces.pop(0)
        lp = pieces.pop(0).view(2, -1) if ep is not None else None
        le = pieces.pop(0).view(2, -1) if ee is not None else None
        lk = pieces.pop(0) if ck is not None else None
        batches.append(_Batch(nodes, train, lp, le, lk))
    return batches


@dataclass
class StudentOutcome:
    """A trained student (best-validation state) and its scores; ``test_acc`` is test_tran when inductive."""

    model: MLP
    mode: str
    val_acc: float
    test_acc: float
    test_ind_acc: float | None
    best_epoch: int
    epochs_run: int
    train_time_s: float

    def headline(self) -> float:
        """The number a run reports: test accuracy (transductive) or held-out accuracy (inductive)."""
        return self.test_acc if self.test_ind_acc is None else self.test_ind_acc


def distil(problem: NodeProblem, teacher: TeacherOutcome, cfg: G2MConfig, *, mode: str | None = None,
           seed: int = 0, device: torch.device, run_dir=None,
           identity: Mapping[str, Any] | None = None) -> StudentOutcome:
    """Train the MLP student of ``mode`` (default ``cfg.mode``) from ``teacher``'s logits with early stopping."""
    mode = mode or cfg.mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    p = problem
    student = student_for(cfg.teacher_config(), p.x.shape[1], p.num_classes, cfg.mlp_dropout).to(device)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, y, z = p.x_obs, p.y_obs, teacher.logits.detach()
    eval_idx = torch.cat([p.val, p.test])
    n_val = p.val.numel()
    gen = generator(seed, device)
    minibatch = cfg.edge_batch_size > 0 and mode != "mlp"
    static = None if minibatch else [_full_batch(mode, p)]

    def train_step(epoch: int) -> Tensor:
        student.train()
        total = torch.zeros((), device=device)
        batches = static or _edge_batches(mode, p, cfg.edge_batch_size, gen)
        for b in batches:
            opt.zero_grad(set_to_none=True)
            if b.nodes is None:
                h, zb, yb = student(x), z, y
            else:
                h, zb, yb = student(x[b.nodes]), z[b.nodes], y[b.nodes]
            loss = g2m_loss(mode, h, zb, yb, b.train, b.edges_plus, b.edges, lam=cfg.lam, tau=cfg.tau,
                            kd_nodes=b.kd_nodes)
            loss.backward()
            opt.step()
            total = total + loss.detach()
        return total / len(batches)

    @torch.no_grad()
    def evaluate() -> dict[str, Tensor]:
        student.eval()
        out = student(x[eval_idx])
        y_eval = y[eval_idx]
        metrics = {"val": accuracy(out[:n_val], y_eval[:n_val]), "test": accuracy(out[n_val:], y_eval[n_val:])}
        if p.setting == "inductive":  # features only: the held-out nodes were never part of training
            metrics["test_ind"] = accuracy(student(p.x[p.test_ind]), p.y[p.test_ind])
        return metrics

    t0 = time.perf_counter()
    stopper = fit_early_stopping(student, opt, train_step, evaluate, max_epochs=cfg.max_epochs, patience=cfg.patience,
                                 device=device, run_dir=run_dir, identity=identity,
                                 checkpoint_every=cfg.checkpoint_every, desc=f"student {mode}",
                                 extra_state={"edge_gen": gen})
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    student.eval()
    return StudentOutcome(student, mode, stopper.best_val, stopper.metrics["test"], stopper.metrics.get("test_ind"),
                          stopper.best_epoch, stopper.best_epoch + stopper.bad_epochs + 1, elapsed)


# -- the method ----------------------------------------------------------------------------------------
class FFG2M:
    """GNN-to-MLP distillation: ``FFG2M(config).fit(graph, teacher) -> Student``.

    ``graph`` is a PyG ``Data`` (``x``, ``y``, ``edge_index``, optional masks) or a ``dgl.DGLGraph`` (node data
    ``feat``, ``label``, optional masks). ``teacher`` is ``None`` (train ``config.teacher``), an ``nn.Module``
    mapping ``(x, edge_index)`` to logits (trained with the protocol unless ``train_teacher=False``) or
    precomputed logits ``[N, K]``. The student mirrors ``config.num_layers``/``config.hidden``.
    """

    def __init__(self, config: G2MConfig | None = None, *, device: str | torch.device = "auto", **overrides: Any):
        self.config = apply_overrides(config or G2MConfig(), overrides)
        self.device = resolve_device(device)

    def fit(self, graph: Any, teacher: Any = None, *, seed: int = 0, train_teacher: bool = True, run_dir=None,
            name: str | None = None, train_per_class: int | None = None) -> Student:
        cfg, device = self.config, self.device
        seed_everything(seed)
        problem = prepare_problem(graph, cfg, seed=seed, device=device, name=name, train_per_class=train_per_class)
        identity = {"config": to_dict(cfg), "data": problem.source["fingerprint"], "seed": seed,
                    "train_per_class": train_per_class}
        sub = (lambda part: None) if run_dir is None else (lambda part: f"{run_dir}/{part}")
        t = teach(problem, cfg, teacher, device=device, train=train_teacher, run_dir=sub("teacher"),
                  identity={**identity, "phase": "teacher"})
        seed_everything(seed)
        s = distil(problem, t, cfg, seed=seed, device=device, run_dir=sub(f"student-{cfg.mode}"),
                   identity={**identity, "phase": f"student-{cfg.mode}"})
        return student_artifact(problem, t, s, cfg, seed=seed, device=device, train_per_class=train_per_class)


def student_artifact(problem: NodeProblem, t: TeacherOutcome, s: StudentOutcome, cfg: G2MConfig, *, seed: int,
                     device: torch.device, train_per_class: int | None = None) -> Student:
    """Pack a trained student as a :class:`~condense.artifacts.Student` (weights, config, feature normalisation,
    teacher and student scores)."""
    p = problem
    params = sum(w.numel() for w in s.model.parameters())
    summary = {"teacher": t.arch, "mode": s.mode, "setting": p.setting,
               "teacher_test_acc": round(t.test_acc, 4), "student_test_acc": round(s.test_acc, 4),
               "teacher_train_s": round(t.train_time_s, 2), "student_train_s": round(s.train_time_s, 2)}
    if p.setting == "inductive":
        r = cfg.inductive_rate
        summary.update({"teacher_test_ind_acc": round(t.test_ind_acc, 4), "student_test_ind_acc": round(s.test_ind_acc, 4),
                        "student_production_acc": round((1 - r) * s.test_acc + r * s.test_ind_acc, 4)})
    return Student.create(
        {f"model.{k}": v for k, v in s.model.state_dict().items()},
        method="ffg2m",
        config=to_dict(cfg),
        source=p.source,
        budget={"student_params": params, "teacher_params": t.params, "train_per_class": train_per_class},
        seed=seed,
        device=str(device),
        extra={
            "summary": summary,
            "feature_norm": p.feature_norm,
            "setting": p.setting,
            "split": {"kind": p.split_kind, "train": int(p.split.train.numel()), "val": int(p.split.val.numel()),
                      "test": int(p.split.test.numel()), "test_ind": int(p.test_ind.numel())},
            "teacher": {"arch": t.arch, "val_acc": t.val_acc, "test_acc": t.test_acc, "test_ind_acc": t.test_ind_acc,
                        "best_epoch": t.best_epoch, "epochs_run": t.epochs_run, "train_time_s": t.train_time_s,
                        "params": t.params},
            "student": {"mode": s.mode, "val_acc": s.val_acc, "test_acc": s.test_acc, "test_ind_acc": s.test_ind_acc,
                        "best_epoch": s.best_epoch, "epochs_run": s.epochs_run, "train_time_s": s.train_time_s,
                        "params": params, "num_layers": s.model.num_layers, "hidden": s.model.hidden},
        },
    )


def _load_input(dataset: Any, data_root) -> tuple[Any, str]:
    if isinstance(dataset, str):
        from condense.data import canonical_name

        return load_node_graph(dataset, data_root), canonical_name(dataset)
    return dataset, "graph"


def run(dataset: Any = "cora", *, data_root=None, device: str = "auto", seed: int = 0,
        train_per_class: int | None = None, out=None, quiet: bool | None = None, teacher: str | None = None,
        mode: str | None = None, preset: str | None = None, **overrides: Any) -> Student:
    """Registry runner: train the teacher and distil a student on ``dataset`` (a catalogue name, a PyG ``Data``
    or a ``dgl.DGLGraph``) with the ``ffg2m-<dataset>-<teacher>`` preset, then ``teacher``/``mode``/overrides.
    ``out`` holds the teacher's and the student's checkpoints (a rerun resumes)."""
    cfg = resolve_config(dataset, teacher=teacher, mode=mode, preset=preset, overrides=overrides)
    with quiet_mode(quiet) if quiet is not None else nullcontext():
        graph, name = _load_input(dataset, data_root)
        return FFG2M(cfg, device=device).fit(graph, seed=seed, run_dir=out, name=name,
                                            train_per_class=train_per_class)


# -- comparison over seeds ---------------------------------------------------------------------------
@dataclass
class Comparison:
    """Teacher / student accuracies and training times over seeds (``summary``), and the student of the first seed
    for the requested mode (``student``)."""

    summary: dict[str, Any]
    student: Student | None = None

    def table(self) -> str:
        s = self.summary
        head = f"{s['dataset']} / {s['teacher']} teacher / {s['setting']} / seeds {s['seeds']}"
        metric = "test_ind accuracy (%)" if s["setting"] == "inductive" else "test accuracy (%)"
        lines = [head, f"  {'model':<10} {metric:>22}   {'train time (s)':>16}   {'epochs':>7}"]
        for key, r in s["results"].items():
            acc, tt = r["accuracy"], r["train_time_s"]
            lines.append(f"  {key:<10} {100 * acc['mean']:>14.2f} ± {100 * acc['std']:<5.2f}   "
                         f"{tt['mean']:>9.1f} ± {tt['std']:<5.1f}   {r['epochs']['mean']:>7.0f}")
        return "\n".join(lines)


def compare(dataset: Any = "cora", *, teacher: str | None = None, modes: Sequence[str] = COMPARE_MODES,
            runs: int = 5, seed: int = SEED_BASE, data_root=None, device: str = "auto", preset: str | None = None,
            train_per_class: int | None = None, keep_mode: str | None = None, quiet: bool | None = None,
            **overrides: Any) -> Comparison:
    """Teacher and students of ``modes`` over seeds ``seed + 0 .. runs-1`` (spec §4.3: each run seeds everything,
    redraws random splits, retrains the teacher, then trains each student from the same seed).

    Accuracy is test accuracy at the best-validation epoch (held-out accuracy when inductive), reported as mean ±
    population std; training times are wall seconds. The student of ``keep_mode`` (default: the config's mode
    when it is in ``modes``) from the first seed is returned as an artifact.
    """
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {', '.join(MODES)}, got {list(modes)}")
    cfg = resolve_config(dataset, teacher=teacher, preset=preset, overrides=overrides)
    keep_mode = keep_mode or (cfg.mode if cfg.mode in modes else None)
    dev = resolve_device(device)
    seeds = [seed + i for i in range(runs)]
    results: dict[str, dict[str, list[float]]] = {k: {"acc": [], "val": [], "time": [], "tran": [], "epochs": []}
                                                 for k in ("teacher", *modes)}
    kept = None
    with quiet_mode(quiet) if quiet is not None else nullcontext():
        graph, name = _load_input(dataset, data_root)
        for s in seeds:
            seed_everything(s)
            problem = prepare_problem(graph, cfg, seed=s, device=dev, name=name, train_per_class=train_per_class)
            t = teach(problem, cfg, device=dev)
            results["teacher"]["acc"].append(t.test_ind_acc if t.test_ind_acc is not None else t.test_acc)
            results["teacher"]["tran"].append(t.test_acc)
            results["teacher"]["val"].append(t.val_acc)
            results["teacher"]["epochs"].append(t.epochs_run)
            results["teacher"]["time"].append(t.train_time_s)
            for m in modes:
                seed_everything(s)
                o = distil(problem, t, cfg, mode=m, seed=s, device=dev)
                results[m]["acc"].append(o.headline())
                results[m]["tran"].append(o.test_acc)
                results[m]["val"].append(o.val_acc)
                results[m]["epochs"].append(o.epochs_run)
                results[m]["time"].append(o.train_time_s)
                if kept is None and m == keep_mode:
                    kept = student_artifact(problem, t, o, replace(cfg, mode=m), seed=s, device=dev,
                                            train_per_class=train_per_class)
    summary: dict[str, Any] = {"dataset": name, "teacher": cfg.teacher, "setting": cfg.setting, "seeds": seeds,
                               "config": to_dict(cfg), "results": {}}
    for key, r in results.items():
        entry = {"accuracy": run_stats(r["acc"]), "val_accuracy": run_stats(r["val"]), "train_time_s": run_stats(r["time"]),
                 "epochs": run_stats(r["epochs"])}
        if cfg.setting == "inductive":
            rate = cfg.inductive_rate
            entry["test_tran"] = run_stats(r["tran"])
            entry["production"] = run_stats([(1 - rate) * a + rate * b for a, b in zip(r["tran"], r["acc"])])
        summary["results"][key] = entry
    return Comparison(summary, kept)


# -- inference timing ----------------------------------------------------------------------------------
def throughput(model: nn.Module, x: Tensor, graph: Any = None, *, repeats: int = 3, warmup: int = 1,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """Nodes per second of a full-graph eval-mode forward: ``model(x)`` for an MLP, ``model(x, graph)`` for a GNN
    (the neighbourhood aggregation is inside the timed call). Also seconds per pass and peak memory (RSS, and
    CUDA allocations on a GPU) during the timed passes."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = torch.device(device)
    model = model.to(device).eval()
    args = (x,) if graph is None else (x, graph)
    with torch.inference_mode():
        for _ in range(warmup):
            model(*args)
        with Meter(device) as meter:
            for _ in range(repeats):
                out = model(*args)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    del out
    wall = meter.result.wall_s
    return {"nodes_per_s": x.shape[0] * repeats / wall, "seconds_per_pass": wall / repeats,
            "peak_rss_mb": meter.result.peak_rss_mb, "peak_cuda_mb": meter.result.peak_cuda_mb}


def inference_benchmark(student: nn.Module, teacher: nn.Module, x: Tensor, edges_plus: Tensor, *,
                        device: str | torch.device = "cpu", repeats: int = 3, warmup: int = 1,
                        sparse: bool = True) -> dict[str, Any]:
    """Student (features only) vs teacher (features + graph) throughput on the same device, and their ratio.

    With ``sparse`` the teacher reads a CSR adjacency built once beforehand (graph preprocessing, not timed), so
    its aggregation is a sparse matrix product instead of per-edge messages; GAT always uses the edge list
    (attention needs per-edge scores).
    """
    device = torch.device(device)
    x = x.to(device)
    edges_plus = edges_plus.to(device)
    graph = edges_plus
    if sparse and not isinstance(teacher, _edge_list_teachers()):
        graph = sparse_adjacency(edges_plus, x.shape[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        t = throughput(teacher, x, graph, repeats=repeats, warmup=warmup, device=device)
    s = throughput(student, x, repeats=repeats, warmup=warmup, device=device)
    return {"num_nodes": int(x.shape[0]), "num_edges": int(edges_plus.shape[1]), "num_features": int(x.shape[1]),
            "device": str(device), "student": s, "teacher": t,
            "speedup": s["nodes_per_s"] / t["nodes_per_s"]}


def _edge_list_teachers() -> tuple[type, ...]:
    from condense.graph.teachers import GAT

    return (GAT,)


def synthetic_graph(num_nodes: int, num_edges: int, num_features: int, num_classes: int, *, seed: int = 0):
    """A random graph for timing: ``num_edges`` undirected random pairs (both directions stored), Gaussian
    features and random labels. Not meant to be learnable."""
    from torch_geometric.data import Data

    for key, value in (("num_nodes", num_nodes), ("num_edges", num_edges), ("num_features", num_features),
                       ("num_classes", num_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    gen = generator(seed, "cpu")
    pairs = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, num_features, generator=gen)
    y = torch.randint(0, num_classes, (num_nodes,), generator=gen)
    data = Data(x=x, y=y, edge_index=torch.cat([pairs, pairs.flip(0)], dim=1))
    data.num_classes = num_classes
    return data


def speed(dataset: Any = "cora", *, teacher: str | None = None, preset: str | None = None, data_root=None,
          device: str = "auto", repeats: int = 3, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Inference throughput of the student MLP vs the teacher GNN for ``dataset`` (name, ``Data`` or DGL graph)
    with the preset architecture. Freshly initialised weights: a forward's cost does not depend on them."""
    cfg = resolve_config(dataset, teacher=teacher, preset=preset, overrides=overrides)
    dev = resolve_device(device)
    graph, name = _load_input(dataset, data_root)
    data = as_pyg(graph)
    x, _, k = _validate_node_data(data.x, data.y, getattr(data, "num_classes", None))
    prepared = prepare_graph(data.edge_index, x.shape[0], symmetrise=cfg.symmetrise)
    del data, graph, dataset  # keep only x and the prepared edges alive while timing
    seed_everything(seed)
    tcfg = cfg.teacher_config()
    result = inference_benchmark(student_for(tcfg, x.shape[1], k, cfg.mlp_dropout),
                                 build_teacher(tcfg, x.shape[1], k), x, prepared.edges_plus, device=dev,
                                 repeats=repeats)
    result.update({"dataset": name, "teacher_arch": cfg.teacher, "num_layers": cfg.num_layers, "hidden": cfg.hidden,
                   "num_classes": k})
    return result


def speed_table(r: Mapping[str, Any]) -> str:
    lines = [f"{r['dataset']}: {r['num_nodes']:,} nodes, {r['num_edges']:,} directed edges incl. self-loops, "
             f"{r['num_features']} features; {r['teacher_arch']} teacher vs MLP student ({r['num_layers']} layers, hidden "
             f"{r['hidden']}), device {r['device']}",
             f"  {'model':<8} {'nodes/s':>14} {'s/pass':>10} {'peak RSS (MB)':>14}"]
    for key in ("teacher", "student"):
        m = r[key]
        lines.append(f"  {key:<8} {m['nodes_per_s']:>14,.0f} {m['seconds_per_pass']:>10.4f} {m['peak_rss_mb']:>14.0f}")
    lines.append(f"  student / teacher throughput: {r['speedup']:.1f}x")
    return "\n".join(lines)


# -- evaluation (registry contract) ------------------------------------------------------------------
def evaluate_artifact(artifact: Student, *, model: str | None = None, runs: int | None = None, data_root=None,
                      device: str = "auto", seed: int = 0, baselines: bool = False, **overrides: Any) -> dict[str, Any]:
    """Score a stored student on its dataset's split (rebuilt from the artifact's seed and config), through
    ``Student.predict`` on raw features (no graph). With ``baselines``, also retrain the teacher, MLP, GLNN and the
    artifact's mode over ``runs`` (default 5) seeds ``seed, seed+1, ...``, with teacher ``model`` if given.
    """
    if not isinstance(artifact, Student):
        raise TypeError(f"evaluate_artifact expects a Student artifact, got {type(artifact).__name__}")
    source = artifact.meta.get("source", {})
    name = source.get("name")
    try:
        from condense.data import canonical_name

        canonical_name(name)
    except (ValueError, TypeError):
        raise ValueError(f"this student was trained on a user graph ({name!r}), not a catalogue dataset; score it "
                         "with artifact.predict(features) on your own labels") from None
    cfg = apply_overrides(from_dict(G2MConfig, artifact.meta["config"]), overrides)
    art_seed = int(artifact.meta.get("seed") or 0)
    dev = resolve_device(device)
    graph = load_node_graph(name, data_root)
    from condense.graph.data import fingerprint

    if source.get("fingerprint") and fingerprint(graph) != source["fingerprint"]:
        raise ValueError(f"the {name} data under the data root differ from the data this student was trained on "
                         f"(fingerprint {fingerprint(graph)} vs {source['fingerprint']})")
    problem = prepare_problem(graph, cfg, seed=art_seed, device=torch.device("cpu"), name=name,
                              train_per_class=artifact.meta.get("budget", {}).get("train_per_class"))
    eval_nodes = problem.test_ind if cfg.setting == "inductive" else problem.split.test
    pred = artifact.predict(graph.x[eval_nodes].float())
    acc = float((pred == problem.y[eval_nodes]).float().mean())
    metric = "test_ind" if cfg.setting == "inductive" else "test"
    results: dict[str, Any] = {"distilled": {"accuracy": run_stats([acc]), "evaluated_on": metric}}

    tcfg = cfg.teacher_config()
    k, f_in = problem.num_classes, problem.x.shape[1]
    teacher_net = build_teacher(tcfg, f_in, k)
    teacher_bytes = sum(t.numel() * t.element_size() for t in teacher_net.parameters())
    graph_bytes = problem.full.edges_plus.numel() * problem.full.edges_plus.element_size()
    student_bytes = artifact.nbytes
    timing = inference_benchmark(student_for(tcfg, f_in, k, cfg.mlp_dropout), teacher_net, problem.x,
                                 problem.full.edges_plus, device=dev)
    comparison = None
    if baselines:
        modes = tuple(dict.fromkeys(("mlp", "glnn", cfg.mode)))
        comparison = compare(name, teacher=model or cfg.teacher, modes=modes, runs=runs or 5, seed=seed,
                             data_root=data_root, device=device, **_config_overrides(cfg, model))
        results.update(comparison.summary["results"])
    out = {
        "kind": "Student", "method": "ffg2m", "dataset": name, "model": f"mlp-{cfg.num_layers}x{cfg.hidden}",
        "teacher": cfg.teacher, "mode": cfg.mode, "setting": cfg.setting,
        "results": results,
        "compression": {"samples": None, "distilled_samples": None, "full_samples": None,
                        "distilled_bytes": student_bytes, "full_bytes": teacher_bytes + graph_bytes,
                        "bytes": (teacher_bytes + graph_bytes) / student_bytes,
                        "note": "full = teacher parameters + the graph's edge list the teacher needs at inference"},
        "timing": {"student_nodes_per_s": timing["student"]["nodes_per_s"],
                   "teacher_nodes_per_s": timing["teacher"]["nodes_per_s"], "speedup": timing["speedup"],
                   "device": timing["device"]},
    }
    lines = [f"{name}: stored {cfg.mode} student ({cfg.teacher} teacher, {cfg.setting}) {metric} accuracy "
             f"{100 * acc:.2f}%",
             f"  inference: student {timing['student']['nodes_per_s']:,.0f} nodes/s vs teacher "
             f"{timing['teacher']['nodes_per_s']:,.0f} nodes/s ({timing['speedup']:.1f}x) on {timing['device']}"]
    if comparison is not None:
        lines.append(comparison.table())
    out["_text"] = "\n".join(lines)
    return out


def _config_overrides(cfg: G2MConfig, model: str | None) -> dict[str, Any]:
    """The artifact's config as overrides for :func:`compare`; a different teacher ``model`` takes its preset."""
    values = to_dict(cfg)
    if model is not None and model != cfg.teacher:
        arch_fields = {"teacher", "lr", *_PRESET_FIELDS}
        values = {k: v for k, v in values.items() if k not in arch_fields}
    values.pop("teacher", None)
    return values

"""The node-classification problem a run solves, on the device: features (normalised as the protocol says), labels,
the prepared graph (symmetric, one self-loop per node), the split (the graph's masks: Planetoid's public split or an
OGB split; else a seeded random split) and, in
the inductive setting, the observed subgraph without the held-out test nodes."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from condense.graph.data import row_normalise
from condense.graph.g2m.config import PLANETOID, G2MConfig
from condense.graph.teachers import PreparedGraph, check_edge_index, prepare_graph
from condense.progress import get_logger
from condense.runtime import generator

_FEATURE_NORMS = {"none": lambda x: x, "row": row_normalise}


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
    from condense.data import CATALOGUE, canonical_name, info
    from condense.graph.data import load_graph

    key = canonical_name(name)
    if info(key).family != "node-classification":
        raise ValueError(f"dataset {key!r} is a {info(key).family} dataset; FF-G2M needs a node-classification graph "
                         f"({', '.join(n for n, d in CATALOGUE.items() if d.family == 'node-classification')})")
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
    """Validate ``graph``, normalise features, prepare the graph (symmetric, one self-loop per node), draw the split
    and the inductive hold-out."""
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

"""Node-classification teachers for GNN-to-MLP distillation: GCN, GraphSAGE, GAT and APPNP on PyTorch Geometric
with the DGL semantics of the FF-G2M / GLNN reference code, the MLP their students use (:class:`NodeMLP`), and the supervised
training protocol (Adam, early stopping on validation accuracy).

Every model maps ``(x, edge_index) -> logits``; ``edge_index`` is either a ``[2, E]`` index tensor or a
``torch.sparse`` adjacency (``adj_t``, row = target), which avoids materialising per-edge messages on large
graphs. The teachers run on the graph :func:`prepare_graph` returns: self-loops removed, then exactly one added
per node, symmetric.

* **GCN** (Kipf & Welling, ICLR 2017; DGL ``GraphConv(norm="both")``):
  :math:`H' = \\hat D^{-1/2} \\hat A \\hat D^{-1/2} H W + b` with :math:`\\hat A` the graph with self-loops;
  hidden layers are conv -> ReLU -> dropout; no input dropout.
* **GraphSAGE** with DGL's ``"gcn"`` aggregator (Hamilton et al., NeurIPS 2017):
  :math:`h'_v = W \\cdot (h_v + \\sum_{u \\in N(v)} h_u) / (\\deg(v) + 1) + b`, where :math:`N(v)` contains
  :math:`v` through its self-loop (so :math:`v` counts twice); hidden layers are conv -> ReLU -> dropout.
* **GAT** (Velickovic et al., ICLR 2018; DGL ``GATConv``): hidden layers have ``heads`` heads of width
  ``hidden / heads`` (concatenated), the output layer one head (averaged); feature dropout on every layer's
  input, attention dropout, LeakyReLU slope 0.2 in the attention, ReLU after hidden layers, no residual.
* **APPNP** (Gasteiger et al., ICLR 2019): the :class:`NodeMLP` below, then ``K`` steps of personalised-PageRank
  propagation :math:`H \\leftarrow (1-\\alpha) \\hat D^{-1/2} \\hat A \\hat D^{-1/2} H + \\alpha H_0`. Not part
  of the published FF-G2M protocol.
* **NodeMLP** (the student): Linear -> ReLU -> dropout per hidden layer, a final Linear; no input dropout, no norm
  (FF-G2M reference ``src/models.py``, class ``MLP``).

**Your own teacher:** ``register("my-gnn", builder)`` with ``builder(in_dim, out_dim, config) -> nn.Module`` mapping
``(x, edge_index)`` to logits; ``config`` is the :class:`TeacherConfig` (its ``num_layers``, ``hidden``, ``dropout``
are yours to use). The name then works as FF-G2M's ``teacher``.

Training (:func:`train_teacher`, :func:`fit_early_stopping`): full batch, Adam (lr 0.01, weight decay 5e-4),
cross-entropy on the training nodes, at most 500 epochs; validation accuracy in eval mode every epoch; the
state is kept whenever val >= best (ties update) and training stops after ``patience`` (50) epochs without such
an update; the best state is restored. The test accuracy reported is the one at the best-validation epoch.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import APPNP, GATConv, GCNConv, MessagePassing
from torch_geometric.utils import add_self_loops, coalesce, is_undirected, remove_self_loops, spmm, to_undirected

from condense.config import require
from condense.registry import NetworkRegistry

TEACHERS: tuple[str, ...] = ("gcn", "sage", "gat", "appnp")


# -- the graph the teachers run on ------------------------------------------------------------------
class PreparedGraph(NamedTuple):
    """``edges_plus`` (E+: every directed edge, one self-loop per node) and ``edges`` (E: E+ without self-loops).

    ``symmetrised`` says whether reverse edges had to be added to make the input symmetric.
    """

    edges_plus: Tensor
    edges: Tensor
    num_nodes: int
    symmetrised: bool


def check_edge_index(edge_index: Any, num_nodes: int, *, name: str = "edge_index") -> Tensor:
    """Validate a ``[2, E]`` integer tensor of node ids in ``[0, num_nodes)`` and return it as int64."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{name} must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool or edge_index.is_complex():
        raise TypeError(f"{name} must hold integer node ids, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"{name} refers to node ids in [{lo}, {hi}], but the graph has {num_nodes} nodes "
                             f"(expected ids in [0, {num_nodes - 1}])")
    return edge_index


def prepare_graph(edge_index: Tensor, num_nodes: int, *, symmetrise: bool = True) -> PreparedGraph:
    """The FF-G2M graph: remove all self-loops, make the graph symmetric, then add exactly one self-loop per node.

    A directed input is symmetrised when ``symmetrise`` (recorded in the result), else it raises: the
    distillation losses read both directions of every edge. Duplicate edges are merged.
    """
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive integer, got {num_nodes!r}")
    edge_index = check_edge_index(edge_index, num_nodes)
    edges, _ = remove_self_loops(edge_index)
    edges = coalesce(edges, num_nodes=num_nodes)
    symmetrised = False
    if not is_undirected(edges, num_nodes=num_nodes):
        if not symmetrise:
            raise ValueError("edge_index is not symmetric (some edge (u, v) lacks (v, u)); pass symmetrise=True "
                             "(config symmetrise=true) to add the reverse edges, or symmetrise the graph yourself")
        edges = to_undirected(edges, num_nodes=num_nodes)
        symmetrised = True
    edges_plus, _ = add_self_loops(edges, num_nodes=num_nodes)
    return PreparedGraph(edges_plus, edges, num_nodes, symmetrised)


def sparse_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """A ``torch.sparse_csr`` adjacency ``adj_t`` (row = target node) with unit weights, for fast propagation."""
    dst, src = edge_index[1], edge_index[0]
    order = torch.argsort(dst * num_nodes + src)
    counts = torch.bincount(dst, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    crow[1:] = torch.cumsum(counts, 0)
    values = torch.ones(edge_index.shape[1], device=edge_index.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, src[order], values, (num_nodes, num_nodes), check_invariants=False)


# -- models -----------------------------------------------------------------------------------------
def _widths(in_dim: int, hidden: int, out_dim: int, num_layers: int) -> list[tuple[int, int]]:
    dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
    return list(zip(dims[:-1], dims[1:]))


class NodeMLP(nn.Module):
    """:math:`h_{l+1} = \\mathrm{Dropout}(\\mathrm{ReLU}(W_l h_l + b_l))` for the hidden layers, logits
    :math:`W_L h_L + b_L`. No input dropout, no normalisation (FF-G2M reference, class ``MLP``).

    The weights are ``layers.<i>.weight`` / ``layers.<i>.bias``: the layout ``condense.artifacts.Student``
    rebuilds without this class. ``edge_index`` is accepted and ignored, so a NodeMLP is a drop-in node classifier.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in _widths(in_dim, hidden, out_dim, num_layers))
        self.dropout = nn.Dropout(dropout)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden(self) -> int:
        return self.layers[0].out_features if len(self.layers) > 1 else 0

    def forward(self, x: Tensor, edge_index: Any = None) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.dropout(F.relu(h))
        return h


class _ConvStack(nn.Module):
    """Graph convolutions with conv -> ReLU -> dropout between them (no input dropout): GCN and SAGE.

    ``layer(i, h, edge_index)`` is layer i with its activation; the forward chains them, and layer-wise inference
    (:func:`condense.graph.sampling.layerwise_logits`) runs them one at a time over chunks of nodes."""

    def __init__(self, convs: list[nn.Module], dropout: float):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.dropout = nn.Dropout(dropout)

    @property
    def depth(self) -> int:
        return len(self.convs)

    def layer(self, i: int, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        h = self.convs[i](h, edge_index)
        return self.dropout(F.relu(h)) if i < len(self.convs) - 1 else h

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = x
        for i in range(self.depth):
            h = self.layer(i, h, edge_index)
        return h


class GCN(_ConvStack):
    """GCN with DGL ``GraphConv(norm="both")`` semantics on a graph that already has its self-loops."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float = 0.5):
        super().__init__([GCNConv(a, b, add_self_loops=False, normalize=True)
                          for a, b in _widths(in_dim, hidden, out_dim, num_layers)], dropout)

    @staticmethod
    def edge_norm(graph) -> Tensor:
        """:math:`1/\\sqrt{\\hat d_u \\hat d_v}` of every in-edge (u -> v) of a
        :class:`~condense.graph.sampling.InEdges` graph, from the whole graph's degrees."""
        inv = graph.degree.float().clamp_min(1).rsqrt()
        target = torch.repeat_interleave(torch.arange(graph.num_nodes, device=inv.device), graph.degree)
        return inv[graph.source] * inv[target]

    def layer(self, i: int, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Layer i; with ``edge_weight`` (the whole graph's :meth:`edge_norm` of these edges) the conv uses it as
        is instead of normalising by the degrees of the subgraph it is given."""
        if edge_weight is None:
            return super().layer(i, h, edge_index)
        conv = self.convs[i]
        conv.normalize = False
        try:
            h = conv(h, edge_index, edge_weight)
        finally:
            conv.normalize = True
        return self.dropout(F.relu(h)) if i < len(self.convs) - 1 else h


class SAGEGCNConv(MessagePassing):
    """DGL ``SAGEConv(aggregator_type="gcn")``:
    :math:`h'_v = W (h_v + \\sum_{u \\in N(v)} h_u) / (\\deg(v) + 1) + b`, with :math:`\\deg(v)` the in-degree
    (self-loop included). As in DGL, the linear map is applied before aggregating when it shrinks the width.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(aggr="add")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        lin_first = self.in_dim > self.out_dim
        h = self.lin(x) if lin_first else x
        total = h + self.propagate(edge_index, x=h)
        deg = self.propagate(edge_index, x=h.new_ones(h.shape[0], 1))
        h = total / (deg + 1)
        return (h if lin_first else self.lin(h)) + self.bias

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce="sum")


class SAGE(_ConvStack):
    """GraphSAGE with DGL's ``"gcn"`` aggregator; hidden layers are conv -> ReLU -> dropout."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float = 0.5):
        super().__init__([SAGEGCNConv(a, b) for a, b in _widths(in_dim, hidden, out_dim, num_layers)], dropout)


class GAT(nn.Module):
    """GAT with DGL ``GATConv`` semantics: ``heads`` heads of width ``hidden // heads`` in hidden layers
    (concatenated), one averaged head in the output layer, feature dropout on every layer's input."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float = 0.5, *,
                 heads: int = 4, attn_dropout: float = 0.3, negative_slope: float = 0.2):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"GAT hidden width {hidden} must be divisible by heads={heads}")
        per_head = hidden // heads
        self.convs = nn.ModuleList()
        d = in_dim
        for _ in range(num_layers - 1):
            self.convs.append(GATConv(d, per_head, heads=heads, concat=True, negative_slope=negative_slope,
                                      dropout=attn_dropout, add_self_loops=False))
            d = per_head * heads
        self.convs.append(GATConv(d, out_dim, heads=1, concat=False, negative_slope=negative_slope,
                                  dropout=attn_dropout, add_self_loops=False))
        self.dropout = nn.Dropout(dropout)

    @property
    def depth(self) -> int:
        return len(self.convs)

    def layer(self, i: int, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Layer i (feature dropout, attention, ReLU after hidden layers); the attention softmax runs over each
        target's in-edges, so a chunk of targets with all their in-neighbours gives the full-graph values."""
        h = self.convs[i](self.dropout(h), edge_index)
        return F.relu(h) if i < len(self.convs) - 1 else h

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = x
        for i in range(self.depth):
            h = self.layer(i, h, edge_index)
        return h


class APPNPNet(nn.Module):
    """APPNP: a :class:`NodeMLP` predicts, then ``k`` personalised-PageRank steps with teleport ``alpha`` propagate."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float = 0.5, *,
                 k: int = 10, alpha: float = 0.1):
        super().__init__()
        self.mlp = NodeMLP(in_dim, hidden, out_dim, num_layers, dropout)
        self.propagate = APPNP(K=k, alpha=alpha, add_self_loops=False, normalize=True)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.propagate(self.mlp(x), edge_index)


# -- users' own teachers -----------------------------------------------------------------------------
#: ``register(name, builder)``: a user's teacher GNN, ``builder(in_dim, out_dim, config: TeacherConfig) ->
#: nn.Module`` mapping ``(x, edge_index)`` to logits; the name then works as ``teacher=`` / ``--teacher``
register = NetworkRegistry("teacher GNN", "builder(in_dim, out_dim, config) -> nn.Module mapping (x, edge_index) "
                                          "to logits", lambda name: name in TEACHERS)


def teacher_names() -> tuple[str, ...]:
    """The built-in teachers and the registered ones."""
    return TEACHERS + tuple(register.names())


# -- configuration ----------------------------------------------------------------------------------
#: neighbours sampled per hop by default: (15, 10, 5) as PyG's large-graph examples use for three layers
DEFAULT_FANOUTS: tuple[int, ...] = (15, 10, 5)


@dataclass
class TeacherConfig:
    """A teacher's architecture and training protocol (defaults: the FF-G2M reference's fixed settings)."""

    arch: str = "gcn"  # gcn, sage, gat, appnp or a registered name
    num_layers: int = 2
    hidden: int = 64
    dropout: float = 0.5
    heads: int = 4
    attn_dropout: float = 0.3
    negative_slope: float = 0.2
    appnp_k: int = 10
    appnp_alpha: float = 0.1
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 500
    patience: int = 50
    sampling: Literal["auto", "full", "neighbors"] = "auto"  # auto: neighbors past large_graph_edges edges
    fanouts: tuple[int, ...] | None = None  # per layer; None: DEFAULT_FANOUTS[:num_layers] (then 5 per layer)
    batch_size: int = 1024  # seed nodes per sampled minibatch
    inference_batch_size: int = 16384  # target nodes per chunk of layer-wise inference
    large_graph_edges: int = 5_000_000  # E+ above which "auto" samples

    def __post_init__(self):
        require(self.arch in teacher_names(), "arch", f"expected one of {', '.join(teacher_names())}, got {self.arch!r}")
        require(self.num_layers >= 1, "num_layers", f"must be >= 1, got {self.num_layers}")
        require(self.hidden >= 1, "hidden", f"must be >= 1, got {self.hidden}")
        require(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
        require(0.0 <= self.attn_dropout < 1.0, "attn_dropout", f"must be in [0, 1), got {self.attn_dropout}")
        require(self.heads >= 1, "heads", f"must be >= 1, got {self.heads}")
        require(self.arch != "gat" or self.num_layers == 1 or self.hidden % self.heads == 0, "hidden",
                f"the GAT hidden width ({self.hidden}) must be divisible by heads ({self.heads})")
        require(self.appnp_k >= 1, "appnp_k", f"must be >= 1, got {self.appnp_k}")
        require(0.0 < self.appnp_alpha <= 1.0, "appnp_alpha", f"must be in (0, 1], got {self.appnp_alpha}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(self.max_epochs >= 1, "max_epochs", f"must be >= 1, got {self.max_epochs}")
        require(self.patience >= 1, "patience", f"must be >= 1, got {self.patience}")
        require(self.sampling in ("auto", "full", "neighbors"), "sampling",
                f"expected auto, full or neighbors, got {self.sampling!r}")
        if self.fanouts is not None:
            self.fanouts = tuple(self.fanouts)
            require(len(self.fanouts) == self.num_layers and all(isinstance(k, int) and (k >= 1 or k == -1)
                                                                 for k in self.fanouts), "fanouts",
                    f"expected {self.num_layers} integers (one per layer), each >= 1 or -1 for all neighbours, "
                    f"got {self.fanouts!r}")
        for key in ("batch_size", "inference_batch_size", "large_graph_edges"):
            require(isinstance(getattr(self, key), int) and getattr(self, key) >= 1, key,
                    f"must be a positive integer, got {getattr(self, key)!r}")

    def layer_fanouts(self) -> tuple[int, ...]:
        """The neighbours sampled per node at each hop (``fanouts``, or the defaults for ``num_layers``)."""
        if self.fanouts is not None:
            return self.fanouts
        return (DEFAULT_FANOUTS + (DEFAULT_FANOUTS[-1],) * self.num_layers)[:self.num_layers]

    def samples(self, num_edges: int) -> bool:
        """Whether training on a graph of ``num_edges`` edges (E+) uses neighbour-sampled minibatches."""
        return self.sampling == "neighbors" or (self.sampling == "auto" and num_edges > self.large_graph_edges)


def build_teacher(cfg: TeacherConfig, in_dim: int, out_dim: int) -> nn.Module:
    """A freshly initialised teacher of architecture ``cfg.arch`` (a built-in one or a registered builder's)."""
    user = register.get(cfg.arch)
    if user is not None:
        model = user(in_dim, out_dim, cfg)
        if not isinstance(model, nn.Module):
            raise TypeError(f"the teacher builder registered as {cfg.arch!r} returned {type(model).__name__}, "
                            "not an nn.Module")
        return model
    common = (in_dim, cfg.hidden, out_dim, cfg.num_layers, cfg.dropout)
    builders: dict[str, Callable[[], nn.Module]] = {
        "gcn": lambda: GCN(*common),
        "sage": lambda: SAGE(*common),
        "gat": lambda: GAT(*common, heads=cfg.heads, attn_dropout=cfg.attn_dropout,
                           negative_slope=cfg.negative_slope),
        "appnp": lambda: APPNPNet(*common, k=cfg.appnp_k, alpha=cfg.appnp_alpha),
    }
    return builders[cfg.arch]()


def student_for(cfg: TeacherConfig, in_dim: int, out_dim: int, dropout: float) -> NodeMLP:
    """The student mirroring a teacher: same number of layers, same hidden width (for GAT the full width, heads
    times the per-head width), dropout only after hidden ReLUs."""
    return NodeMLP(in_dim, cfg.hidden, out_dim, cfg.num_layers, dropout)


# -- early stopping and the training loop -----------------------------------------------------------
class EarlyStopping:
    """Model selection by validation accuracy: :meth:`update` keeps the state whenever ``val >= best`` (ties
    update, so the later epoch wins) and :attr:`stop` turns true after ``patience`` consecutive epochs without
    an update. The metrics recorded at the best epoch (e.g. test accuracy) are what a run reports.

    Has ``state_dict``/``load_state_dict`` so a :class:`condense.checkpoint.Checkpointer` can save it.
    """

    def __init__(self, patience: int):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        self.patience = patience
        self.best_val = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.metrics: dict[str, float] = {}
        self.state: dict[str, Tensor] | None = None

    def update(self, epoch: int, val: float, metrics: Mapping[str, float] | None = None,
               state: Mapping[str, Tensor] | None = None) -> bool:
        """Record one epoch's validation accuracy; returns True when it became the new best."""
        if val >= self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = float(val), int(epoch), 0
            self.metrics = {k: float(v) for k, v in (metrics or {}).items()}
            if state is not None:
                self.state = {k: v.detach().clone() for k, v in state.items()}
            return True
        self.bad_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best_val": self.best_val, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "metrics": dict(self.metrics), "state": dict(self.state or {})}

    def load_state_dict(self, sd: Mapping[str, Any]) -> None:
        self.best_val = float(sd["best_val"])
        self.best_epoch, self.bad_epochs = int(sd["best_epoch"]), int(sd["bad_epochs"])
        self.metrics = {k: float(v) for k, v in sd["metrics"].items()}
        self.state = {k: v.clone() for k, v in sd["state"].items()} or None


def _rng_of(device: torch.device) -> torch.Generator:
    """The default generator that ``nn.Dropout`` draws from on ``device`` (checkpointed for exact resume)."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


def minibatch_epoch(optimizer: torch.optim.Optimizer, batches: Iterable[Any], loss_of: Callable[[Any], Tensor],
                    device: torch.device) -> Tensor:
    """One epoch of optimiser steps, one per batch (zero the gradients, ``loss_of(batch).backward()``, step);
    returns the mean loss as a tensor on ``device`` (no host sync)."""
    total, steps = torch.zeros((), device=device), 0
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        total, steps = total + loss.detach(), steps + 1
    return total / steps


def fit_early_stopping(model: nn.Module, optimizer: torch.optim.Optimizer, train_step: Callable[[int], Tensor],
                       evaluate: Callable[[], Mapping[str, Tensor]], *, max_epochs: int, patience: int,
                       device: torch.device, run_dir=None, identity: Mapping[str, Any] | None = None,
                       checkpoint_every: int = 50, desc: str = "",
                       extra_state: Mapping[str, Any] | None = None) -> EarlyStopping:
    """Train for at most ``max_epochs`` epochs with early stopping on ``evaluate()["val"]``; restore the best state.

    ``train_step(epoch)`` runs one epoch and returns its (device) loss; ``evaluate()`` returns accuracies as
    device scalars, ``"val"`` among them (read together: one host sync per epoch). The loop is driven by a
    :class:`~condense.checkpoint.Checkpointer` (progress bar, non-finite-loss rollback, and with ``run_dir``
    periodic checkpoints and resume). ``extra_state`` adds objects that decide the future (e.g. a minibatch
    generator) to the checkpointed state.
    """
    from condense.checkpoint import Checkpointer

    stopper = EarlyStopping(patience)
    state = {"model": model, "opt": optimizer, "stopper": stopper, "rng": _rng_of(device), **(extra_state or {})}
    ckpt = Checkpointer(run_dir, state, every=checkpoint_every, identity=identity)
    for epoch in ckpt.loop(max_epochs, desc=desc):
        loss = train_step(epoch)
        metrics = evaluate()
        names = list(metrics)
        values = torch.stack([metrics[k].float().reshape(()) for k in names]).tolist()
        stopper.update(epoch, dict(zip(names, values))["val"], dict(zip(names, values)), model.state_dict())
        ckpt.report(loss)
        if stopper.stop:
            break
    if stopper.state is not None:
        model.load_state_dict(stopper.state)
    return stopper


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of rows whose argmax equals the label (a device scalar; NaN for zero rows)."""
    if logits.shape[0] == 0:
        return logits.new_tensor(float("nan"))
    return (logits.argmax(dim=-1) == y).float().mean()


@dataclass
class TeacherResult:
    """A trained teacher: the model (best state), its eval-mode logits on the graph it ran on, and its scores."""

    model: nn.Module
    logits: Tensor
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs_run: int
    train_time_s: float
    extra: dict[str, float] = field(default_factory=dict)


def train_teacher(model: nn.Module, x: Tensor, y: Tensor, edge_index: Tensor, train_idx: Tensor, val_idx: Tensor,
                  test_idx: Tensor, cfg: TeacherConfig, *, device: torch.device, run_dir=None,
                  identity: Mapping[str, Any] | None = None, desc: str = "teacher") -> TeacherResult:
    """Train ``model`` (any module mapping ``(x, edge_index)`` to logits) with the protocol in the module doc.

    Returns the best-validation model and its eval-mode logits on ``(x, edge_index)``, detached.
    """
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.samples(edge_index.shape[1]):
        return _train_sampled(model, opt, x, y, edge_index, train_idx, val_idx, test_idx, cfg, device=device,
                              run_dir=run_dir, identity=identity, desc=desc)
    y_train, y_val, y_test = y[train_idx], y[val_idx], y[test_idx]

    def train_step(epoch: int) -> Tensor:
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, edge_index)[train_idx], y_train)
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def evaluate() -> dict[str, Tensor]:
        model.eval()
        out = model(x, edge_index)
        return {"val": accuracy(out[val_idx], y_val), "test": accuracy(out[test_idx], y_test)}

    t0 = time.perf_counter()
    stopper = fit_early_stopping(model, opt, train_step, evaluate, max_epochs=cfg.max_epochs,
                                 patience=cfg.patience, device=device, run_dir=run_dir, identity=identity, desc=desc)
    model.eval()
    with torch.no_grad():
        logits = model(x, edge_index).detach()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    return TeacherResult(model, logits, stopper.best_val, stopper.metrics.get("test", float("nan")),
                         stopper.best_epoch, stopper.best_epoch + stopper.bad_epochs + 1, elapsed)


def _train_sampled(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, edge_index: Tensor,
                   train_idx: Tensor, val_idx: Tensor, test_idx: Tensor, cfg: TeacherConfig, *, device: torch.device,
                   run_dir, identity, desc: str) -> TeacherResult:
    """:func:`train_teacher` on neighbour-sampled minibatches (:mod:`condense.graph.sampling`).

    An epoch is one pass over the training nodes in shuffled batches of ``cfg.batch_size`` seeds, each step the
    cross-entropy of the seeds' outputs. Early stopping reads the validation accuracy on sampled neighbourhoods
    drawn with the same seed every epoch (comparable across epochs); the returned logits, validation and test
    accuracies come from exact layer-wise inference over the whole graph. The sampling seed is drawn from torch's
    default generator, so a seeded run is reproducible."""
    from condense.graph.sampling import InEdges, NeighborBatches, UniformNeighborSampler, layerwise_logits
    from condense.progress import get_logger

    seed = int(torch.randint(2**62, (1,)))
    batches = NeighborBatches(x, y, edge_index, cfg.layer_fanouts())
    get_logger().info("%s: neighbour-sampled training (fan-outs %s, %d seeds per batch, %s sampler)", desc,
                      batches.fanouts, cfg.batch_size, batches.sampler)
    train_loader = batches.loader(train_idx, batch_size=cfg.batch_size, shuffle=True, seed=seed)
    held_out = torch.cat([val_idx, test_idx])
    n_val = val_idx.numel()

    def seed_loss(batch) -> Tensor:  # the seeds come first in a batch
        batch = batch.to(device)
        return F.cross_entropy(model(batch.x, batch.edge_index)[:batch.batch_size], batch.y[:batch.batch_size])

    def train_step(epoch: int) -> Tensor:
        model.train()
        return minibatch_epoch(opt, train_loader, seed_loss, device)

    @torch.no_grad()
    def evaluate() -> dict[str, Tensor]:
        model.eval()
        with torch.random.fork_rng(devices=[]):  # the same neighbourhoods every epoch, whichever sampler
            torch.default_generator.manual_seed(seed + 1)
            outs = [model(b.x.to(device), b.edge_index.to(device))[:b.batch_size]
                    for b in batches.loader(held_out, batch_size=cfg.inference_batch_size, shuffle=False, seed=seed + 1)]
        out, y_held = torch.cat(outs), y[held_out]
        return {"val": accuracy(out[:n_val], y_held[:n_val]), "test": accuracy(out[n_val:], y_held[n_val:])}

    # the seeds' order and (with the PyTorch sampler) the neighbour draws decide the future: checkpointed too
    draws = {"order": train_loader.generator}
    if isinstance(getattr(train_loader, "node_sampler", None), UniformNeighborSampler):
        draws["draws"] = train_loader.node_sampler.generator
    t0 = time.perf_counter()
    stopper = fit_early_stopping(model, opt, train_step, evaluate, max_epochs=cfg.max_epochs,
                                 patience=cfg.patience, device=device, run_dir=run_dir, identity=identity, desc=desc,
                                 extra_state=draws)
    model.eval()
    graph = batches.graph if batches.graph is not None else InEdges(edge_index, x.shape[0])
    logits = layerwise_logits(model, x, edge_index, batch_size=cfg.inference_batch_size, graph=graph).detach()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    val, test = accuracy(logits[val_idx], y[val_idx]), accuracy(logits[test_idx], y[test_idx])
    return TeacherResult(model, logits, float(val), float(test), stopper.best_epoch,
                         stopper.best_epoch + stopper.bad_epochs + 1, elapsed, extra={"sampled_val": stopper.best_val})


def predict(model: nn.Module, x: Tensor, edge_index: Tensor, cfg: TeacherConfig) -> Tensor:
    """A teacher's outputs for every node in its current mode: layer-wise (:func:`condense.graph.sampling.
    layerwise_logits`) on a graph that ``cfg`` samples, else one full-graph forward."""
    if cfg.samples(edge_index.shape[1]):
        from condense.graph.sampling import layerwise_logits

        return layerwise_logits(model, x, edge_index, batch_size=cfg.inference_batch_size)
    return model(x, edge_index)

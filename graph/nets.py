"""Graph-classification GNNs (GCN, GIN, GAT, GraphSAGE on PyTorch Geometric) and the packed graph sets they
train on.

A :class:`GraphClassifier` stacks J message-passing layers (each: conv -> norm -> ReLU -> dropout), combines
the layer outputs (jumping knowledge ``last``/``sum``/``cat``), pools node embeddings into one vector per
graph and classifies it with dropout and one linear layer (as the Mirage reference does):

.. math::
    h_G = \\mathrm{READOUT}\\{ h^{(J)}_v : v \\in G,\\ \\mathrm{root}(v) \\}, \\qquad
    \\hat y_G = W\\, \\mathrm{dropout}(h_G) + b.

On an ordinary graph every node counts (``root_mask`` absent). On a Mirage tree set (disjoint unions of
computation trees with edges child -> parent, Gupta et al., ICLR 2024) only the tree roots are pooled, so a
sum readout over an itemset graph equals the sum of its trees' root embeddings; with J <= L and sum, mean or
attention aggregation a root's embedding equals its node's embedding in the original graph (the property that
makes Mirage model-agnostic).

Layers: GCN (Kipf & Welling, 2017) with symmetric normalisation
:math:`\\hat d_u^{-1/2} \\hat d_v^{-1/2}`, :math:`\\hat d = d + 1`; GIN (Xu et al., 2019) with
:math:`h_v' = \\mathrm{MLP}(h_v + \\sum_u h_u)` (GINE with edge features: Hu et al., 2020); GAT
(Veličković et al., 2018); GraphSAGE (Hamilton et al., 2017) with mean aggregation. GCN's degrees are
in-degrees of the graph it runs on; inside a computation tree the leaves have no children, so GCN is only
approximately equivalent when J = L. A graph may carry ``deg`` (the original degree of every node, e.g.
from Mirage's ``degree_in_code`` option): GCN then normalises with it and is exact again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from condense.config import require
from condense.graph.trees import expand_ranges

MODELS = ("gcn", "gin", "gat", "sage")


@dataclass
class GNNConfig:
    """Architecture of a :class:`GraphClassifier`."""

    model: Literal["gcn", "gin", "gat", "sage"] = "gin"
    layers: int | None = 2  # None only in configs that fill it in later (Mirage evaluation: J = L)
    hidden: int = 128
    dropout: float = 0.5
    norm: Literal["none", "batch", "layer"] = "none"
    jk: Literal["last", "sum", "cat"] = "last"
    readout: Literal["sum", "mean", "max"] = "sum"
    heads: int = 1  # GAT attention heads (hidden must be divisible by it)
    use_edge_attr: bool = True  # GIN (as GINE) and GAT use edge features when the graphs have them

    def __post_init__(self) -> None:
        require(self.model in MODELS, "model", f"must be one of {MODELS}, got {self.model!r}")
        require(self.layers is None or (isinstance(self.layers, int) and self.layers >= 1), "layers",
                f"must be an integer >= 1, got {self.layers!r}")
        require(isinstance(self.hidden, int) and self.hidden >= 1, "hidden", f"must be an integer >= 1, got {self.hidden!r}")
        require(0.0 <= self.dropout < 1.0, "dropout", f"must lie in [0, 1), got {self.dropout!r}")
        require(isinstance(self.heads, int) and self.heads >= 1 and self.hidden % self.heads == 0, "heads",
                f"must be a positive divisor of hidden={self.hidden}, got {self.heads!r}")


def gcn_edge_weights(edge_index: torch.Tensor, num_nodes: int, deg: torch.Tensor | None = None):
    """Edge index with self-loops and GCN weights :math:`\\hat d_u^{-1/2}\\hat d_v^{-1/2}`, :math:`\\hat d = d + 1`.

    ``d`` is ``deg`` when given (original degrees), else the in-degree in ``edge_index`` (PyG's ``gcn_norm``).
    """
    loops = torch.arange(num_nodes, device=edge_index.device)
    ei = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    d = torch.bincount(edge_index[1], minlength=num_nodes) if deg is None else deg
    inv = (d.to(torch.get_default_dtype()) + 1.0).rsqrt()
    return ei, inv[ei[0]] * inv[ei[1]]


def root_readout(h: torch.Tensor, batch: torch.Tensor, root_mask: torch.Tensor | None = None, *,
                 reduce: str = "sum", num_graphs: int | None = None) -> torch.Tensor:
    """Pool node embeddings ``h`` [N, D] into graph embeddings [G, D] over every node, or over the nodes of
    ``root_mask`` only: :math:`h_G = \\mathrm{READOUT}\\{h_v : v \\in G,\\ \\mathrm{root}(v)\\}`.

    The readout to use in your own PyG model when it trains on a Mirage tree set
    (``TreeSet.to_data_list()``): ``root_readout(h, batch.batch, batch.root_mask)``. On real graphs (no
    ``root_mask``) it is the ordinary sum/mean/max pooling."""
    from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

    pools = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}
    if reduce not in pools:
        raise ValueError(f"reduce must be one of {sorted(pools)}, got {reduce!r}")
    if root_mask is not None:
        h, batch = h[root_mask], batch[root_mask]
    return pools[reduce](h, batch, size=num_graphs)


class GraphClassifier(nn.Module):
    """A GNN graph classifier (see the module docstring). ``forward(data)`` takes anything with ``x``,
    ``edge_index``, ``batch``, ``num_graphs`` and optionally ``edge_attr``, ``root_mask``, ``deg`` (a
    :class:`PackedGraphs` or a PyG ``Batch``) and returns logits ``[num_graphs, num_classes]``."""

    def __init__(self, in_dim: int, num_classes: int, config: GNNConfig | None = None, *, edge_dim: int | None = None):
        super().__init__()
        from torch_geometric.nn import GATConv, GCNConv, GINConv, GINEConv, SAGEConv

        cfg = config or GNNConfig()
        if cfg.layers is None:
            raise ValueError("GNNConfig.layers is None: set the number of message-passing layers")
        self.config = cfg
        self.edge_dim = edge_dim if (cfg.use_edge_attr and edge_dim and cfg.model in ("gin", "gat")) else None
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(cfg.layers):
            d_in = in_dim if i == 0 else cfg.hidden
            if cfg.model == "gcn":
                conv = GCNConv(d_in, cfg.hidden, normalize=False)
            elif cfg.model == "gin":
                mlp = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden))
                conv = GINEConv(mlp, edge_dim=self.edge_dim) if self.edge_dim else GINConv(mlp)
            elif cfg.model == "gat":
                conv = GATConv(d_in, cfg.hidden // cfg.heads, heads=cfg.heads, edge_dim=self.edge_dim)
            else:
                conv = SAGEConv(d_in, cfg.hidden, aggr="mean")
            self.convs.append(conv)
            norm = {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[cfg.norm]
            self.norms.append(norm(cfg.hidden) if cfg.norm != "none" else norm())
        out_dim = cfg.hidden * cfg.layers if cfg.jk == "cat" else cfg.hidden
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(out_dim, num_classes))
        self.dropout = nn.Dropout(cfg.dropout)

    def node_embeddings(self, data) -> torch.Tensor:
        """Per-node embeddings after the message-passing layers and jumping knowledge."""
        x, edge_index = data.x, data.edge_index
        edge_attr = getattr(data, "edge_attr", None) if self.edge_dim else None
        weight = None
        if self.config.model == "gcn":
            edge_index, weight = gcn_edge_weights(edge_index, x.shape[0], getattr(data, "deg", None))
            weight = weight.to(x.dtype)
        outs = []
        h = x
        for conv, norm in zip(self.convs, self.norms):
            if self.config.model == "gcn":
                h = conv(h, edge_index, weight)
            elif edge_attr is not None:
                h = conv(h, edge_index, edge_attr)
            else:
                h = conv(h, edge_index)
            h = self.dropout(torch.relu(norm(h)))
            outs.append(h)
        if self.config.jk == "last":
            return outs[-1]
        if self.config.jk == "sum":
            return torch.stack(outs).sum(0)
        return torch.cat(outs, dim=1)

    def embed(self, data) -> torch.Tensor:
        """Graph embeddings ``[num_graphs, D]``: the readout over every node, or over roots when ``root_mask``."""
        return root_readout(self.node_embeddings(data), data.batch, getattr(data, "root_mask", None),
                            reduce=self.config.readout, num_graphs=data.num_graphs)

    def forward(self, data) -> torch.Tensor:
        return self.head(self.embed(data))


# -- packed graph sets -------------------------------------------------------------------------------
@dataclass
class PackedGraphs:
    """A set of graphs stored as concatenated tensors (one device-resident block, no Python objects per graph).

    Graph g owns nodes ``node_ptr[g]:node_ptr[g+1]`` and edges ``edge_ptr[g]:edge_ptr[g+1]``; ``edge_index``
    uses global node indices. Optional: ``edge_attr`` [E, Fe], ``root_mask`` [N] (pool only these nodes),
    ``deg`` [N] (original degrees, for GCN), ``weight`` [G] (e.g. itemset support). :meth:`select` gathers a
    subset into a new pack with vectorised index arithmetic; a pack is directly a model input.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    y: torch.Tensor
    edge_attr: torch.Tensor | None = None
    root_mask: torch.Tensor | None = None
    deg: torch.Tensor | None = None
    weight: torch.Tensor | None = None

    @property
    def num_graphs(self) -> int:
        return self.node_ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def node_counts(self) -> torch.Tensor:
        return self.node_ptr[1:] - self.node_ptr[:-1]

    @property
    def edge_counts(self) -> torch.Tensor:
        return self.edge_ptr[1:] - self.edge_ptr[:-1]

    @property
    def batch(self) -> torch.Tensor:
        """Graph index of every node."""
        g = torch.arange(self.num_graphs, device=self.node_ptr.device)
        return torch.repeat_interleave(g, self.node_counts, output_size=self.num_nodes)

    def edge_graph(self) -> torch.Tensor:
        """Graph index of every edge."""
        g = torch.arange(self.num_graphs, device=self.edge_ptr.device)
        return torch.repeat_interleave(g, self.edge_counts, output_size=self.num_edges)

    def select(self, index) -> "PackedGraphs":
        """The graphs ``index`` (a tensor or sequence of graph ids, repeats allowed), in that order."""
        idx = torch.as_tensor(index, dtype=torch.long, device=self.node_ptr.device).reshape(-1)
        ncount, ecount = self.node_counts[idx], self.edge_counts[idx]
        nodes = expand_ranges(self.node_ptr[idx], ncount)
        edges = expand_ranges(self.edge_ptr[idx], ecount)
        node_ptr = torch.zeros(idx.numel() + 1, dtype=torch.long, device=idx.device)
        node_ptr[1:] = torch.cumsum(ncount, 0)
        edge_ptr = torch.zeros_like(node_ptr)
        edge_ptr[1:] = torch.cumsum(ecount, 0)
        shift = torch.repeat_interleave(node_ptr[:-1] - self.node_ptr[idx], ecount, output_size=edges.numel())
        pick = lambda t, i: None if t is None else t[i]  # noqa: E731
        return PackedGraphs(
            x=self.x[nodes], edge_index=self.edge_index[:, edges] + shift, node_ptr=node_ptr, edge_ptr=edge_ptr,
            y=self.y[idx], edge_attr=pick(self.edge_attr, edges), root_mask=pick(self.root_mask, nodes),
            deg=pick(self.deg, nodes), weight=pick(self.weight, idx),
        )

    def to_data_list(self) -> list:
        """One PyG ``Data`` per graph, with local node indices and every per-node/edge/graph field carried over
        (``weight`` becomes a one-element tensor per graph, ``y`` too)."""
        from torch_geometric.data import Data

        pack = self.to("cpu")
        out = []
        node_ptr, edge_ptr = pack.node_ptr.tolist(), pack.edge_ptr.tolist()
        for g in range(pack.num_graphs):
            n0, n1, e0, e1 = node_ptr[g], node_ptr[g + 1], edge_ptr[g], edge_ptr[g + 1]
            data = Data(x=pack.x[n0:n1], edge_index=pack.edge_index[:, e0:e1] - n0, y=pack.y[g:g + 1])
            for key, t in (("edge_attr", pack.edge_attr), ("root_mask", pack.root_mask), ("deg", pack.deg)):
                if t is not None:
                    data[key] = t[e0:e1] if key == "edge_attr" else t[n0:n1]
            if pack.weight is not None:
                data.weight = pack.weight[g:g + 1]
            out.append(data)
        return out

    def to(self, device) -> "PackedGraphs":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return PackedGraphs(*(move(getattr(self, f)) for f in self.__dataclass_fields__))

    def with_features(self, x: torch.Tensor, edge_attr: torch.Tensor | None) -> "PackedGraphs":
        """The same graphs with other node (and edge) features."""
        return PackedGraphs(x, self.edge_index, self.node_ptr, self.edge_ptr, self.y, edge_attr, self.root_mask,
                            self.deg, self.weight)

    @classmethod
    def from_graphs(cls, graphs) -> "PackedGraphs":
        """Pack a PyG ``InMemoryDataset`` (read straight from its storage, no per-graph copies), a ``Batch`` or
        a sequence of ``Data`` with graph labels ``y``."""
        store, slices = getattr(graphs, "_data", None), getattr(graphs, "slices", None)
        if store is not None and slices is not None and "x" in slices and "edge_index" in slices:
            node_ptr, edge_ptr = slices["x"].long(), slices["edge_index"].long()
            full = cls(
                x=store.x, edge_index=store.edge_index.long(), node_ptr=node_ptr, edge_ptr=edge_ptr,
                y=store.y.reshape(-1).long(), edge_attr=getattr(store, "edge_attr", None) if "edge_attr" in slices else None,
            )
            # InMemoryDataset stores per-graph (local) node indices
            full.edge_index = full.edge_index + node_ptr[:-1][full.edge_graph()]
            indices = graphs.indices() if hasattr(graphs, "indices") else range(full.num_graphs)
            if isinstance(indices, range) and indices == range(full.num_graphs):
                return full
            return full.select(list(indices))
        from torch_geometric.data import Batch

        batch = graphs if isinstance(graphs, Batch) else Batch.from_data_list(list(graphs))
        x = batch.x if batch.x is not None else torch.zeros(batch.num_nodes, 0)  # featureless graphs
        if batch.y is None:
            raise ValueError("graphs need graph labels y")
        edge_ptr = batch._slice_dict["edge_index"].long().to(batch.edge_index.device)
        return cls(x=x, edge_index=batch.edge_index.long(), node_ptr=batch.ptr.long(), edge_ptr=edge_ptr,
                   y=batch.y.reshape(-1).long(), edge_attr=getattr(batch, "edge_attr", None))

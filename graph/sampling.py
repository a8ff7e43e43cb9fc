"""Graphs too large for full-batch training: neighbour-sampled minibatches and layer-wise full-graph inference.

**Neighbour sampling** (GraphSAGE, Hamilton et al., NeurIPS 2017). A minibatch starts from ``B`` seed nodes.
Hop ``l`` draws, for every node added in hop ``l-1`` (the seeds at hop 1), ``min(deg(v), k_l)`` of its
in-neighbours uniformly without replacement (``k_l = -1``: all of them), and adds the neighbours not seen yet.
The minibatch is the subgraph of the sampled edges (neighbour -> node) over all nodes reached, seeds first; a
model of ``L`` layers with fan-outs ``(k_1, ..., k_L)`` computes the seeds' outputs from it. Batches come from
PyTorch Geometric's loaders: ``NeighborLoader`` where its compiled sampler (``pyg-lib`` or ``torch-sparse``) is
installed, otherwise ``NodeLoader`` with :class:`UniformNeighborSampler`, a vectorised pure-PyTorch sampler
that runs on the CPU or the GPU. Both yield ``Data(x, y, edge_index, n_id, batch_size)`` with the seeds first.

**Layer-wise inference** (:func:`layerwise_logits`). Sampled neighbourhoods are noisy and an ``L``-hop
neighbourhood of every node is the whole graph, so the teacher's final outputs are computed one layer at a
time for all nodes: layer ``l`` runs on chunks of target nodes with *all* their in-neighbours' layer ``l-1``
outputs, exactly as the full-graph forward would (GCN keeps the global degree normalisation
:math:`1/\\sqrt{\\hat d_u \\hat d_v}`). Memory: two ``[N, hidden]`` activations plus one chunk's edges, instead of
``[E, hidden]`` messages per layer.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput


class InEdges:
    """A graph's edges grouped by target (CSC): the in-neighbours of node v are ``source[ptr[v]:ptr[v+1]]``."""

    def __init__(self, edge_index: Tensor, num_nodes: int):
        src, dst = edge_index
        order = torch.argsort(dst, stable=True)
        self.num_nodes = num_nodes
        self.source = src[order]
        self.degree = torch.bincount(dst, minlength=num_nodes)
        self.ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
        self.ptr[1:] = torch.cumsum(self.degree, 0)

    def gather(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """``(segment, position)``: for every in-edge of ``targets``, the index of its target in ``targets`` and
        the edge's position in :attr:`source`."""
        deg = self.degree[targets]
        segment = torch.repeat_interleave(torch.arange(targets.numel(), device=targets.device), deg)
        first = torch.cumsum(deg, 0) - deg
        position = self.ptr[targets][segment] + torch.arange(segment.numel(), device=targets.device) - first[segment]
        return segment, position


class UniformNeighborSampler(BaseSampler):
    """Uniform neighbour sampling without replacement (module docstring) as a PyG ``BaseSampler``.

    Each hop gives every candidate in-edge a uniform random key and keeps, per target, the ``k`` edges with the
    smallest keys: one sort per hop, no per-node Python loop. ``generator`` (on the graph's device) makes the
    draws reproducible.
    """

    def __init__(self, graph: InEdges, fanouts: Sequence[int], generator: torch.Generator):
        super().__init__()
        self.graph = graph
        self.fanouts = tuple(int(k) for k in fanouts)
        self.generator = generator
        self._local = torch.full((graph.num_nodes,), -1, dtype=torch.long, device=graph.source.device)

    def sample_nodes(self, seeds: Tensor) -> tuple[Tensor, Tensor, Tensor, list[int], list[int]]:
        """``(node, row, col, nodes per hop, edges per hop)`` of the subgraph grown from ``seeds`` (distinct node
        ids; module docstring); ``row``/``col`` are local ids of the neighbour and of the node it sends to."""
        dev = self.graph.source.device
        seeds = seeds.to(dev)
        local = self._local
        local[seeds] = torch.arange(seeds.numel(), device=dev)
        nodes, rows, cols = [seeds], [], []
        frontier, count = seeds, seeds.numel()
        try:
            for k in self.fanouts:
                segment, position = self.graph.gather(frontier)
                if k >= 0:  # keep the k smallest random keys of each target's in-edges
                    keys = torch.rand(segment.numel(), generator=self.generator, device=dev, dtype=torch.float64)
                    order = torch.argsort(segment.double() + keys)
                    deg = torch.bincount(segment, minlength=frontier.numel())
                    first = torch.cumsum(deg, 0) - deg
                    keep = order[torch.arange(order.numel(), device=dev) - first[segment[order]] < k]
                    segment, position = segment[keep], position[keep]
                neighbour = self.graph.source[position]
                fresh = torch.unique(neighbour[local[neighbour] < 0])
                local[fresh] = torch.arange(count, count + fresh.numel(), device=dev)
                rows.append(local[neighbour])
                cols.append(local[frontier[segment]])
                nodes.append(fresh)
                frontier, count = fresh, count + fresh.numel()
        finally:
            local[torch.cat(nodes)] = -1
        empty = seeds.new_empty(0)
        return (torch.cat(nodes), torch.cat(rows) if rows else empty, torch.cat(cols) if cols else empty,
                [t.numel() for t in nodes], [t.numel() for t in rows])

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        node, row, col, per_hop_nodes, per_hop_edges = self.sample_nodes(index.node)
        return SamplerOutput(node=node, row=row, col=col, edge=None, batch=None, num_sampled_nodes=per_hop_nodes,
                             num_sampled_edges=per_hop_edges, metadata=(index.input_id, index.time))

    def sample_from_edges(self, index, neg_sampling=None):
        raise NotImplementedError("UniformNeighborSampler samples around seed nodes (node classification); "
                                  "link-level sampling needs PyG's NeighborLoader/LinkNeighborLoader")


def compiled_sampler() -> str | None:
    """The compiled neighbour sampler PyG's ``NeighborLoader`` would use (``"pyg-lib"``/``"torch-sparse"``), if any."""
    import torch_geometric.typing as pyg_typing

    if pyg_typing.WITH_PYG_LIB:
        return "pyg-lib"
    return "torch-sparse" if pyg_typing.WITH_TORCH_SPARSE else None


class NeighborBatches:
    """Neighbour-sampled minibatches of one graph (module docstring): :meth:`loader` yields
    ``Data(x, y, edge_index, n_id, batch_size)`` grown from the seed nodes given, seeds first.

    With a compiled sampler PyG's ``NeighborLoader`` samples on the CPU (move each batch to the device);
    otherwise ``NodeLoader`` with :class:`UniformNeighborSampler` samples where the graph lives. :attr:`sampler`
    names the one in use."""

    def __init__(self, x: Tensor, y: Tensor, edge_index: Tensor, fanouts: Sequence[int]):
        self.fanouts = list(fanouts)
        self.sampler = compiled_sampler() or "torch"
        on = torch.device("cpu") if self.sampler != "torch" else edge_index.device
        self.data = Data(x=x.to(on), y=y.to(on), edge_index=edge_index.to(on), num_nodes=x.shape[0])
        self.graph = InEdges(edge_index, x.shape[0]) if self.sampler == "torch" else None

    def loader(self, seeds: Tensor, *, batch_size: int, shuffle: bool, seed: int):
        """Batches of ``batch_size`` seeds (shuffled per epoch when ``shuffle``); ``seed`` fixes the order and,
        with the pure-PyTorch sampler, the draws."""
        order = torch.Generator().manual_seed(seed)  # DataLoader shuffling runs on the CPU
        if self.graph is None:
            from torch_geometric.loader import NeighborLoader

            return NeighborLoader(self.data, num_neighbors=self.fanouts, input_nodes=seeds.cpu(),
                                  batch_size=batch_size, shuffle=shuffle, generator=order)
        from torch_geometric.loader import NodeLoader

        draws = torch.Generator(device=self.graph.source.device).manual_seed(seed)
        sampler = UniformNeighborSampler(self.graph, self.fanouts, draws)
        return NodeLoader(self.data, node_sampler=sampler, input_nodes=seeds.to(self.graph.source.device),
                          batch_size=batch_size, shuffle=shuffle, generator=order)


@torch.no_grad()
def layerwise_logits(model: nn.Module, x: Tensor, edge_index: Tensor, *, batch_size: int,
                     graph: InEdges | None = None) -> Tensor:
    """The outputs of ``model`` (in its current mode; call ``eval()`` first) for every node, one layer at a time
    over chunks of ``batch_size`` target nodes (module docstring). ``model`` provides ``depth`` and
    ``layer(i, h, edge_index, edge_weight=None)``, as the built-in GCN, SAGE and GAT teachers do (GCN also
    ``edge_norm``); any other module runs its whole forward on the graph. ``graph``: ``edge_index`` grouped by
    target, if already built."""
    if not hasattr(model, "layer"):
        return model(x, edge_index)
    n = x.shape[0]
    graph = graph if graph is not None else InEdges(edge_index, n)
    weight = model.edge_norm(graph) if hasattr(model, "edge_norm") else None
    h = x
    for i in range(model.depth):
        out = None
        for a in range(0, n, batch_size):
            b = min(a + batch_size, n)
            lo, hi = int(graph.ptr[a]), int(graph.ptr[b])
            src = graph.source[lo:hi]
            dst = torch.repeat_interleave(torch.arange(b - a, device=x.device), graph.degree[a:b])
            outside = (src < a) | (src >= b)
            extra = torch.unique(src[outside])
            src_local = torch.where(outside, (b - a) + torch.searchsorted(extra, src), src - a)
            sub = torch.cat([torch.arange(a, b, device=x.device), extra])
            o = model.layer(i, h[sub], torch.stack([src_local, dst]), None if weight is None else weight[lo:hi])
            if out is None:
                out = o.new_empty(n, o.shape[1])
            out[a:b] = o[: b - a]
        h = out
    return h

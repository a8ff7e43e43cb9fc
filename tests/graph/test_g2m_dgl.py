"""DGL interop: a ``dgl.DGLGraph`` with features, labels and masks trains exactly like the same graph in PyG.
Runs where DGL imports (the ``dgl`` extra; CI installs it)."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("DGLBACKEND", "pytorch")
dgl = pytest.importorskip("dgl")

from condense.graph.data import from_dgl  # noqa: E402
from condense.graph.g2m import FFG2M, G2MConfig  # noqa: E402

pytestmark = pytest.mark.dgl

TINY = dict(num_layers=2, hidden=8, max_epochs=10, patience=10)


def make_dgl_graph(idtype=torch.int32):
    g = torch.Generator().manual_seed(0)
    n = 40
    src, dst = torch.randint(0, n, (2, 90), generator=g)
    graph = dgl.graph((torch.cat([src, dst]), torch.cat([dst, src])), num_nodes=n, idtype=idtype)
    graph.ndata["feat"] = torch.randn(n, 5, generator=g)
    graph.ndata["label"] = torch.arange(n) % 3
    perm = torch.randperm(n, generator=g)
    for name, idx in (("train_mask", perm[:9]), ("val_mask", perm[9:20]), ("test_mask", perm[20:])):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        graph.ndata[name] = mask
    return graph


@pytest.mark.parametrize("idtype", [torch.int32, torch.int64])
def test_from_dgl_keeps_edges_features_labels_and_masks(idtype):
    graph = make_dgl_graph(idtype)
    data = from_dgl(graph)
    src, dst = graph.edges()
    assert data.edge_index.dtype == torch.int64
    assert torch.equal(data.edge_index, torch.stack([src.long(), dst.long()]))
    assert torch.equal(data.x, graph.ndata["feat"]) and torch.equal(data.y, graph.ndata["label"])
    assert data.num_nodes == 40 and int(data.train_mask.sum()) == 9 and data.val_mask.dtype == torch.bool


def test_from_dgl_errors_name_the_missing_data():
    graph = make_dgl_graph()
    with pytest.raises(ValueError, match="no node data 'features'"):
        from_dgl(graph, feat="features")


def test_fit_accepts_a_dgl_graph_and_matches_pyg():
    graph = make_dgl_graph()
    cfg = G2MConfig(**TINY)
    from_dgl_graph = FFG2M(cfg).fit(graph, seed=1)
    from_pyg = FFG2M(cfg).fit(from_dgl(graph), seed=1)
    assert from_dgl_graph.meta["source"]["split"] == "public"  # the DGL masks are the split
    assert from_dgl_graph.meta["extra"]["split"]["train"] == 9
    for key in from_pyg.tensors:
        assert torch.equal(from_dgl_graph[key], from_pyg[key])

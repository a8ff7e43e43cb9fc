"""GNN equivalence on materialised computation trees (Mirage's model-agnostic property), readout, packing."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from condense.graph.nets import GNNConfig, GraphClassifier, PackedGraphs, gcn_edge_weights
from condense.graph.trees import clean_edges, computation_trees, dense_rank_rows, first_index

N_CODES, N_EDGE_CODES = 3, 2


@pytest.fixture(scope="module")
def graph_and_trees():
    """A random graph set (as one packed graph), its depth-3 trees and the tree of every node."""
    g = torch.Generator().manual_seed(1)
    n = 60
    mask = torch.rand(n, n, generator=g) < 0.06
    u, v = torch.triu(mask, 1).nonzero().t()
    codes = torch.randint(0, N_CODES, (n,), generator=g)
    ei, ec = clean_edges(torch.stack([u, v]), n, torch.randint(0, N_EDGE_CODES, (u.numel(),), generator=g), symmetrise=True)
    return codes, ei, ec


def packs(codes, ei, ec, depth):
    """(original graph, one tree graph per node) as float64 packs with one-hot node/edge features. Node codes
    carry the degree (Mirage's ``degree_in_code``), so every tree node knows its original degree."""
    n = codes.numel()
    deg = torch.bincount(ei[1], minlength=n)
    code_deg, num = dense_rank_rows([codes, deg])
    rep = first_index(code_deg, num)
    trees = computation_trees(code_deg, ei, depth, ec)
    arrays = trees.materialise(trees.colour)  # one tree per node, in node order
    eye, eye_e = torch.eye(N_CODES, dtype=torch.float64), torch.eye(N_EDGE_CODES, dtype=torch.float64)
    original = PackedGraphs(eye[codes], ei, torch.tensor([0, n]), torch.tensor([0, ei.shape[1]]),
                            torch.zeros(1, dtype=torch.long), edge_attr=eye_e[ec])
    tree = PackedGraphs(
        eye[codes[rep][arrays.node_code]], arrays.edges_to_parent(), arrays.tree_ptr,
        arrays.tree_ptr - torch.arange(n + 1), torch.zeros(n, dtype=torch.long), edge_attr=eye_e[arrays.edge_code],
        root_mask=arrays.root_mask(), deg=deg[rep][arrays.node_code],
    )
    return original, tree


def roots_vs_nodes(model, original, tree):
    with torch.no_grad():
        h_graph = model.node_embeddings(original)
        h_tree = model.node_embeddings(tree)
    return h_tree[tree.root_mask], h_graph


@pytest.mark.parametrize("model, edge, extra", [
    ("gin", True, {}),
    ("gin", False, {"jk": "sum"}),
    ("sage", False, {"jk": "cat"}),
    ("gat", True, {"heads": 2}),
    ("gat", False, {"norm": "batch"}),
])
@pytest.mark.parametrize("depth, layers", [(2, 2), (3, 2), (3, 3)])
def test_root_embedding_equals_node_embedding(graph_and_trees, model, edge, extra, depth, layers):
    original, tree = packs(*graph_and_trees, depth)
    torch.manual_seed(0)
    net = GraphClassifier(N_CODES, 2, GNNConfig(model=model, layers=layers, hidden=8, use_edge_attr=edge, **extra),
                          edge_dim=N_EDGE_CODES).double().eval()
    roots, nodes = roots_vs_nodes(net, original, tree)
    assert torch.allclose(roots, nodes, atol=1e-10), (model, depth, layers)


def test_gcn_is_exact_below_depth_or_with_original_degrees_and_approximate_at_depth(graph_and_trees):
    original, tree = packs(*graph_and_trees, 2)
    torch.manual_seed(0)
    deep = GraphClassifier(N_CODES, 2, GNNConfig(model="gcn", layers=2, hidden=8)).double().eval()
    shallow = GraphClassifier(N_CODES, 2, GNNConfig(model="gcn", layers=1, hidden=8)).double().eval()
    roots, nodes = roots_vs_nodes(shallow, original, tree)
    assert torch.allclose(roots, nodes, atol=1e-10)  # J < L: every degree it uses is complete in the tree
    roots, nodes = roots_vs_nodes(deep, original, tree)
    assert torch.allclose(roots, nodes, atol=1e-10)  # J = L with `deg` (degree_in_code) is exact
    tree.deg = None
    roots, nodes = roots_vs_nodes(deep, original, tree)
    assert not torch.allclose(roots, nodes, atol=1e-6)  # leaves' in-degree 0 in the tree: only approximate


def test_gcn_weights_match_pyg_gcn_norm():
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei = torch.tensor([[0, 1, 1, 2, 0, 2], [1, 0, 2, 1, 2, 0]])
    ours_ei, ours_w = gcn_edge_weights(ei, 3)
    ref_ei, ref_w = gcn_norm(ei, None, 3, add_self_loops=True)
    ours = {(a, b): w for (a, b), w in zip(ours_ei.t().tolist(), ours_w.tolist())}
    ref = {(a, b): w for (a, b), w in zip(ref_ei.t().tolist(), ref_w.tolist())}
    assert ours.keys() == ref.keys() and all(abs(ours[k] - ref[k]) < 1e-6 for k in ours)


def test_root_readout_sums_only_the_roots(graph_and_trees):
    _, tree = packs(*graph_and_trees, 2)
    torch.manual_seed(0)
    net = GraphClassifier(N_CODES, 2, GNNConfig(model="gin", layers=2, hidden=8), edge_dim=N_EDGE_CODES).double().eval()
    groups = torch.tensor([3, 5, 7, 1, 1, 9])  # itemset graphs {3, 5}, {7, 1}, {1, 9}
    sel = tree.select(groups)
    ptr = torch.tensor([0, 2, 4, 6])
    itemsets = PackedGraphs(sel.x, sel.edge_index, sel.node_ptr[ptr], sel.edge_ptr[ptr], torch.zeros(3, dtype=torch.long),
                            sel.edge_attr, sel.root_mask, sel.deg)
    with torch.no_grad():
        per_tree = net.embed(tree)
        pooled = net.embed(itemsets)
        h = net.node_embeddings(tree)
    assert torch.allclose(pooled, per_tree[groups].reshape(3, 2, -1).sum(1))
    assert torch.allclose(per_tree, h[tree.root_mask])  # one root per tree: non-root nodes are not pooled
    full = PackedGraphs(tree.x, tree.edge_index, tree.node_ptr, tree.edge_ptr, tree.y, tree.edge_attr)
    with torch.no_grad():
        assert not torch.allclose(net.embed(full), per_tree)  # pooling every node differs


def test_select_matches_pyg_batching():
    g = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(5):
        n = 3 + i
        e = torch.randint(0, n, (2, 2 * n), generator=g)
        graphs.append(Data(x=torch.randn(n, 4, generator=g), edge_index=e, edge_attr=torch.randn(2 * n, 2, generator=g),
                           y=torch.tensor([i % 2])))
    pack = PackedGraphs.from_graphs(graphs)
    picked = [4, 1, 1, 3]
    sub = pack.select(picked)
    ref = Batch.from_data_list([graphs[i] for i in picked])
    assert torch.equal(sub.x, ref.x) and torch.equal(sub.edge_index, ref.edge_index)
    assert torch.equal(sub.edge_attr, ref.edge_attr) and torch.equal(sub.y, ref.y)
    assert torch.equal(sub.batch, ref.batch) and torch.equal(sub.node_ptr, ref.ptr)


def test_bad_configs_raise():
    from condense.config import ConfigError

    with pytest.raises(ConfigError, match="model"):
        GNNConfig(model="mlp")
    with pytest.raises(ConfigError, match="heads"):
        GNNConfig(model="gat", hidden=10, heads=3)
    with pytest.raises(ValueError, match="layers is None"):
        GraphClassifier(3, 2, GNNConfig(layers=None))

"""Teachers: graph preparation, the DGL semantics of each layer (by hand and against DGL itself), architecture
mirroring, dropout placement, early stopping and the training protocol."""
from __future__ import annotations

import math
import os

import pytest
import torch

from condense.config import ConfigError
from condense.graph.teachers import (
    GAT,
    GCN,
    SAGE,
    TEACHERS,
    EarlyStopping,
    NodeMLP,
    TeacherConfig,
    build_teacher,
    fit_early_stopping,
    prepare_graph,
    sparse_adjacency,
    student_for,
    train_teacher,
)

PATH = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # the undirected path 0-1-2


def random_graph(n=12, m=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (2, m), generator=g)
    return prepare_graph(torch.cat([e, e.flip(0)], 1), n)


# -- graph preparation --------------------------------------------------------------------------------
def test_prepare_graph_replaces_self_loops_and_counts_rows():
    edges = torch.tensor([[0, 1, 1, 2, 1, 1], [1, 0, 2, 1, 1, 1]])  # duplicated self-loop on node 1
    g = prepare_graph(edges, 3)
    assert g.edges.shape[1] == 4 and g.edges_plus.shape[1] == 7
    loops = g.edges_plus[:, g.edges_plus[0] == g.edges_plus[1]]
    assert sorted(loops[0].tolist()) == [0, 1, 2]  # exactly one per node
    assert not g.symmetrised
    assert (g.edges[0] != g.edges[1]).all()


def test_prepare_graph_symmetrises_or_raises():
    directed = torch.tensor([[0, 1], [1, 2]])
    g = prepare_graph(directed, 3)
    assert g.symmetrised and g.edges.shape[1] == 4
    assert set(map(tuple, g.edges.t().tolist())) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    with pytest.raises(ValueError, match="not symmetric"):
        prepare_graph(directed, 3, symmetrise=False)


@pytest.mark.parametrize("bad, err, match", [
    (torch.tensor([[0, 1], [1, 5]]), ValueError, r"node ids in \[0, 5\].*3 nodes"),
    (torch.tensor([[0, -1], [1, 0]]), ValueError, "node ids"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \[2, E\]"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), TypeError, "integer"),
    ([[0, 1], [1, 0]], TypeError, "torch.Tensor"),
])
def test_prepare_graph_rejects_bad_edge_index(bad, err, match):
    with pytest.raises(err, match=match):
        prepare_graph(bad, 3)


def test_graph_without_edges_keeps_only_self_loops():
    g = prepare_graph(torch.zeros(2, 0, dtype=torch.long), 4)
    assert g.edges.shape == (2, 0) and g.edges_plus.shape == (2, 4)


# -- layer semantics by hand ---------------------------------------------------------------------------
def test_gcn_layer_is_symmetric_normalised_propagation():
    g = prepare_graph(PATH, 3)
    net = GCN(2, 4, 3, num_layers=1)
    conv = net.convs[0]
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    a = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])  # A + I
    d = a.sum(1).rsqrt()
    expected = (d[:, None] * a * d[None, :]) @ (x @ conv.lin.weight.t()) + conv.bias
    torch.testing.assert_close(net(x, g.edges_plus), expected)


def test_sage_gcn_aggregator_counts_the_node_twice():
    g = prepare_graph(PATH, 3)
    for out_dim in (1, 4):  # linear before and after aggregation (DGL switches on the width)
        net = SAGE(2, 4, out_dim, num_layers=1)
        conv = net.convs[0]
        with torch.no_grad():
            conv.bias.uniform_()
        x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
        # node 1: neighbours incl. its self-loop = {0, 1, 2}, deg 3 -> (h1 + h0 + h1 + h2) / 4
        agg = torch.stack([(x[0] + x[0] + x[1]) / 3, (x[1] + x[0] + x[1] + x[2]) / 4, (x[2] + x[1] + x[2]) / 3])
        expected = agg @ conv.lin.weight.t() + conv.bias
        torch.testing.assert_close(net(x, g.edges_plus), expected)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_sparse_adjacency_gives_the_same_forward():
    g = random_graph()
    adj = sparse_adjacency(g.edges_plus, 12)
    x = torch.randn(12, 5)
    for arch in ("gcn", "sage", "appnp"):
        torch.manual_seed(0)
        net = build_teacher(TeacherConfig(arch=arch, num_layers=2, hidden=8), 5, 3).eval()
        torch.testing.assert_close(net(x, adj), net(x, g.edges_plus), rtol=1e-5, atol=1e-6)


# -- architecture mirroring and dropout placement ------------------------------------------------------
@pytest.mark.parametrize("arch", TEACHERS)
def test_student_mirrors_teacher_depth_and_width(arch):
    cfg = TeacherConfig(arch=arch, num_layers=3, hidden=64)
    teacher = build_teacher(cfg, 10, 4)
    student = student_for(cfg, 10, 4, dropout=0.5)
    assert student.num_layers == 3 and student.hidden == 64
    assert [l.out_features for l in student.layers] == [64, 64, 4]
    if arch == "gat":
        assert [c.heads for c in teacher.convs] == [4, 4, 1]
        assert [c.out_channels for c in teacher.convs] == [16, 16, 4]  # 4 heads x 16 = the student's 64
        assert teacher.convs[0].concat and not teacher.convs[-1].concat
    elif arch == "appnp":
        assert teacher.mlp.num_layers == 3 and teacher.mlp.hidden == 64
    else:
        assert [c.out_channels if hasattr(c, "out_channels") else c.out_dim for c in teacher.convs] == [64, 64, 4]


def test_gat_width_must_divide_by_heads():
    with pytest.raises(ConfigError, match="divisible"):
        TeacherConfig(arch="gat", hidden=66, heads=4)
    with pytest.raises(ValueError, match="divisible"):
        GAT(5, 66, 3, 2, heads=4)


def test_mlp_dropout_only_after_hidden_relus():
    torch.manual_seed(0)
    mlp = NodeMLP(6, 16, 3, num_layers=3, dropout=0.5).train()
    seen = []
    hooks = [layer.register_forward_hook(lambda m, inp, out: seen.append((inp[0], out))) for layer in mlp.layers]
    x = torch.rand(40, 6) + 0.1
    mlp(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen[0][0], x)  # no input dropout
    for i in (1, 2):
        prev_out, inp = seen[i - 1][1], seen[i][0]
        kept = inp != 0
        assert (~kept & (prev_out > 0)).any()  # some positive activations were dropped ...
        torch.testing.assert_close(inp[kept], 2.0 * prev_out.relu()[kept])  # ... survivors are relu'd and rescaled
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x))


def test_gat_applies_feature_dropout_to_every_layer_input():
    torch.manual_seed(0)
    net = GAT(6, 8, 3, num_layers=2, dropout=0.5, heads=2, attn_dropout=0.0).train()
    seen = []
    hooks = [c.register_forward_pre_hook(lambda m, args: seen.append(args[0])) for c in net.convs]
    x = torch.rand(12, 6) + 0.1
    net(x, random_graph().edges_plus)
    for h in hooks:
        h.remove()
    assert (seen[0] == 0).any() and ((seen[0] == 0) | torch.isclose(seen[0], 2 * x)).all()
    assert (seen[1] == 0).float().mean() > 0.3


# -- early stopping --------------------------------------------------------------------------------------
def scripted_curve():
    """Rises to 0.5 at epoch 10, ties it at epoch 30, then stays below."""
    vals = [0.1 + 0.04 * e for e in range(11)] + [0.45] * 19 + [0.5] + [0.4] * 200
    return [min(v, 0.5) for v in vals]


def test_early_stopping_scripted_curve_ties_update():
    curve = scripted_curve()
    stop = EarlyStopping(patience=50)
    last = None
    for epoch, v in enumerate(curve):
        stop.update(epoch, v, {"test": epoch / 1000})
        if stop.stop:
            last = epoch
            break
    assert stop.best_epoch == 30  # the tie at epoch 30 wins over epoch 10
    assert last == 80  # 50 epochs after the last val >= best
    assert stop.metrics["test"] == pytest.approx(0.030)


def test_fit_early_stopping_restores_the_best_epoch_state():
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    curve = scripted_curve()
    epochs = []

    def step(epoch):
        epochs.append(epoch)
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # the "state" remembers which epoch produced it
        return torch.zeros(())

    def evaluate():
        e = epochs[-1]
        return {"val": torch.tensor(curve[e]), "test": torch.tensor(e / 1000)}

    stopper = fit_early_stopping(model, opt, step, evaluate, max_epochs=500, patience=50,
                                 device=torch.device("cpu"))
    assert epochs == list(range(81))
    assert model.weight.item() == 30.0 and stopper.metrics["test"] == pytest.approx(0.030)


def test_early_stopping_rejects_bad_patience():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)


# -- training ----------------------------------------------------------------------------------------------
def two_community_graph(seed=0):
    """Two 20-node communities, features weakly informative, edges mostly inside communities."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(40) // 20
    x = torch.randn(40, 4, generator=g) + 0.6 * y[:, None].float()
    src = torch.randint(0, 20, (120,), generator=g)
    dst = torch.randint(0, 20, (120,), generator=g)
    e = torch.cat([torch.stack([src, dst]), torch.stack([src + 20, dst + 20])], 1)
    return x, y, prepare_graph(torch.cat([e, e.flip(0)], 1), 40)


@pytest.mark.parametrize("arch", TEACHERS)
def test_train_teacher_learns_and_reports_best_epoch(arch):
    torch.manual_seed(0)
    x, y, g = two_community_graph()
    cfg = TeacherConfig(arch=arch, num_layers=2, hidden=8, max_epochs=60, patience=20)
    idx = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    train, val, test = idx[:10], idx[10:25], idx[25:]
    res = train_teacher(build_teacher(cfg, 4, 2), x, y, g.edges_plus, train, val, test, cfg,
                        device=torch.device("cpu"))
    assert res.logits.shape == (40, 2) and not res.logits.requires_grad
    assert res.val_acc == pytest.approx(float((res.logits[val].argmax(1) == y[val]).float().mean()))
    assert res.test_acc == pytest.approx(float((res.logits[test].argmax(1) == y[test]).float().mean()))
    assert res.val_acc >= 0.8  # the graph makes the communities easy
    assert 0 <= res.best_epoch < res.epochs_run <= 60


def test_train_teacher_accepts_a_user_module():
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def forward(self, x, edge_index):
            return self.lin(x)

    x, y, g = two_community_graph()
    cfg = TeacherConfig(max_epochs=5, patience=5)
    res = train_teacher(Linear(), x, y, g.edges_plus, torch.arange(10), torch.arange(10, 20), torch.arange(20, 40),
                        cfg, device=torch.device("cpu"))
    assert res.logits.shape == (40, 2) and math.isfinite(res.test_acc)


# -- the layers against DGL itself (runs where DGL imports) ---------------------------------------------------
def _dgl():
    os.environ.setdefault("DGLBACKEND", "pytorch")
    return pytest.importorskip("dgl")


@pytest.mark.dgl
def test_layers_match_dgl_with_copied_weights():
    dgl = _dgl()
    from dgl.nn import GATConv, GraphConv, SAGEConv

    torch.manual_seed(0)
    g = random_graph(n=15, m=30, seed=3)
    dg = dgl.graph((g.edges_plus[0], g.edges_plus[1]), num_nodes=15)
    x = torch.randn(15, 6)

    gcn = GCN(6, 8, 5, num_layers=1).eval()
    ref = GraphConv(6, 5, norm="both")
    with torch.no_grad():
        ref.weight.copy_(gcn.convs[0].lin.weight.t())
        ref.bias.copy_(torch.randn(5))
        gcn.convs[0].bias.copy_(ref.bias)
    torch.testing.assert_close(gcn(x, g.edges_plus), ref(dg, x), rtol=1e-5, atol=1e-6)

    for out_dim in (3, 9):
        sage = SAGE(6, 8, out_dim, num_layers=1).eval()
        ref = SAGEConv(6, out_dim, "gcn")
        with torch.no_grad():
            ref.fc_neigh.weight.copy_(sage.convs[0].lin.weight)
            ref.bias.copy_(torch.randn(out_dim))
            sage.convs[0].bias.copy_(ref.bias)
        torch.testing.assert_close(sage(x, g.edges_plus), ref(dg, x), rtol=1e-5, atol=1e-6)

    gat = GAT(6, 8, 5, num_layers=2, dropout=0.0, heads=4, attn_dropout=0.0).eval()
    refs = [GATConv(6, 2, 4, activation=torch.relu), GATConv(8, 5, 1)]
    with torch.no_grad():
        for conv, r in zip(gat.convs, refs):
            r.fc.weight.copy_(conv.lin.weight)
            r.attn_l.copy_(conv.att_src)
            r.attn_r.copy_(conv.att_dst)
            r.bias.copy_(torch.randn_like(r.bias))
            conv.bias.copy_(r.bias)
    h = refs[0](dg, x).flatten(1)
    expected = refs[1](dg, h).mean(1)
    torch.testing.assert_close(gat(x, g.edges_plus), expected, rtol=1e-5, atol=1e-6)

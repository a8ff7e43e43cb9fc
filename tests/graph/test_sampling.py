"""Large-graph training: the neighbour sampler's invariants and uniformity, PyG loader batches, exact layer-wise
inference for every built-in teacher, sampled teacher training, and FF-G2M switching to it past a size."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from condense.config import ConfigError
from condense.graph.g2m import FFG2M, G2MConfig
from condense.graph.sampling import InEdges, NeighborBatches, UniformNeighborSampler, layerwise_logits
from condense.graph.teachers import TeacherConfig, build_teacher, prepare_graph, train_teacher


def random_graph(n: int = 300, e: int = 2000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return prepare_graph(torch.randint(0, n, (2, e), generator=g), n)


def blocks(n: int = 1200, k: int = 4, deg: int = 8, p_in: float = 0.9, seed: int = 0) -> Data:
    """A homophilous graph: k classes, each node's ``deg`` edges stay in its class with probability ``p_in``,
    features = a weak class signal plus noise (an MLP alone does far worse than a GNN)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    src = torch.arange(n).repeat_interleave(deg)
    same = torch.rand(src.numel(), generator=g) < p_in
    other = torch.randint(0, n, (src.numel(),), generator=g)
    peers = torch.randint(0, n // k, (src.numel(),), generator=g) * k + y[src]  # a node of the same class
    dst = torch.where(same, peers, other)
    x = 0.4 * torch.nn.functional.one_hot(y, k).float().repeat(1, 4) + torch.randn(n, 4 * k, generator=g)
    return Data(x=x, y=y, edge_index=torch.stack([src, dst]))


# -- the sampler ------------------------------------------------------------------------------------
def test_sampled_edges_are_graph_edges_with_fanout_many_per_node():
    graph = random_graph()
    csc = InEdges(graph.edges_plus, 300)
    sampler = UniformNeighborSampler(csc, (3, 2), torch.Generator().manual_seed(0))
    seeds = torch.tensor([5, 7, 9, 250])
    node, row, col, per_hop_nodes, per_hop_edges = sampler.sample_nodes(seeds)
    assert torch.equal(node[:4], seeds) and node.unique().numel() == node.numel()
    assert sum(per_hop_nodes) == node.numel() and sum(per_hop_edges) == row.numel() == col.numel()
    edges = set(map(tuple, graph.edges_plus.t().tolist()))
    sampled = list(zip(node[row].tolist(), node[col].tolist()))
    assert all(edge in edges for edge in sampled) and len(set(sampled)) == len(sampled)  # no edge twice
    # hop 1: every seed receives min(deg, 3) edges; hop 2: every node first reached in hop 1 receives min(deg, 2)
    hop1 = col[:per_hop_edges[0]]
    assert torch.equal(torch.bincount(hop1, minlength=4)[:4], csc.degree[seeds].clamp(max=3))
    reached = node[4:4 + per_hop_nodes[1]]
    got = torch.bincount(col[per_hop_edges[0]:], minlength=node.numel())[4:4 + per_hop_nodes[1]]
    assert torch.equal(got, csc.degree[reached].clamp(max=2))
    assert (sampler._local == -1).all()  # the scratch map is clean for the next batch


def test_all_neighbours_with_fanout_minus_one_and_reproducible_draws():
    graph = random_graph()
    csc = InEdges(graph.edges_plus, 300)
    seeds = torch.tensor([1, 2, 3])
    _, _, col, _, _ = UniformNeighborSampler(csc, (-1,), torch.Generator()).sample_nodes(seeds)
    assert torch.equal(torch.bincount(col), csc.degree[seeds])
    draws = [UniformNeighborSampler(csc, (2, 2), torch.Generator().manual_seed(4)).sample_nodes(seeds)[0]
             for _ in range(2)]
    assert torch.equal(*draws)


def test_draws_are_uniform_without_replacement():
    # node 0 has in-neighbours 1..10; 3 of them per draw, 4000 draws: each appears ~1200 times
    src = torch.arange(1, 11)
    hub = torch.zeros(10, dtype=torch.long)
    edge_index = torch.stack([torch.cat([src, hub]), torch.cat([hub, src])])
    sampler = UniformNeighborSampler(InEdges(edge_index, 11), (3,), torch.Generator().manual_seed(0))
    counts = torch.zeros(11)
    for _ in range(4000):
        node, row, _, _, _ = sampler.sample_nodes(torch.tensor([0]))
        picked = node[row]
        assert picked.unique().numel() == 3
        counts[picked] += 1
    expected = 4000 * 3 / 10
    assert counts[0] == 0 and ((counts[1:] - expected).abs() < 4 * (expected * 0.7) ** 0.5).all(), counts


def test_loader_batches_put_seeds_first():
    graph, x, y = random_graph(), torch.randn(300, 5), torch.randint(0, 3, (300,))
    batches = NeighborBatches(x, y, graph.edges_plus, (4, 3))
    seen = []
    for batch in batches.loader(torch.arange(40, 90), batch_size=16, shuffle=True, seed=0):
        seeds = batch.n_id[:batch.batch_size]
        assert torch.equal(batch.x, x[batch.n_id]) and torch.equal(batch.y, y[batch.n_id])
        assert int(batch.edge_index.max()) < batch.num_nodes
        seen += seeds.tolist()
    assert sorted(seen) == list(range(40, 90)) and seen != sorted(seen)  # every seed once, shuffled


# -- layer-wise inference ---------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["gcn", "sage", "gat", "appnp"])
def test_layerwise_inference_equals_the_full_forward(arch):
    graph = random_graph(seed=1)
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = build_teacher(TeacherConfig(arch=arch, num_layers=3, hidden=32), 16, 5).eval()
    with torch.no_grad():
        full = model(x, graph.edges_plus)
    chunked = layerwise_logits(model, x, graph.edges_plus, batch_size=37)  # chunks cut through neighbourhoods
    assert chunked.shape == full.shape and torch.allclose(chunked, full, atol=1e-5)


# -- training ---------------------------------------------------------------------------------------
def split(n: int, seed: int = 0):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:200].sort().values, perm[200:500].sort().values, perm[500:].sort().values


def test_sampled_teacher_learns_like_the_full_batch_one():
    data = blocks()
    graph = prepare_graph(data.edge_index, data.num_nodes)
    train, val, test = split(data.num_nodes)
    base = dict(arch="sage", num_layers=2, hidden=32, max_epochs=30, patience=30)
    scores = {}
    for mode in ("full", "neighbors"):
        torch.manual_seed(0)
        cfg = TeacherConfig(sampling=mode, fanouts=(5, 5) if mode == "neighbors" else None, batch_size=64, **base)
        model = build_teacher(cfg, data.x.shape[1], 4)
        res = train_teacher(model, data.x, data.y, graph.edges_plus, train, val, test, cfg, device=torch.device("cpu"))
        with torch.no_grad():
            assert torch.allclose(res.logits, res.model.eval()(data.x, graph.edges_plus), atol=1e-5)
        scores[mode] = res.test_acc
    assert scores["neighbors"] > 0.85 and abs(scores["neighbors"] - scores["full"]) < 0.05, scores


def test_ffg2m_samples_past_the_size_threshold():
    data = blocks(n=800)
    base = dict(teacher="sage", num_layers=2, hidden=32, max_epochs=40, patience=40, split="random",
                split_train_per_class=30, split_val=200, split_test=300, large_graph_edges=1000,
                teacher_batch_size=64, large_edge_batch_size=2000)
    cfg = G2MConfig(**base)
    assert cfg.teacher_config().samples(7000) and cfg.student_edge_batch(7000) == 2000
    assert not cfg.teacher_config().samples(1000) and cfg.student_edge_batch(1000) == 0
    extra = FFG2M(cfg).fit(data, seed=0).meta["extra"]
    assert (extra["teacher"]["training"], extra["student"]["edge_batch"]) == ("neighbors", 2000)
    # the floor: the same MLP on the labels alone (features carry a weak class signal; the graph a strong one)
    floor = FFG2M(G2MConfig(**base, mode="mlp")).fit(data, seed=0).meta["extra"]["student"]["test_acc"]
    assert extra["teacher"]["test_acc"] > 0.9 and extra["student"]["test_acc"] > floor + 0.05, (extra, floor)


def test_sampled_run_is_reproducible_and_resumes_to_the_same_student(tmp_path):
    data = blocks(n=400)
    cfg = G2MConfig(teacher="sage", num_layers=2, hidden=16, max_epochs=12, patience=12, checkpoint_every=5,
                    split="random", split_train_per_class=30, split_val=100, split_test=100, large_graph_edges=100,
                    teacher_batch_size=32, large_edge_batch_size=500)
    first = FFG2M(cfg).fit(data, seed=3, run_dir=tmp_path)
    assert (tmp_path / "teacher" / "checkpoints").is_dir()
    again = FFG2M(cfg).fit(data, seed=3)
    resumed = FFG2M(cfg).fit(data, seed=3, run_dir=tmp_path)  # from step 10 of each phase
    for other in (again, resumed):
        assert all(torch.equal(first[k], other[k]) for k in first.tensors)


def test_sampling_settings_are_validated():
    with pytest.raises(ConfigError, match="fanouts"):
        TeacherConfig(num_layers=2, fanouts=(10,))
    with pytest.raises(ConfigError, match="fanouts"):
        TeacherConfig(num_layers=1, fanouts=(0,))
    with pytest.raises(ConfigError, match="sampling"):
        TeacherConfig(sampling="sometimes")
    with pytest.raises(ConfigError, match="large_edge_batch_size"):
        G2MConfig(large_edge_batch_size=0)
    assert TeacherConfig(num_layers=2).layer_fanouts() == (15, 10)
    assert TeacherConfig(num_layers=4).layer_fanouts() == (15, 10, 5, 5)

"""Mirage end to end: fit -> TreeSet, itemsets vs brute force, byte accounting, training view, sampling,
evaluation contract and bad inputs."""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
from torch_geometric.data import Data

from condense.artifacts import TreeSet
from condense.config import ConfigError
from condense.graph.accounting import feature_bytes, graph_set_bytes, treeset_bytes
from condense.graph.classify import train_run
from condense.graph.mirage import (
    Mirage,
    MirageConfig,
    TreeEvalConfig,
    evaluate_artifact,
    evaluate_treeset,
    real_graphs,
    training_graphs,
)
from condense.graph.nets import PackedGraphs
from condense.registry import distill


def toy_graphs(n_graphs: int = 24, seed: int = 0, n_classes: int = 3, continuous: bool = False):
    """Small labelled graphs whose class shows in their labels: class c prefers node label c."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(n_graphs):
        c = i % n_classes
        n = int(torch.randint(3, 7, (1,), generator=g))
        labels = torch.where(torch.rand(n, generator=g) < 0.8, torch.full((n,), c), torch.randint(0, 3, (n,), generator=g))
        src = torch.arange(n - 1)
        dst = src + 1  # a path, plus one random chord
        extra = torch.randint(0, n, (2, 1), generator=g)
        if extra[0, 0] != extra[1, 0] and abs(int(extra[0, 0]) - int(extra[1, 0])) > 1:
            src, dst = torch.cat([src, extra[0]]), torch.cat([dst, extra[1]])
        ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
        ecode = (torch.rand(src.numel(), generator=g) < 0.2).long().repeat(2)
        x = torch.nn.functional.one_hot(labels, 3).float()
        if continuous:
            x = torch.cat([torch.randn(n, 2, generator=g) + labels.unsqueeze(1).float(), x], 1)
        graphs.append(Data(x=x, edge_index=ei, edge_attr=torch.nn.functional.one_hot(ecode, 2).float(), y=torch.tensor([c])))
    return graphs


def depth1_tree(data, v):
    """Node v's depth-1 unfolding, by hand: (label, sorted (edge label, neighbour label))."""
    lab = data.x.argmax(1).tolist()
    kids = sorted((int(data.edge_attr[e].argmax()), lab[int(data.edge_index[0, e])])
                  for e in range(data.edge_index.shape[1]) if int(data.edge_index[1, e]) == v)
    return (lab[v], tuple(kids))


def stored_depth1_tree(art, t):
    ptr, nb, eb = art["tree_ptr"], art["node_codebook"], art["edge_codebook"]
    a, b = int(ptr[t]), int(ptr[t + 1])
    codes = nb[art["node_code"][a:b]].argmax(1).tolist()
    edges = eb[art["edge_code"][a - t:b - t - 1]].argmax(1).tolist()
    return (codes[0], tuple(sorted(zip(edges, codes[1:]))))


def test_itemsets_and_supports_equal_brute_force_on_hand_built_trees():
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    items = [{depth1_tree(d, v) for v in range(d.num_nodes)} for d in graphs]
    expected = {}
    for c in range(3):
        tx = [t for t, d in zip(items, graphs) if int(d.y) == c]
        universe = sorted(set().union(*tx))
        frontier = [(u,) for u in universe]
        while frontier:  # level-wise brute force: extend only frequent sets
            nxt = []
            for s in frontier:
                supp = sum(1 for t in tx if set(s) <= t)
                if supp >= 3:
                    expected[(c, frozenset(s))] = supp
                    nxt += [s + (u,) for u in universe if u > s[-1]]
            frontier = nxt
    trees = [stored_depth1_tree(art, t) for t in range(art["tree_ptr"].numel() - 1)]
    ptr = art["itemset_ptr"].tolist()
    got = {(int(art["itemset_class"][i]), frozenset(trees[t] for t in art["itemset_tree"][ptr[i]:ptr[i + 1]].tolist())):
           int(art["itemset_support"][i]) for i in range(len(ptr) - 1)}
    assert got == expected
    assert len(set(trees)) == len(trees)  # each tree stored once


def test_treeset_round_trips_through_a_file(tmp_path):
    art = Mirage(MirageConfig(depth=2, support=0.25)).fit(toy_graphs())
    path = art.save(tmp_path / "m.safetensors")
    again = TreeSet.load(path)
    assert again == art
    assert again.meta["budget"]["thresholds"] == [2, 2, 2]  # ceil(0.25 * 8)
    assert set(again.meta["extra"]["bytes"]["ratio"]) == {"storage", "compact"}


def test_byte_accounting_on_a_hand_built_toy():
    # two trees of 3 and 2 nodes, one itemset holding both, two node codes (one-hot rows), no edge features
    tensors = {
        "tree_ptr": torch.tensor([0, 3, 5]), "node_code": torch.tensor([0, 1, 1, 0, 1]),
        "parent": torch.tensor([-1, 0, 0, -1, 0]), "edge_code": torch.tensor([0, 0, 0]),
        "itemset_ptr": torch.tensor([0, 2]), "itemset_tree": torch.tensor([0, 1]), "itemset_class": torch.tensor([1]),
        "itemset_support": torch.tensor([4]), "node_codebook": torch.eye(2), "edge_codebook": torch.zeros(1, 0),
    }
    storage = treeset_bytes(tensors, "storage")
    assert storage["total"] == (3 + 5 + 5 + 3 + 2 + 2 + 1 + 1) * 8 + 2 * 2 * 4 == 192
    assert storage["codebook"] == 16
    compact = treeset_bytes(tensors, "compact")
    assert compact["total"] == 22 * 1 + 2 == 24  # every integer fits one byte; one-hot rows become 1-byte codes
    # original side: 2 graphs, 5 nodes with 3 one-hot labels, 6 directed edges
    pack = PackedGraphs(torch.eye(3)[[0, 1, 2, 0, 1]], torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]]),
                        torch.tensor([0, 3, 5]), torch.tensor([0, 4, 6]), torch.tensor([0, 1]))
    assert graph_set_bytes(pack, "storage")["total"] == 2 * 6 * 8 + 5 * 3 * 4 + 2 * 8 + 3 * 8 == 196
    assert graph_set_bytes(pack, "compact")["total"] == 12 + 5 + 2 + 3 == 22
    # mixed features: two float columns, a one-hot block of 3, an integer column up to 300 (2 bytes)
    x = torch.tensor([[0.5, 1.0, 1, 0, 0, 7], [0.25, 2.0, 0, 0, 1, 300]])
    assert feature_bytes(x, "compact") == 2 * 4 + 2 * 1 + 2 * 1 + 2 * 2  # column 1 is integral: 1 byte each


def test_artifact_bytes_match_its_arrays():
    art = Mirage(MirageConfig(depth=2, support=2)).fit(toy_graphs())
    nb = art.meta["extra"]["bytes"]
    ints = sum(art[k].numel() for k in ("tree_ptr", "node_code", "parent", "edge_code", "itemset_ptr", "itemset_tree",
                                         "itemset_class", "itemset_support"))
    book = (art["node_codebook"].numel() + art["edge_codebook"].numel()) * 4
    assert nb["distilled"]["storage"]["total"] == 8 * ints + book == art.nbytes
    pack = PackedGraphs.from_graphs(toy_graphs())
    assert nb["original"]["storage"]["total"] == (pack.edge_index.numel() * 8 + pack.x.numel() * 4 + pack.y.numel() * 8
                                                  + pack.node_ptr.numel() * 8 + pack.edge_attr.numel() * 4)


def test_training_view_is_one_graph_per_itemset_with_roots_marked():
    art = Mirage(MirageConfig(depth=2, support=2)).fit(toy_graphs())
    view = training_graphs(art)
    sizes = art["tree_ptr"].diff()
    ptr = art["itemset_ptr"]
    assert view.num_graphs == art["itemset_class"].numel()
    assert torch.equal(view.y, art["itemset_class"]) and torch.equal(view.weight, art["itemset_support"].float())
    roots = torch.zeros(view.num_graphs, dtype=torch.long).index_add_(0, view.batch, view.root_mask.long())
    assert torch.equal(roots, ptr.diff())
    assert view.num_nodes == int(sizes[art["itemset_tree"]].sum())
    assert view.num_edges == view.num_nodes - int(ptr[-1])  # a forest: one edge per non-root node
    # edges point child -> parent: every root receives, no root sends
    assert not bool(view.root_mask[view.edge_index[0]].any())


def test_degree_in_code_carries_original_degrees():
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3, degree_in_code=True)).fit(graphs)
    view = training_graphs(art)
    t0 = int(art["itemset_tree"][0])
    a, b = int(art["tree_ptr"][t0]), int(art["tree_ptr"][t0 + 1])
    # the root's degree is its number of children in the depth-1 tree
    assert int(art["node_code_degree"][art["node_code"][a]]) == b - a - 1
    assert view.deg is not None and view.deg.shape[0] == view.num_nodes


def test_sampling_modes_really_change_training():
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    view = training_graphs(art)
    real = real_graphs(PackedGraphs.from_graphs(graphs), art)
    cfg = TreeEvalConfig(layers=1, hidden=8, epochs=3, batch_size=4, runs=1)
    params = {}
    for mode in ("each_once", "support", "support_per_class"):
        res = train_run(view, real, real, cfg, num_classes=3, seed=0, sampling=mode, keep_model=True)
        params[mode] = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    assert not torch.allclose(params["each_once"], params["support"])
    assert not torch.allclose(params["support"], params["support_per_class"])
    again = train_run(view, real, real, cfg, num_classes=3, seed=0, sampling="support", keep_model=True)
    assert torch.equal(torch.cat([p.detach().flatten() for p in again.model.parameters()]), params["support"])


def test_deeper_gnn_than_trees_warns():
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    pack = PackedGraphs.from_graphs(graphs)
    cfg = TreeEvalConfig(layers=2, hidden=8, epochs=1, runs=1)
    with pytest.warns(UserWarning, match="2 layers but the trees have depth L=1"):
        out = evaluate_treeset(art, pack, pack, pack, cfg, num_classes=3, device="cpu")
    assert out["results"]["distilled"]["selection"] == "accuracy"  # multi-class default


def test_continuous_features_need_a_discretiser_and_kmeans_codes_work():
    graphs = toy_graphs(continuous=True)
    with pytest.raises(ValueError, match="node_codes='exact' needs discrete features"):
        Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    art = Mirage(MirageConfig(depth=1, support=0.25, node_codes="kmeans", n_codes=4)).fit(graphs, seed=1)
    assert art["node_codebook"].shape[0] <= 4 and "feature_shift" in art and "feature_scale" in art
    assert art["feature_scale"][2:].eq(1).all() and art["feature_shift"][2:].eq(0).all()  # one-hot columns untouched
    real = real_graphs(PackedGraphs.from_graphs(graphs), art)
    assert abs(float(real.x[:, :2].mean())) < 1e-5  # continuous columns standardised like the codebook
    snapped = real_graphs(PackedGraphs.from_graphs(graphs), art, discretise_eval=True)
    assert torch.unique(snapped.x, dim=0).shape[0] <= art["node_codebook"].shape[0]


def test_degree_codes_for_featureless_graphs():
    graphs = [Data(edge_index=d.edge_index, num_nodes=d.num_nodes, y=d.y) for d in toy_graphs()]
    art = Mirage(MirageConfig(depth=1, support=3, node_codes="degree")).fit(graphs)
    assert art.meta["extra"]["features"]["x"] == "degree_onehot"
    book = art["node_codebook"]
    assert torch.equal(book.sum(1), torch.ones(book.shape[0]))  # one-hot degree rows


@pytest.mark.parametrize("kwargs, fit_kwargs, match", [
    ({"support": (2, 2)}, {}, "2 thresholds for 3 classes"),
    ({"support": 1.5}, {}, "a fraction must lie in"),
    ({"support": 2}, {"num_classes": 4}, "class 3 has no training graphs"),
    ({"support": 50}, {}, "class 0 has no itemset with support >= θ=50"),
    ({"support": 2, "max_tree_nodes": 5}, {}, "above max_tree_nodes=5.*smaller depth"),
    ({"support": 1, "max_itemsets": 3}, {}, "max_itemsets=3"),
])
def test_bad_inputs_raise_clear_errors(kwargs, fit_kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mirage(MirageConfig(depth=2, **kwargs)).fit(toy_graphs(), **fit_kwargs)


def test_bad_configs_and_graph_hygiene():
    with pytest.raises(ConfigError, match="depth"):
        MirageConfig(depth=0)
    with pytest.raises(ConfigError, match="support"):
        MirageConfig(support=0)
    with pytest.raises(ConfigError, match="support"):
        MirageConfig(support=(3, -1))
    graphs = toy_graphs()
    directed = [Data(x=d.x, edge_index=d.edge_index[:, : d.edge_index.shape[1] // 2],
                     edge_attr=d.edge_attr[: d.edge_index.shape[1] // 2], y=d.y) for d in graphs]
    with pytest.raises(ValueError, match="directed.*symmetrise=True"):
        Mirage(MirageConfig(depth=1, support=3)).fit(directed)
    sym = Mirage(MirageConfig(depth=1, support=3, symmetrise=True)).fit(directed)
    undirected = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    assert all(torch.equal(sym[k], undirected[k]) for k in undirected.tensors)
    looped = [Data(x=d.x, edge_index=torch.cat([d.edge_index, torch.zeros(2, 1, dtype=torch.long)], 1),
                   edge_attr=torch.cat([d.edge_attr, d.edge_attr[:1]]), y=d.y) for d in graphs]
    with pytest.raises(ValueError, match="self-loop"):
        Mirage(MirageConfig(depth=1, support=3)).fit(looped)
    Mirage(MirageConfig(depth=1, support=3, remove_self_loops=True)).fit(looped)


def test_single_node_graphs_and_isolated_nodes_count_in_class_sizes():
    graphs = toy_graphs(12, n_classes=2)
    graphs += [Data(x=torch.eye(3)[[0]], edge_index=torch.zeros(2, 0, dtype=torch.long),
                    edge_attr=torch.zeros(0, 2), y=torch.tensor([0]))] * 2
    art = Mirage(MirageConfig(depth=1, support=0.5)).fit(graphs)
    assert art.meta["budget"]["class_sizes"] == [8, 6]  # the two empty transactions still count
    assert art.meta["budget"]["thresholds"] == [4, 3]
    keep = Mirage(MirageConfig(depth=1, support=2, keep_single_node_trees=True)).fit(graphs)
    assert int(keep["tree_ptr"].diff().min()) == 1  # the one-node tree is frequent in class 0 now


def test_presets_and_missing_support(data_root):
    nci1, used = Mirage.configure("NCI1")
    assert nci1.support == (440, 570) and nci1.depth == 2 and used == ["mirage-nci1"]
    assert Mirage.configure("NCI1", support="0.1")[0].support == 0.1
    assert Mirage.configure("MUTAG")[0].support is None
    with pytest.raises(ValueError, match="no published support thresholds for 'MUTAG'"):
        distill("mirage", "MUTAG", data_root=data_root)


def test_run_and_evaluate_on_mutag(data_root):
    art = distill("mirage", "MUTAG", data_root=data_root, depth=1, support=0.4, device="cpu")
    src = art.meta["source"]
    assert src["name"] == "MUTAG" and src["train_graphs"] == 188 - 2 * 19
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = evaluate_artifact(art, model="gin", runs=2, data_root=data_root, device="cpu", baselines=True,
                                epochs=2, hidden=8)
    assert out["kind"] == "TreeSet" and out["model"] == "gin" and "table" in out
    assert set(out["results"]) == {"distilled", "full", "random_bytes", "random_per_class", "herding_bytes",
                                   "herding_per_class", "node_count", "untrained", "majority"}
    for name, res in out["results"].items():
        assert len(res["accuracy"]["runs"]) == (1 if name in ("node_count", "majority") else 2)
        assert 0.0 <= res["accuracy"]["mean"] <= 1.0
        assert math.isnan(res["roc_auc"]["mean"]) or 0.0 <= res["roc_auc"]["mean"] <= 1.0
    comp = out["compression"]
    assert comp["full_samples"] == 150 and comp["bytes"] == pytest.approx(comp["full_bytes"] / comp["distilled_bytes"])
    assert out["results"]["random_per_class"]["graphs"] == 20
    assert out["results"]["random_bytes"]["bytes"] <= max(comp["distilled_bytes"], 2 * 3000)
    assert "random_bytes" in out["table"] and "all seeds" in out["table"]


def test_itemset_order_is_deterministic():
    a = Mirage(MirageConfig(depth=2, support=2)).fit(toy_graphs())
    b = Mirage(MirageConfig(depth=2, support=2)).fit(toy_graphs())
    assert all(torch.equal(a[k], b[k]) for k in a.tensors)
    cls, supp = a["itemset_class"].tolist(), a["itemset_support"].tolist()
    assert list(zip(cls, [-s for s in supp])) == sorted(zip(cls, [-s for s in supp]))
    # all itemsets of a class are distinct
    ptr = a["itemset_ptr"].tolist()
    sets = [(cls[i], tuple(a["itemset_tree"][ptr[i]:ptr[i + 1]].tolist())) for i in range(len(cls))]
    assert len(set(sets)) == len(sets) and all(list(s) == sorted(s) for _, s in sets)
    assert not any(itertools.starmap(lambda x, y: x == y, zip(sets, sets[1:])))


def test_reported_test_metrics_are_those_of_the_best_validation_epoch():
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    view, real = training_graphs(art), real_graphs(PackedGraphs.from_graphs(graphs), art)
    cfg = TreeEvalConfig(layers=1, hidden=8, epochs=8, batch_size=4, runs=1, lr=0.01)
    long = train_run(view, real, real, cfg, num_classes=3, seed=0)
    # training is deterministic, so stopping right after the chosen epoch must choose it again (ties go later)
    short = train_run(view, real, real, TreeEvalConfig(layers=1, hidden=8, epochs=long.best_epoch + 1, batch_size=4,
                                                   runs=1, lr=0.01), num_classes=3, seed=0)
    assert short.best_epoch == long.best_epoch
    assert (short.test_accuracy, short.test_roc_auc, short.val) == (long.test_accuracy, long.test_roc_auc, long.val)


def test_threshold_grid_keeps_the_best_validation_point_and_skips_empty_classes(monkeypatch):
    import condense.graph.mirage as mirage_module

    graphs = toy_graphs(30)
    train, val = PackedGraphs.from_graphs(graphs[:24]), PackedGraphs.from_graphs(graphs[24:])
    seen = []

    def fake_train_runs(tree_pack, val_graphs, test_graphs, cfg, **kwargs):
        # the grid is scored on validation only: both evaluation arguments are the validation graphs
        assert torch.equal(val_graphs.y, val.y) and torch.equal(test_graphs.y, val.y) and cfg.runs == 2
        seen.append(tree_pack.num_graphs)
        return {"val": {"mean": -abs(tree_pack.num_graphs - 6)}, "selection": "accuracy"}, []

    monkeypatch.setattr(mirage_module, "train_runs", fake_train_runs)
    grid = ((50,), (2,), (3,), (4,), (6,))
    cfg = MirageConfig(depth=1, threshold_grid=grid, grid_runs=2)
    chosen, rows = mirage_module._select_threshold(cfg, train, val, 3, {"name": "toy"}, "cpu", 0)
    # a count above every class size leaves the classes without itemsets: skipped, with the reason
    assert "skipped" in rows[0] and "class" in rows[0]["skipped"]
    scored = [r for r in rows if "val" in r]
    assert [r["itemsets"] for r in scored] == seen and len(set(seen)) > 1
    best = max(scored, key=lambda r: r["val"])
    assert chosen.support == best["support"][0] and chosen.threshold_grid == grid
    # every itemset count is the one Mirage gives at that threshold
    for r in scored:
        art = Mirage(MirageConfig(depth=1, support=r["support"][0])).fit(train, num_classes=3)
        assert r["itemsets"] == art["itemset_class"].numel()
    with pytest.raises(ValueError, match="no point of threshold_grid"):
        mirage_module._select_threshold(MirageConfig(depth=1, threshold_grid=((50,),)), train, val, 3,
                                        {"name": "toy"}, "cpu", 0)


def test_threshold_grid_parses_from_the_command_line_form():
    cfg, _ = Mirage.configure("NCI1", threshold_grid="[[440, 570], [420, 550]]")
    assert cfg.threshold_grid == ((440, 570), (420, 550))


def test_training_flushes_subnormals_only_while_it_runs(monkeypatch):
    graphs = toy_graphs()
    art = Mirage(MirageConfig(depth=1, support=3)).fit(graphs)
    view, real = training_graphs(art), real_graphs(PackedGraphs.from_graphs(graphs), art)
    calls = []
    original = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda mode: calls.append(mode) or original(mode))
    train_run(view, real, real, TreeEvalConfig(layers=1, hidden=8, epochs=2, batch_size=4, runs=1), num_classes=3, seed=0)
    assert calls == [True, False]
    tiny = torch.finfo(torch.float32).tiny
    assert float(torch.tensor([tiny]) * 0.25) > 0  # subnormals are kept again after training

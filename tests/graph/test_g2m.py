"""FF-G2M losses against hand-computed values, invariances, gradients, splits, the inductive hold-out, configs,
edge minibatching, resume and the Student artifact."""
from __future__ import annotations

import math

import pytest
import torch

import condense
from condense.artifacts import ArtifactError, Student
from condense.config import ConfigError
from condense.graph import g2m
from condense.graph.g2m import (
    FFG2M,
    MODES,
    G2MConfig,
    g2m_loss,
    hfd_loss,
    inductive_split,
    kd_loss,
    label_loss,
    lfd_edge_values,
    lfd_loss,
    prepare_problem,
    random_split,
)
from condense.graph.g2m.training import _edge_batches
from condense.graph.presets import FFG2M_PRESETS as PRESETS
from condense.graph.teachers import NodeMLP, prepare_graph

CPU = torch.device("cpu")

# -- a three-node path graph, every term computed by hand --------------------------------------------------------------
Z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
H = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
Y = torch.tensor([0, 0, 1])  # node 1 is unlabelled: its label never enters the loss
TRAIN = torch.tensor([0, 2])
PATH = prepare_graph(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3)


def test_path_graph_row_counts():
    assert PATH.edges_plus.shape[1] == 7 and PATH.edges.shape[1] == 4


def test_hand_computed_terms():
    assert label_loss(H, Y, TRAIN).item() == pytest.approx(0.370867, abs=1e-6)
    assert lfd_loss(H, Z, PATH.edges_plus).item() == pytest.approx(0.429718, abs=1e-6)
    assert hfd_loss(H, Z, PATH.edges, tau=1.0).item() == pytest.approx(0.272362, abs=1e-6)
    assert hfd_loss(H, Z, PATH.edges, tau=2.0).item() == pytest.approx(0.075207, abs=1e-6)
    assert kd_loss(H, Z).item() == pytest.approx(0.730032, abs=1e-6)


def test_hand_computed_totals():
    kw = dict(lam=0.5, tau=1.0)
    total = lambda mode: g2m_loss(mode, H, Z, Y, TRAIN, PATH.edges_plus, PATH.edges, **kw).item()  # noqa: E731
    assert total("ffg2m") == pytest.approx(0.536474, abs=1e-6)
    assert total("glnn") == pytest.approx(0.550450, abs=1e-6)
    assert total("mlp") == pytest.approx(0.370867, abs=1e-6)  # no lambda scaling
    assert total("lfd_only") == pytest.approx(0.5 * 0.370867 + 0.5 * 0.429718, abs=1e-6)
    assert total("hfd_only") == pytest.approx(0.5 * 0.370867 + 0.5 * 0.272362, abs=1e-6)
    # lambda = 0 (Pubmed's preset) is pure distillation; lambda = 1 leaves only the label loss
    pure = g2m_loss("ffg2m", H, Z, Y, TRAIN, PATH.edges_plus, PATH.edges, lam=0.0, tau=1.0).item()
    assert pure == pytest.approx(0.429718 + 0.272362, abs=1e-6)
    only_ce = g2m_loss("ffg2m", H, Z, Y, TRAIN, PATH.edges_plus, PATH.edges, lam=1.0, tau=1.0).item()
    assert only_ce == pytest.approx(0.370867, abs=1e-6)


def test_per_edge_lfd_values_student_side_first():
    expected = {(0, 1): 0.110944, (1, 0): 0.0, (1, 2): 0.433781, (2, 1): 0.273209,
                (0, 0): 0.327813, (1, 1): 1.006842, (2, 2): 0.855440}
    values = lfd_edge_values(H, Z, PATH.edges_plus)
    got = {(int(u), int(v)): float(x) for (u, v), x in zip(PATH.edges_plus.t(), values)}
    assert got.keys() == expected.keys()
    for key, val in expected.items():
        assert got[key] == pytest.approx(val, abs=1e-6), key


def test_typical_bugs_give_other_values():
    """Typical implementation bugs (wrong KL direction, softmax before the absolute difference, ...): reproduce each
    and check that the real terms differ from it."""
    u, v = PATH.edges_plus
    ls, lt = H.log_softmax(1), Z.log_softmax(1)
    swapped = (ls[u].exp() * (ls[u] - lt[v])).sum(1).mean().item()  # KL(p_S || p_T)
    assert swapped == pytest.approx(0.340363, abs=1e-6)
    no_loops = lfd_loss(H, Z, PATH.edges).item()
    assert no_loops == pytest.approx(0.204483, abs=1e-6)
    hfd_over_plus = hfd_loss(H, Z, PATH.edges_plus, tau=1.0).item()
    assert hfd_over_plus == pytest.approx(0.155636, abs=1e-6)
    lfd, hfd = lfd_loss(H, Z, PATH.edges_plus).item(), hfd_loss(H, Z, PATH.edges, 1.0).item()
    assert abs(lfd - swapped) > 0.05 and abs(lfd - no_loops) > 0.05 and abs(hfd - hfd_over_plus) > 0.05


# -- invariances ----------------------------------------------------------------------------------------------
def random_case(n=9, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (2, 14), generator=g)
    graph = prepare_graph(torch.cat([e, e.flip(0)], 1), n)
    return (torch.randn(n, k, generator=g, dtype=torch.float64), torch.randn(n, k, generator=g, dtype=torch.float64),
            torch.randint(0, k, (n,), generator=g), graph)


@pytest.mark.parametrize("mode", MODES)
def test_losses_invariant_to_relabelling_and_edge_order(mode):
    h, z, y, graph = random_case()
    train = torch.tensor([0, 3, 5])
    kw = dict(lam=0.3, tau=1.7)
    base = g2m_loss(mode, h, z, y, train, graph.edges_plus, graph.edges, **kw)
    sigma = torch.randperm(9, generator=torch.Generator().manual_seed(1))  # old id i -> new id sigma[i]
    inv = torch.argsort(sigma)
    relabelled = g2m_loss(mode, h[inv], z[inv], y[inv], sigma[train], sigma[graph.edges_plus], sigma[graph.edges], **kw)
    torch.testing.assert_close(relabelled, base)
    p1 = torch.randperm(graph.edges_plus.shape[1], generator=torch.Generator().manual_seed(2))
    p2 = torch.randperm(graph.edges.shape[1], generator=torch.Generator().manual_seed(3))
    reordered = g2m_loss(mode, h, z, y, train, graph.edges_plus[:, p1], graph.edges[:, p2], **kw)
    torch.testing.assert_close(reordered, base)


def test_lfd_invariant_to_reversal_and_teacher_shift():
    h, z, _, graph = random_case(seed=4)
    base = lfd_loss(h, z, graph.edges_plus)
    torch.testing.assert_close(lfd_loss(h, z, graph.edges_plus.flip(0)), base)
    shifted = z.clone()
    shifted[2] += 5.0
    torch.testing.assert_close(lfd_loss(h, shifted, graph.edges_plus), base)
    # HFD reads raw logit differences, so the same shift must change it (it does not use probabilities)
    assert not torch.isclose(hfd_loss(h, shifted, graph.edges, 1.0), hfd_loss(h, z, graph.edges, 1.0))


def test_hfd_without_edges_is_zero_with_a_gradient_path():
    h = torch.randn(3, 2, requires_grad=True)
    loss = hfd_loss(h, torch.randn(3, 2), torch.zeros(2, 0, dtype=torch.long), 1.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(h.grad, torch.zeros(3, 2))


# -- gradients --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_gradient_matches_finite_differences(mode):
    torch.manual_seed(0)
    _, z, y, graph = random_case(n=7, k=3, seed=5)
    x = torch.randn(7, 5, dtype=torch.float64)
    student = NodeMLP(5, 6, 3, num_layers=2).double()
    names = [n for n, _ in student.named_parameters()]
    train = torch.tensor([1, 4])

    def loss_of(*params):
        h = torch.func.functional_call(student, dict(zip(names, params)), (x,))
        return g2m_loss(mode, h, z, y, train, graph.edges_plus, graph.edges, lam=0.4, tau=1.3)

    params = tuple(p.detach().clone().requires_grad_() for p in student.parameters())
    assert torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-5)
    z_req = z.clone().requires_grad_()
    h = student(x)
    g2m_loss(mode, h, z_req, y, train, graph.edges_plus, graph.edges, lam=0.4, tau=1.3).backward()
    assert z_req.grad is None  # the teacher's logits are detached


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="mode must be one of"):
        g2m_loss("kd", H, Z, Y, TRAIN, PATH.edges_plus, PATH.edges, lam=0.5, tau=1.0)


# -- splits -----------------------------------------------------------------------------------------------------
def labels(counts):
    return torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])[torch.randperm(sum(counts))]


def test_random_split_sizes_disjoint_reproducible():
    torch.manual_seed(0)
    y = labels([700, 800, 900])
    split = random_split(y, 3, torch.Generator().manual_seed(2022))
    assert [len(s) for s in split] == [60, 500, 1000]
    assert torch.bincount(y[split.train], minlength=3).tolist() == [20, 20, 20]
    all_ids = torch.cat(list(split))
    assert all_ids.unique().numel() == all_ids.numel()
    again = random_split(y, 3, torch.Generator().manual_seed(2022))
    assert all(torch.equal(a, b) for a, b in zip(split, again))
    other = random_split(y, 3, torch.Generator().manual_seed(2023))
    assert not torch.equal(split.val, other.val)


def test_random_split_small_class_warns_and_too_few_nodes_raise():
    y = labels([5, 600, 1000])
    with pytest.warns(UserWarning, match=r"classes \[0\] have fewer than 20"):
        split = random_split(y, 3, torch.Generator().manual_seed(0))
    assert torch.bincount(y[split.train], minlength=3).tolist() == [5, 20, 20]
    with pytest.raises(ValueError, match=r"tiny: after taking 40 training nodes only 60 remain.*500 validation"):
        random_split(labels([50, 50]), 2, torch.Generator().manual_seed(0), dataset="tiny")


def test_inductive_split_sizes():
    test = torch.arange(100, 1101)
    ind, tran = inductive_split(test, 0.2, torch.Generator().manual_seed(0))
    assert ind.numel() == 200 and tran.numel() == 801  # floor(0.2 * 1001)
    assert torch.equal(torch.cat([ind, tran]).sort().values, test)


def community_graph(n_per=30, seed=0):
    """Two communities (labels 0/1), informative features, plus masks for a fixed split."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    n = 2 * n_per
    y = torch.arange(n) // n_per
    x = torch.randn(n, 6, generator=g) + 0.8 * torch.nn.functional.one_hot(y, 6).float()
    src, dst = torch.randint(0, n_per, (2, 4 * n_per), generator=g)
    e = torch.cat([torch.stack([src, dst]), torch.stack([src + n_per, dst + n_per])], 1)
    data = Data(x=x, y=y, edge_index=torch.cat([e, e.flip(0)], 1))
    perm = torch.randperm(n, generator=g)
    for name, idx in (("train", perm[:10]), ("val", perm[10:25]), ("test", perm[25:])):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        setattr(data, f"{name}_mask", mask)
    return data


TINY = dict(num_layers=2, hidden=8, max_epochs=15, patience=10, mlp_dropout=0.0, gnn_dropout=0.0)


def test_inductive_problem_never_contains_held_out_nodes_or_edges():
    data = community_graph()
    cfg = G2MConfig(setting="inductive", **TINY)
    p = prepare_problem(data, cfg, seed=3, device=CPU)
    n_test = int(data.test_mask.sum())
    assert p.test_ind.numel() == math.floor(0.2 * n_test)
    assert not set(p.test_ind.tolist()) & set(p.obs.tolist())
    assert set(p.obs.tolist()) == set(torch.cat([p.split.train, p.split.val, p.obs[p.test]]).tolist())
    global_edges = p.obs[p.obs_graph.edges_plus]
    assert not torch.isin(global_edges, p.test_ind).any()
    # every full-graph edge between observed nodes is kept
    full = p.full.edges
    inside = ~torch.isin(full, p.test_ind).any(0)
    assert p.obs_graph.edges.shape[1] == int(inside.sum())


def test_inductive_training_does_not_depend_on_held_out_nodes():
    """Change the held-out nodes' features and edges: teacher logits and student weights stay bit-identical."""
    data = community_graph()
    cfg = G2MConfig(setting="inductive", **TINY)
    first = FFG2M(cfg).fit(data, seed=5)
    p = prepare_problem(data, cfg, seed=5, device=CPU)
    altered = data.clone()
    altered.x[p.test_ind] = torch.randn(p.test_ind.numel(), 6) * 10
    extra = torch.stack([p.test_ind, p.split.train[: p.test_ind.numel()]])
    altered.edge_index = torch.cat([data.edge_index, extra, extra.flip(0)], 1)
    second = FFG2M(cfg).fit(altered, seed=5)
    for key in first.tensors:
        assert torch.equal(first[key], second[key]), key
    ex1, ex2 = first.meta["extra"], second.meta["extra"]
    assert ex1["teacher"]["val_acc"] == ex2["teacher"]["val_acc"]
    assert ex1["student"]["test_acc"] == ex2["student"]["test_acc"]  # test_tran: observed nodes only
    # ... while the held-out accuracy is measured on the altered held-out features
    assert ex1["summary"]["student_test_ind_acc"] is not None
    assert "student_production_acc" in ex1["summary"]


# -- configs and presets ------------------------------------------------------------------------------------------
def test_presets_hold_the_published_table():
    assert len(PRESETS) == 18
    cora_gat = PRESETS["ffg2m-cora-gat"]
    assert cora_gat == {"teacher": "gat", "lr": 0.01, "num_layers": 3, "hidden": 1024, "mlp_dropout": 0.3,
                        "gnn_dropout": 0.6, "tau": 1.2, "lam": 0.5}
    assert PRESETS["ffg2m-amazon-photo-sage"]["lr"] == 0.001 and PRESETS["ffg2m-pubmed-gcn"]["lam"] == 0.0
    for values in PRESETS.values():
        G2MConfig(**values)  # every preset is a valid config (GAT widths divisible by 4, ...)


def test_configure_layers_preset_teacher_mode_overrides():
    cfg, used = FFG2M.configure("cora", teacher="sage", mode="glnn", tau="2.5")
    assert (cfg.teacher, cfg.mode, cfg.hidden, cfg.mlp_dropout, cfg.tau) == ("sage", "glnn", 512, 0.4, 2.5)
    assert used == ["ffg2m-cora-sage"]
    assert FFG2M.configure("Cora")[0].hidden == 512 and FFG2M.configure("karate")[0].hidden == G2MConfig().hidden
    assert FFG2M.configure("citeseer", teacher="gat")[0].hidden == 2048


@pytest.mark.parametrize("overrides, match", [
    ({"mode": "kd"}, "mode"),
    ({"teacher": "gin"}, "teacher"),
    ({"lam": 1.5}, "lam"),
    ({"tau": 0.0}, "tau"),
    ({"teacher": "gat", "hidden": 130}, "divisible"),
    ({"edge_batch_size": -1}, "edge_batch_size"),
    ({"nonsense": 1}, "unknown config key"),
])
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ConfigError, match=match):
        FFG2M.configure("karate", **overrides)


# -- bad inputs ---------------------------------------------------------------------------------------------------
def test_bad_graph_inputs_raise_clear_errors():
    data = community_graph()
    cfg = G2MConfig(**TINY)
    bad = data.clone()
    bad.y = bad.y.clone()
    bad.y[3] = 7
    bad.num_classes = 2
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 1\].*\[0, 7\]"):
        prepare_problem(bad, cfg, seed=0, device=CPU)
    bad = data.clone()
    bad.y = bad.y[:-2]
    with pytest.raises(ValueError, match="x has 60 rows, y has 58"):
        prepare_problem(bad, cfg, seed=0, device=CPU)
    bad = data.clone()
    bad.edge_index = torch.tensor([[0, 99], [99, 0]])
    with pytest.raises(ValueError, match="60 nodes"):
        prepare_problem(bad, cfg, seed=0, device=CPU)
    bad = data.clone()
    bad.x = bad.x.clone()
    bad.x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        prepare_problem(bad, cfg, seed=0, device=CPU)
    with pytest.raises(TypeError, match="Data"):
        prepare_problem({"x": data.x}, cfg, seed=0, device=CPU)
    with pytest.raises(ValueError, match="split='public' needs"):
        no_masks = data.clone()
        del no_masks.train_mask
        prepare_problem(no_masks, G2MConfig(split="public", **TINY), seed=0, device=CPU)


def test_bad_teachers_raise():
    data = community_graph()
    with pytest.raises(ValueError, match=r"teacher logits must have shape \[num_nodes=60, num_classes=2\]"):
        FFG2M(G2MConfig(**TINY)).fit(data, teacher=torch.randn(60, 3))
    with pytest.raises(TypeError, match="teacher must be None"):
        FFG2M(G2MConfig(**TINY)).fit(data, teacher="gcn")


def test_graph_without_edges_is_well_defined():
    data = community_graph()
    data.edge_index = torch.zeros(2, 0, dtype=torch.long)
    with pytest.warns(UserWarning, match="no edges"):
        art = FFG2M(G2MConfig(**TINY)).fit(data, seed=0)
    assert all(torch.isfinite(t).all() for t in art.tensors.values())
    assert 0.0 <= art.meta["extra"]["student"]["test_acc"] <= 1.0


# -- teachers given as logits or modules ---------------------------------------------------------------------------
def test_precomputed_logits_are_used_as_the_teacher():
    data = community_graph()
    perfect = torch.nn.functional.one_hot(data.y, 2).float() * 8.0
    art = FFG2M(G2MConfig(mode="glnn", lam=0.0, **{**TINY, "max_epochs": 60, "patience": 60})).fit(data, teacher=perfect, seed=0)
    extra = art.meta["extra"]
    assert extra["teacher"]["arch"] == "logits" and extra["teacher"]["test_acc"] == 1.0
    assert extra["student"]["val_acc"] >= 0.9


def test_user_module_teacher_used_as_is_when_not_trained():
    class Oracle(torch.nn.Module):
        def forward(self, x, edge_index):
            return torch.nn.functional.one_hot(x[:, -1].long(), 2).float()

    data = community_graph()
    data.x = torch.cat([data.x, data.y[:, None].float()], 1)
    art = FFG2M(G2MConfig(**TINY)).fit(data, teacher=Oracle(), train_teacher=False)
    assert art.meta["extra"]["teacher"]["test_acc"] == 1.0 and art.meta["extra"]["teacher"]["arch"] == "Oracle"


# -- edge minibatching ------------------------------------------------------------------------------------------------
def test_edge_batches_cover_every_row_once_per_epoch():
    data = community_graph()
    p = prepare_problem(data, G2MConfig(**TINY), seed=0, device=CPU)
    batches = list(_edge_batches("ffg2m", p, 50, torch.Generator().manual_seed(0)))
    assert len(batches) == math.ceil(p.obs_graph.edges_plus.shape[1] / 50)
    plus = torch.cat([b.nodes[b.edges_plus] for b in batches], 1)
    plain = torch.cat([b.nodes[b.edges] for b in batches], 1)
    as_set = lambda e: sorted(map(tuple, e.t().tolist()))  # noqa: E731
    assert as_set(plus) == as_set(p.obs_graph.edges_plus) and as_set(plain) == as_set(p.obs_graph.edges)
    for b in batches:
        assert torch.equal(b.nodes[b.train], p.train)  # the label loss sees every training node each step


def test_one_edge_batch_equals_full_batch():
    data = community_graph()
    base = dict(TINY, max_epochs=3, patience=3)
    full = FFG2M(G2MConfig(**base)).fit(data, seed=1)
    batched = FFG2M(G2MConfig(edge_batch_size=10**6, **base)).fit(data, seed=1)
    for key in full.tensors:
        torch.testing.assert_close(full[key], batched[key], rtol=1e-5, atol=1e-6)


def test_minibatched_training_runs_and_is_seeded():
    data = community_graph()
    cfg = G2MConfig(edge_batch_size=64, **TINY)
    a = FFG2M(cfg).fit(data, seed=2)
    b = FFG2M(cfg).fit(data, seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a.tensors)


# -- resume ---------------------------------------------------------------------------------------------------------
def test_rerun_in_the_same_folder_resumes_to_the_same_student(tmp_path):
    data = community_graph()
    cfg = G2MConfig(**dict(TINY, max_epochs=12, patience=12, checkpoint_every=5, mlp_dropout=0.3))
    first = FFG2M(cfg).fit(data, seed=4, run_dir=tmp_path)
    assert (tmp_path / "teacher" / "checkpoints").is_dir() and (tmp_path / "student-ffg2m" / "checkpoints").is_dir()
    second = FFG2M(cfg).fit(data, seed=4, run_dir=tmp_path)  # resumes from step 10 of each phase
    assert all(torch.equal(first[k], second[k]) for k in first.tensors)


# -- the Student artifact ---------------------------------------------------------------------------------------------
def test_student_artifact_round_trip_and_predict_from_features_only(tmp_path):
    data = community_graph()
    art = FFG2M(G2MConfig(feature_norm="row", **TINY)).fit(data, seed=0)
    assert art.meta["extra"]["feature_norm"] == "row"
    loaded = Student.load(art.save(tmp_path / "s.safetensors"))
    assert loaded == art
    x = data.x.abs()  # raw features; the artifact applies the stored row normalisation itself
    mlp = NodeMLP(6, 8, 2, num_layers=2)
    mlp.load_state_dict({k[len("model."):]: v for k, v in art.tensors.items()})
    expected = mlp.eval()(x / x.sum(1, keepdim=True))
    torch.testing.assert_close(loaded.logits(x), expected)
    assert torch.equal(loaded.predict(x), expected.argmax(1))
    with pytest.raises(ValueError, match="expects 6"):
        loaded.predict(torch.randn(3, 5))


def test_student_artifact_validation():
    w = {"model.layers.0.weight": torch.randn(4, 3), "model.layers.0.bias": torch.randn(4),
         "model.layers.1.weight": torch.randn(2, 5), "model.layers.1.bias": torch.randn(2)}
    with pytest.raises(ArtifactError, match="takes 5 inputs but layer 0 gives 4"):
        Student.create(w, method="ffg2m")
    with pytest.raises(ArtifactError, match="model.layers"):
        Student.create({"other": torch.zeros(1)}, method="ffg2m")
    ok = {k: v for k, v in w.items() if ".1." not in k}
    with pytest.raises(ArtifactError, match="feature_norm"):
        Student.create(ok, method="ffg2m", extra={"feature_norm": "zscore"})
    assert Student.create(ok, method="ffg2m").predict(torch.randn(5, 3)).shape == (5,)


# -- end to end on the built-in karate graph ---------------------------------------------------------------------------
KARATE = dict(TINY, split_train_per_class=4, split_val=10, split_test=10, max_epochs=10)


def test_run_compare_and_evaluate_agree_on_karate():
    art = condense.distill("ffg2m", "karate", seed=7, device="cpu", **KARATE)
    assert art.meta["source"]["name"] == "karate" and art.meta["extra"]["split"]["kind"] == "random"
    assert art.meta["extra"]["split"]["train"] == 8
    result = condense.evaluate(art, device="cpu")
    assert result["results"]["distilled"]["accuracy"]["mean"] == pytest.approx(
        art.meta["extra"]["student"]["test_acc"])
    assert result["compression"]["bytes"] > 1 and result["timing"]["speedup"] > 0 and "table" in result
    comp = g2m.compare("karate", runs=2, seed=7, device="cpu", **KARATE)
    res = comp.summary["results"]
    assert list(res) == ["teacher", "mlp", "glnn", "ffg2m"] and comp.summary["seeds"] == [7, 8]
    # the comparison's first-seed FF-G2M student is the student `run` trains with that seed
    assert all(torch.equal(comp.student[k], art[k]) for k in art.tensors)
    assert res["ffg2m"]["accuracy"]["runs"][0] == pytest.approx(art.meta["extra"]["student"]["test_acc"])
    for entry in res.values():
        assert len(entry["accuracy"]["runs"]) == 2 and entry["accuracy"]["std"] >= 0
        assert all(t >= 0 for t in entry["train_time_s"]["runs"])
    assert "ffg2m" in comp.table()


def test_a_student_of_a_user_graph_is_evaluated_on_that_graph():
    graph = community_graph()
    art = FFG2M(G2MConfig(**TINY)).fit(graph, seed=0)
    with pytest.raises(ValueError, match="your own graph.*data="):
        condense.evaluate(art)
    result = condense.evaluate(art, graph, device="cpu")
    assert result["results"]["distilled"]["accuracy"]["mean"] == pytest.approx(art.meta["extra"]["student"]["test_acc"])
    other = community_graph()
    other.x = other.x + 1
    with pytest.raises(ValueError, match="differs from the graph this student was trained on"):
        condense.evaluate(art, other)


def test_inference_benchmark_reports_both_models():
    data = g2m.synthetic_graph(300, 1500, 16, 3, seed=0)
    graph = prepare_graph(data.edge_index, 300)
    from condense.graph.teachers import TeacherConfig, build_teacher

    cfg = TeacherConfig(num_layers=2, hidden=32)
    r = g2m.inference_benchmark(NodeMLP(16, 32, 3, 2), build_teacher(cfg, 16, 3), data.x, graph.edges_plus,
                                repeats=2)
    assert r["num_nodes"] == 300 and r["speedup"] > 0
    for key in ("student", "teacher"):
        assert r[key]["nodes_per_s"] > 0 and r[key]["peak_rss_mb"] > 0
    with pytest.raises(ValueError, match="num_edges"):
        g2m.synthetic_graph(10, 0, 4, 2)

"""Suites as data: expansion order, keys, shards, preparation placeholders, the named suites, JSON suites."""
from __future__ import annotations

import json

import pytest

from condense.bench.suites import MIRAGE_THRESHOLDS, SUITES, Grid, Prepare, Suite, expand, get_suite, shard
from condense.graph.presets import MIRAGE_PRESETS
from condense.shard import Shard


def test_expand_is_the_ordered_product_of_the_axes():
    suite = Suite("s", "", (Grid("m", ("a", "b"), budgets=({"ipc": 1}, {"ipc": 10}), seeds=(0, 1),
                                 models=("x", "y"), config={"k": 1}),))
    cells = expand(suite)
    assert len(cells) == 2 * 2 * 2 * 2
    assert [c.index for c in cells] == list(range(16))
    first, last = cells[0], cells[-1]
    assert (first.dataset, first.budget, first.seed, first.model) == ("a", {"ipc": 1}, 0, "x")
    assert (last.dataset, last.budget, last.seed, last.model) == ("b", {"ipc": 10}, 1, "y")
    # the model axis is innermost
    assert [c.model for c in cells[:2]] == ["x", "y"]


def test_variants_merge_into_config_and_label_defaults_to_method():
    grid = Grid("FFG2M", ("cora",), config={"mode": "ffg2m", "teacher": "gcn"},
                variants=({"teacher": "sage"}, {"teacher": "gat"}))
    cells = expand(Suite("s", "", (grid,)))
    assert [c.config for c in cells] == [{"mode": "ffg2m", "teacher": "sage"}, {"mode": "ffg2m", "teacher": "gat"}]
    assert [c.variant for c in cells] == [{"teacher": "sage"}, {"teacher": "gat"}]
    assert {c.method for c in cells} == {"ffg2m"} and {c.label for c in cells} == {"ffg2m"}


def test_keys_depend_on_what_is_measured_only(tiny):
    a, b = expand(tiny(ipcs=(1,), seeds=(0, 1)))
    assert a.key("cpu") != b.key("cpu")  # seed
    assert a.key("cpu") != a.key("cuda")  # device type
    assert a.key("cpu") == a.key("cpu") and len(a.key("cpu")) == 16
    relabelled = expand(tiny(ipcs=(1,), seeds=(0,), name="other", label="shown", notes="n"))[0]
    assert relabelled.key("cpu") == a.key("cpu")  # suite name, label and notes do not count
    other_eval = expand(tiny(ipcs=(1,), seeds=(0,), runs=3))[0]
    assert other_eval.key("cpu") != a.key("cpu")
    assert other_eval.distill_key("cpu") == a.distill_key("cpu")  # same distillation, other evaluation


def test_cell_dict_round_trip():
    grid = Grid("mtt", ("digits",), config={"buffer": "{prep:buf}"},
                prepare=(Prepare("buf", ("buffer", "--dataset", "{dataset}", "--out", "{out}")),))
    cell = expand(Suite("s", "", (grid,)))[0]
    again = type(cell).from_dict(json.loads(json.dumps(cell.as_dict())))
    assert again == cell and again.key("cpu") == cell.key("cpu")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_suite(count, tiny):
    cells = expand(tiny(ipcs=(1, 2, 3), seeds=(0, 1), models=(None, "other")))
    parts = [shard(cells, Shard(i, count), "cpu") for i in range(1, count + 1)]
    keys = [c.key("cpu") for part in parts for c in part]
    assert sorted(keys) == sorted(c.key("cpu") for c in cells)  # every cell exactly once
    for part in parts:  # cells sharing a distillation stay together
        groups = {c.distill_key("cpu") for c in part}
        assert all(c.distill_key("cpu") in groups for c in cells if c.distill_key("cpu") in groups)
        assert sum(c.distill_key("cpu") in groups for c in cells) == len(part)
    assert shard(cells, Shard(1, count), "cpu") == shard(cells, Shard(1, count), "cpu")  # deterministic


def test_prepare_placeholders():
    step = Prepare("buf", ("buffer", "--dataset", "{dataset}", "--train-per-class", "{train_per_class}",
                           "--device", "{device}", "--seed", "{seed}", "--out", "{out}"))
    argv = step.resolve(dataset="digits", seed=3, device="cpu", train_per_class=20)
    assert argv == ("buffer", "--dataset", "digits", "--train-per-class", "20", "--device", "cpu", "--seed", "3",
                    "--out", "{out}")
    with pytest.raises(ValueError, match="train_per_class"):
        step.resolve(dataset="digits", seed=0, device="cpu", train_per_class=None)
    with pytest.raises(ValueError, match="unknown placeholder"):
        Prepare("x", ("buffer", "{datset}"))
    with pytest.raises(TypeError, match="argv"):
        Prepare("x", "buffer --out {out}")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"datasets": ()}, ValueError, "datasets must not be empty"),
    ({"datasets": "mnist"}, TypeError, "datasets must be a list"),
    ({"seeds": (-1,)}, ValueError, "seeds"),
    ({"runs": 0}, ValueError, "runs"),
    ({"budgets": ({"ipc": 1},), "config": {"ipc": 2}}, ValueError, "budget key"),
    ({"config": {"buffer": "{prep:buf}"}}, ValueError, "does not declare"),
    ({"prepare": (Prepare("a", ("x",)), Prepare("a", ("y",)))}, ValueError, "unique"),
])
def test_bad_grids(kwargs, error, match):
    base = {"method": "m", "datasets": ("d",)}
    with pytest.raises(error, match=match):
        Grid(**{**base, **kwargs})


def test_named_suites_cover_the_issue():
    assert {"smoke", "vision", "graph", "g2m", "paper"} <= set(SUITES)
    smoke = expand(SUITES["smoke"])
    assert {c.method for c in smoke} == {"datadam", "mtt", "mirage", "ffg2m"}
    assert all(c.runs <= 2 for c in smoke)  # tiny evaluation everywhere
    vision = expand(SUITES["vision"])
    assert {(c.label, c.dataset, c.budget["ipc"]) for c in vision} == {
        (m, d, k) for m in ("datadam", "mtt", "ast") for d in ("mnist", "cifar10-subset") for k in (1, 10, 50)}
    graph = expand(SUITES["graph"])
    assert {(c.dataset, c.budget["depth"]) for c in graph} == {
        (d, L) for d in ("MUTAG", "NCI1", "PTC_MR", "ENZYMES") for L in (2, 3)} | {("ENZYMES", 1)}
    assert all("support" in c.config for c in graph)  # thresholds always explicit
    # the first point of the published grid the reference trains on, and the method's own preset
    assert MIRAGE_THRESHOLDS[("NCI1", 2)] == {"support": [440, 570]}
    assert list(MIRAGE_PRESETS["mirage-nci1"]["support"]) == [440, 570]
    assert {c.model for c in graph} == {"gin", "gcn", "gat"}
    nci1_l2 = {json.dumps(c.config["support"]) for c in graph if (c.dataset, c.budget["depth"]) == ("NCI1", 2)}
    assert nci1_l2 == {"[440, 570]", "0.1"}  # the published point and the issue's --support 0.1
    g2m = expand(SUITES["g2m"])
    assert {c.config["teacher"] for c in g2m} == {"gcn", "sage", "gat"} and {c.dataset for c in g2m} == {"cora"}
    mtt = [c for c in smoke if c.method == "mtt"][0]
    assert mtt.prepare[0].name == "buffer" and mtt.config["buffer"] == "{prep:buffer}"


def test_suite_from_json_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"description": "d", "grids": [
        {"method": "fakecond", "datasets": ["toy"], "budgets": [{"ipc": 1}], "seeds": [0, 1],
         "prepare": [{"name": "p", "argv": ["datasets"]}]}]}))
    suite = get_suite(str(path))
    assert suite.name == "mine" and len(expand(suite)) == 2
    assert expand(suite)[0].prepare == (Prepare("p", ("datasets",)),)
    path.write_text(json.dumps({"grids": [{"method": "m", "datasets": ["d"], "bogus": 1}]}))
    with pytest.raises(ValueError, match="bogus"):
        get_suite(str(path))
    with pytest.raises(ValueError, match="unknown suite"):
        get_suite("no-such-suite")
    with pytest.raises(FileNotFoundError):
        get_suite(str(tmp_path / "missing.json"))

"""The free floors of graph classification: node count (by hand), majority, and the untrained GNN."""
from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Data

from condense.graph import classify
from condense.graph.classify import TrainConfig, train_run
from condense.graph.floors import majority_floor, node_count_floor, untrained_floor
from condense.graph.nets import PackedGraphs


def pack(sizes, labels) -> PackedGraphs:
    """Path graphs of the given node counts (one-hot constant features) with the given labels."""
    graphs = []
    for n, y in zip(sizes, labels):
        src = torch.arange(n - 1)
        edge_index = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], 1)
        graphs.append(Data(x=torch.ones(n, 1), edge_index=edge_index, y=torch.tensor([y])))
    return PackedGraphs.from_graphs(graphs)


def test_node_count_floor_by_hand():
    # training: the positive class (1) has the SMALLER graphs, so the score is -n
    train = pack([2, 3, 4, 5], [1, 1, 0, 0])
    test = pack([1, 6, 4, 3], [1, 0, 1, 0])
    out = node_count_floor(train, test, 2)
    assert out["signs"] == [1.0, -1.0]
    # scores -1, -6, -4, -3; positives {-1, -4} vs negatives {-6, -3}: 3 of the 4 pairs ordered -> AUC 0.75
    assert out["roc_auc"]["mean"] == pytest.approx(0.75)
    # nearest training class mean (class 0: 4.5, class 1: 2.5): 1->1 ok, 6->0 ok, 4->0 wrong, 3->1 wrong
    assert out["accuracy"]["mean"] == pytest.approx(0.5)
    # with larger graphs positive the sign flips and the AUC is the same ranking read the other way
    flipped = node_count_floor(pack([2, 3, 4, 5], [0, 0, 1, 1]), pack([1, 6, 4, 3], [0, 1, 0, 1]), 2)
    assert flipped["signs"] == [-1.0, 1.0] and flipped["roc_auc"]["mean"] == pytest.approx(0.75)


def test_node_count_floor_multiclass_one_vs_rest():
    train = pack([2, 2, 5, 5, 9, 9], [0, 0, 1, 1, 2, 2])
    test = pack([2, 5, 9], [0, 1, 2])
    out = node_count_floor(train, test, 3)
    # class 0 has the smallest graphs (sign -1), class 2 the largest (+1); class 1 (middle): the training AUC of +n
    # is (pairs 5>2: 4, 5<9: 0) / 8 = 0.5 -> sign +1
    assert out["signs"] == [-1.0, 1.0, 1.0]
    # test one-vs-rest: class 0: 1.0, class 1 (+n: 5 vs {2, 9}): 0.5, class 2: 1.0 -> macro mean 2.5 / 3
    assert out["roc_auc"]["mean"] == pytest.approx(2.5 / 3)
    assert out["accuracy"]["mean"] == pytest.approx(1.0)


def test_majority_floor():
    out = majority_floor(pack([2, 2, 2, 2], [0, 0, 0, 1]), pack([2, 2, 2, 2], [0, 1, 1, 1]), 2)
    assert out["predicted_class"] == 0
    assert out["accuracy"]["mean"] == pytest.approx(0.25) and out["roc_auc"]["mean"] == 0.5


class _Frozen(torch.optim.Adam):
    """An optimiser that never moves the weights."""

    def step(self, closure=None):
        return None


def test_untrained_floor_is_the_model_before_any_update(monkeypatch):
    torch.manual_seed(0)
    sizes = [int(s) for s in torch.randint(3, 12, (24,))]
    labels = [int(s > 7) for s in sizes]
    train, val, test = pack(sizes[:12], labels[:12]), pack(sizes[12:18], labels[12:18]), pack(sizes[18:], labels[18:])
    cfg = TrainConfig(model="gin", layers=2, hidden=8, epochs=2, dropout=0.0)
    floor = untrained_floor(train, test, cfg, num_classes=2, seeds=[3, 4])
    monkeypatch.setattr(classify.torch.optim, "Adam", _Frozen)  # a "trained" run that never updates
    for i, seed in enumerate([3, 4]):
        run = train_run(train, val, test, cfg, num_classes=2, seed=seed)
        assert floor["accuracy"]["runs"][i] == pytest.approx(run.test_accuracy)
        got, want = floor["roc_auc"]["runs"][i], run.test_roc_auc
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)

"""Splits, sampling, AUC, model selection and reporting of the graph-classification protocol."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from condense.graph.classify import RunResult, epoch_metrics, epoch_order, roc_auc, split_indices, summarise
from condense.runtime import generator


def test_roc_auc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (40,), generator=g).bool()
    scores = torch.randint(0, 5, (6, 40), generator=g).double() / 4  # many ties
    ours = roc_auc(scores, y)
    for r in range(6):
        assert math.isclose(float(ours[r]), roc_auc_score(y.numpy(), scores[r].numpy()), abs_tol=1e-12)


def test_roc_auc_is_nan_without_both_classes():
    out = roc_auc(torch.rand(2, 5, dtype=torch.float64), torch.zeros(5, dtype=torch.bool))
    assert bool(torch.isnan(out).all())


def test_multiclass_macro_auc_matches_sklearn_ovr():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(30) % 3
    probs = torch.softmax(torch.randn(4, 30, 3, generator=g), -1)
    m = epoch_metrics(probs, y)
    for e in range(4):
        ref = roc_auc_score(y.numpy(), probs[e].numpy(), multi_class="ovr", average="macro")
        assert math.isclose(float(m["roc_auc"][e]), ref, abs_tol=1e-9)
        assert math.isclose(float(m["accuracy"][e]), float((probs[e].argmax(1) == y).double().mean()), abs_tol=1e-12)


def test_80_10_10_split_is_the_seeded_permutation():
    y = np.arange(101) % 3
    train, val, test = split_indices(y, seed=0)
    torch.manual_seed(0)
    perm = torch.randperm(101).numpy()  # the DosCond / Mirage convention: shuffle under torch seed 0
    assert sorted(test) == sorted(perm[:11]) and sorted(val) == sorted(perm[11:22]) and len(train) == 79
    assert set(train) | set(val) | set(test) == set(range(101))


def test_kfold_split_is_stratified_and_disjoint():
    y = np.repeat([0, 1], [60, 40])
    folds = [split_indices(y, protocol="kfold", folds=5, fold=f, seed=0) for f in range(5)]
    tests = np.concatenate([f[2] for f in folds])
    assert sorted(tests) == list(range(100))
    for train, val, test in folds:
        assert not (set(train) & set(val)) and not (set(train) & set(test))
        assert (y[test] == 0).sum() == 12
    with pytest.raises(ValueError, match="protocol"):
        split_indices(y, protocol="holdout")


def test_each_once_is_a_permutation_and_support_sampling_follows_supports():
    gen = generator(0)
    order = epoch_order(6, "each_once", gen)
    assert sorted(order.tolist()) == list(range(6))
    support = torch.tensor([1.0, 2.0, 7.0])
    counts = torch.zeros(3)
    for _ in range(2000):
        counts += torch.bincount(epoch_order(3, "support", gen, support=support), minlength=3)
    assert torch.allclose(counts / counts.sum(), support / support.sum(), atol=0.01)
    classes = torch.tensor([0, 0, 1])
    counts.zero_()
    for _ in range(2000):
        counts += torch.bincount(epoch_order(3, "support_per_class", gen, support=support, classes=classes), minlength=3)
    assert torch.allclose(counts / counts.sum(), torch.tensor([1 / 6, 2 / 6, 1 / 2]), atol=0.01)
    a = [epoch_order(50, "each_once", generator(1)).tolist()]
    b = [epoch_order(50, "support", generator(1), support=torch.arange(1.0, 51.0)).tolist()]
    assert a != b and len(set(b[0])) < 50  # with replacement: repeats
    with pytest.raises(ValueError, match="needs supports"):
        epoch_order(3, "support", gen)


def _run(seed, val, acc):
    return RunResult(seed=seed, best_epoch=0, val=val, selection="roc_auc", test_accuracy=acc, test_roc_auc=acc,
                     val_accuracy=val, val_roc_auc=val, seconds=1.0)


def test_summary_uses_all_seeds_and_top5_only_when_asked():
    runs = [_run(s, val=s / 10, acc=s / 10) for s in range(10)]
    out = summarise(runs)
    assert out["accuracy"]["mean"] == pytest.approx(0.45)
    assert out["accuracy"]["std"] == pytest.approx(np.std([s / 10 for s in range(10)]))  # population std
    assert out["report"] == "all_seeds" and len(out["accuracy"]["runs"]) == 10
    top = summarise(runs, "top5_of_10_by_val")
    assert top["seeds"] == [9, 8, 7, 6, 5] and top["accuracy"]["mean"] == pytest.approx(0.7)
    assert "not the library convention" in top["report"]
    with pytest.raises(ValueError, match="report"):
        summarise(runs, "best")

"""Exact frequent-itemset mining against brute force, thresholds, per-class mining and guards."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from condense.graph.mining import (
    TooManyItemsets,
    Transactions,
    as_csr,
    filter_output,
    mine_classes,
    mine_frequent_itemsets,
    resolve_thresholds,
)


def brute_force(transactions, min_support, n_items):
    out = {}
    for r in range(1, n_items + 1):
        for combo in itertools.combinations(range(n_items), r):
            s = sum(1 for t in transactions if set(combo) <= set(t))
            if s >= min_support:
                out[combo] = s
    return out


@pytest.mark.parametrize("density", [0.15, 0.4, 0.7])
def test_miner_equals_brute_force_for_every_threshold(density):
    rng = np.random.default_rng(int(density * 100))
    tx = [set(np.flatnonzero(rng.random(8) < density).tolist()) for _ in range(28)]
    tx += [tx[0], set()]  # a duplicate and an empty transaction
    for theta in range(1, len(tx) + 1):
        sets, supps = mine_frequent_itemsets(tx, theta)
        assert dict(zip(sets, supps)) == brute_force(tx, theta, 8), f"theta={theta}"
        assert [(-s, i) for i, s in zip(sets, supps)] == sorted((-s, i) for i, s in zip(sets, supps))


def test_only_single_items_frequent():
    tx = [[0], [1], [2], [0, 1], [2, 3], [0], [1], [2]]
    sets, supps = mine_frequent_itemsets(tx, 3)
    assert dict(zip(sets, supps)) == {(0,): 3, (1,): 3, (2,): 3}  # no pair reaches 3
    assert mine_frequent_itemsets(tx, 4) == ([], [])


def test_csr_input_and_duplicate_items_within_a_transaction():
    ptr, items = np.array([0, 3, 4, 6]), np.array([2, 2, 0, 0, 0, 2])
    csr = as_csr(Transactions(ptr, items))
    assert csr.ptr.tolist() == [0, 2, 3, 5] and csr.items.tolist() == [0, 2, 0, 0, 2]
    sets, supps = mine_frequent_itemsets(Transactions(ptr, items), 2)
    assert dict(zip(sets, supps)) == {(0,): 3, (2,): 2, (0, 2): 2}


def test_guards():
    tx = [list(range(6))] * 4
    with pytest.raises(TooManyItemsets, match="max_itemsets=10.*raise the support threshold"):
        mine_frequent_itemsets(tx, 2, max_itemsets=10)
    sets, _ = mine_frequent_itemsets(tx, 2, max_size=2)
    assert len(sets) == 6 + 15 and max(map(len, sets)) == 2
    with pytest.raises(ValueError, match="min_support"):
        mine_frequent_itemsets(tx, 0)


def test_closed_and_maximal_outputs():
    tx = [[0, 1], [0, 1], [0, 1, 2], [0]]
    sets, supps = mine_frequent_itemsets(tx, 1)
    # supports: 0:4, 1:3, 2:1, 01:3, 02:1, 12:1, 012:1
    closed = dict(zip(*filter_output(sets, supps, "closed")))
    assert closed == {(0,): 4, (0, 1): 3, (0, 1, 2): 1}
    maximal = dict(zip(*filter_output(sets, supps, "maximal")))
    assert maximal == {(0, 1, 2): 1}


def test_fractional_thresholds_round_up_exactly():
    assert resolve_thresholds(0.1, [1650, 10, 11]) == [165, 1, 2]  # 0.1 * 1650 is 165.00000000000003 in floats
    assert resolve_thresholds((0.25, 3), [10, 10]) == [3, 3]
    assert resolve_thresholds(460.0, [1000]) == [460]
    assert resolve_thresholds(0.001, [10]) == [1]


@pytest.mark.parametrize("support, match", [
    (None, "support is required"),
    (0, "must be > 0"),
    (-0.5, "must be > 0"),
    (1.5, "a fraction must lie in \\(0, 1\\)"),
    ((10,), "1 thresholds for 2 classes"),
    ("x", "must be a number"),
])
def test_bad_thresholds_raise(support, match):
    with pytest.raises(ValueError, match=match):
        resolve_thresholds(support, [10, 10])


def three_class_toy():
    tx = [[0, 1], [0, 1, 2], [0, 3],          # class 0
          [1, 2], [1, 2, 4], [2, 4], [2],       # class 1
          [0, 1], [0, 1, 4], [5]]               # class 2
    return tx, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]


def test_per_class_mining_with_three_classes():
    tx, y = three_class_toy()
    out = mine_classes(tx, y, 3, (2, 2, 2))
    got = {(c, s): v for c, s, v in zip(out.classes, out.itemsets, out.supports)}
    assert got == {
        (0, (0,)): 3, (0, (1,)): 2, (0, (0, 1)): 2,
        (1, (2,)): 4, (1, (1,)): 2, (1, (4,)): 2, (1, (1, 2)): 2, (1, (2, 4)): 2,
        (2, (0,)): 2, (2, (1,)): 2, (2, (0, 1)): 2,
    }
    assert out.classes == sorted(out.classes) and out.class_sizes == [3, 4, 3] and out.thresholds == [2, 2, 2]
    arrays = out.arrays()
    assert arrays["itemset_ptr"][-1] == arrays["itemset_items"].size == sum(len(s) for s in out.itemsets)


def test_exclusive_filter_removes_exactly_the_shared_itemsets():
    tx, y = three_class_toy()
    shared = {(0,), (1,), (0, 1)}  # frequent in class 0 and class 2; (1,) also in class 1
    full = mine_classes(tx, y, 3, 2, allow_missing_classes=True)
    with pytest.warns(UserWarning, match="after the class-exclusive filter"):  # classes 0 and 2 lose everything
        excl = mine_classes(tx, y, 3, 2, exclusive=True, allow_missing_classes=True)
    full_set = set(zip(full.classes, full.itemsets))
    excl_set = set(zip(excl.classes, excl.itemsets))
    assert excl_set == {(c, s) for c, s in full_set if s not in shared}
    assert excl_set == {(1, (2,)), (1, (4,)), (1, (1, 2)), (1, (2, 4))}


def test_empty_class_raises_or_warns():
    tx, y = three_class_toy()
    with pytest.raises(ValueError, match="class 3 has no training graphs"):
        mine_classes(tx, y, 4, 2)
    with pytest.raises(ValueError, match=r"class 2 has no itemset with support >= θ=3"):
        mine_classes(tx, y, 3, (2, 2, 3))
    with pytest.warns(UserWarning, match="class 2 .* can never predict it"):
        out = mine_classes(tx, y, 3, (2, 2, 3), allow_missing_classes=True)
    assert out.count(2) == 0 and out.count(1) > 0


def test_budget_mode_picks_the_largest_threshold_with_k_itemsets():
    rng = np.random.default_rng(3)
    tx = [set(np.flatnonzero(rng.random(7) < 0.5).tolist()) for _ in range(40)]
    y = [0] * 20 + [1] * 20
    out = mine_classes(tx, y, 2, target_itemsets_per_class=5)
    for c in range(2):
        sub = [t for t, label in zip(tx, y) if label == c]
        theta = out.thresholds[c]
        assert len(brute_force(sub, theta, 7)) >= 5 > len(brute_force(sub, theta + 1, 7))
        assert out.count(c) == len(brute_force(sub, theta, 7))

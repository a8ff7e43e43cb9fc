"""Exact frequent-itemset mining, per class (the mining step of Mirage, Gupta et al., ICLR 2024, §3.2).

Each transaction is a set of items (for Mirage: the tree ids of one training graph). For a class c with
transactions :math:`T_c` the support of an itemset I is

.. math::
    \\mathrm{supp}_c(I) = |\\{ g \\in T_c : I \\subseteq \\mathrm{items}(g) \\}|,

and the miner returns **every** itemset (singletons included) with :math:`\\mathrm{supp}_c(I) \\ge \\theta_c`,
where :math:`\\theta_c` is a count (an integer >= 1) or a fraction f in (0, 1) of the class,
:math:`\\theta_c = \\lceil f \\cdot |T_c| \\rceil` (rounded with exact rational arithmetic).

The algorithm is Eclat (Zaki, 2000) on tid bitsets: items below the threshold are pruned, every frequent
item gets a bitset over the class's transactions, and a depth-first search extends each prefix by all its
frequent extensions at once (one vectorised AND + popcount over the candidate bitsets per prefix). It is
exact: the tests compare it with brute-force enumeration. (The reference's pyfpgrowth has open bugs that
lose frequent patterns, mostly single items.) Classes are mined independently, for any number of classes;
the optional class-exclusive filter drops an itemset from class c when it is also frequent in another class.
Outputs are deterministic: itemsets are sorted tuples of item ids, ordered by (class, -support, itemset).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, NamedTuple, Sequence

import numpy as np

OUTPUTS = ("all", "closed", "maximal")


# -- thresholds ---------------------------------------------------------------------------------------
def resolve_thresholds(support, class_sizes: Sequence[int], *, argument: str = "support") -> list[int]:
    """Per-class count thresholds from ``support``: one value for every class, or one value per class.

    A value in (0, 1) is a fraction f of the class (θ = ⌈f·|T_c|⌉, at least 1); an integral value >= 1 is a
    count. Anything else (zero, negative, a non-integral value above 1, a missing class) raises.
    """
    K = len(class_sizes)
    if support is None:
        raise ValueError(
            f"{argument} is required: give a per-class support threshold (a count >= 1 or a fraction in (0, 1)); "
            "thresholds are only published for some datasets and are never guessed"
        )
    values = list(support) if isinstance(support, (list, tuple)) else [support] * K
    if len(values) != K:
        raise ValueError(f"{argument} has {len(values)} thresholds for {K} classes: give one per class or a single value")
    out = []
    for c, (value, n) in enumerate(zip(values, class_sizes)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{argument} for class {c} must be a number, got {value!r}")
        if value <= 0:
            raise ValueError(f"{argument} for class {c} must be > 0 (a count >= 1 or a fraction in (0, 1)), got {value!r}")
        if value < 1:
            out.append(max(1, math.ceil(Fraction(repr(float(value))) * int(n))))
        elif float(value).is_integer():
            out.append(int(value))
        else:
            raise ValueError(
                f"{argument} for class {c} is {value!r}: a fraction must lie in (0, 1) and a count must be an integer"
            )
    return out


# -- the miner ------------------------------------------------------------------------------------------
class Transactions(NamedTuple):
    """Transactions in CSR form: transaction t holds ``items[ptr[t]:ptr[t+1]]``."""

    ptr: np.ndarray
    items: np.ndarray


def as_csr(transactions) -> Transactions:
    """:class:`Transactions` (int64, items sorted and unique within each transaction) from a
    :class:`Transactions` or a sequence of item iterables."""
    if isinstance(transactions, Transactions):
        ptr, items = (np.asarray(a, dtype=np.int64).reshape(-1) for a in transactions)
        if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != items.size or np.any(np.diff(ptr) < 0):
            raise ValueError("Transactions need ptr[0] == 0, non-decreasing ptr and ptr[-1] == len(items)")
    else:
        lists = [list(t) for t in transactions]
        ptr = np.zeros(len(lists) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(t) for t in lists])
        items = np.fromiter((int(i) for t in lists for i in t), dtype=np.int64, count=int(ptr[-1]))
    if items.size and items.min() < 0:
        raise ValueError("items must be non-negative integers")
    n = ptr.size - 1
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(ptr))
    width = int(items.max()) + 1 if items.size else 1
    key = np.unique(owner * width + items)  # a transaction is a set: sort and dedupe its items
    owner, items = key // width, key % width
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=ptr[1:])
    return Transactions(ptr, items)


class TooManyItemsets(ValueError):
    """Mining produced more itemsets than ``max_itemsets`` allows."""


def mine_frequent_itemsets(
    transactions,
    min_support: int,
    *,
    max_size: int | None = None,
    max_itemsets: int | None = None,
    limit: int | None = None,
) -> tuple[list[tuple[int, ...]], list[int]]:
    """All itemsets with support >= ``min_support`` (a count >= 1): ``(itemsets, supports)``.

    Itemsets are sorted tuples, ordered by (-support, itemset). ``max_size`` caps the itemset size;
    more than ``max_itemsets`` results raise :class:`TooManyItemsets`; ``limit`` stops quietly after that many
    (used to count cheaply). Exact: Eclat on tid bitsets (see the module docstring).
    """
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or min_support < 1:
        raise ValueError(f"min_support must be an integer count >= 1, got {min_support!r}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be >= 1 or None, got {max_size!r}")
    ptr, items = as_csr(transactions)
    n = ptr.size - 1
    found_sets: list[tuple[int, ...]] = []
    found_supp: list[int] = []
    if n == 0 or items.size == 0:
        return found_sets, found_supp
    counts = np.bincount(items)
    frequent = np.flatnonzero(counts >= min_support)
    if frequent.size == 0:
        return found_sets, found_supp
    # tid bitsets of the frequent items: bits[i, w] holds transactions 64w..64w+63 of item frequent[i]
    owner = np.repeat(np.arange(n), np.diff(ptr))
    keep = counts[items] >= min_support
    local = np.searchsorted(frequent, items[keep])
    dense = np.zeros((frequent.size, ((n + 63) // 64) * 64), dtype=bool)
    dense[local, owner[keep]] = True
    bits = np.packbits(dense, axis=1, bitorder="little").view(np.uint64)
    cap = max_size if max_size is not None else frequent.size

    def emit(itemset: tuple[int, ...], supp: int) -> bool:
        found_sets.append(itemset)
        found_supp.append(supp)
        if max_itemsets is not None and len(found_sets) > max_itemsets:
            raise TooManyItemsets(
                f"more than max_itemsets={max_itemsets} frequent itemsets at min_support={min_support}; "
                "raise the support threshold (or max_itemsets, or set max_itemset_size)"
            )
        return limit is not None and len(found_sets) >= limit

    # depth-first; a frame is [prefix, extension items, their bitsets, their supports, next position]
    stack = [[(), frequent, bits, counts[frequent], 0]]
    while stack:
        frame = stack[-1]
        prefix, ext_items, ext_bits, ext_supp, i = frame
        if i >= ext_items.size:
            stack.pop()
            continue
        frame[4] = i + 1
        itemset = prefix + (int(ext_items[i]),)
        if emit(itemset, int(ext_supp[i])):
            break
        if len(itemset) >= cap or i + 1 >= ext_items.size:
            continue
        inter = ext_bits[i + 1:] & ext_bits[i]
        supp = np.bitwise_count(inter).sum(axis=1, dtype=np.int64)
        ok = supp >= min_support
        if ok.any():
            stack.append([itemset, ext_items[i + 1:][ok], inter[ok], supp[ok], 0])
    return _ordered(found_sets, found_supp)


def _ordered(sets: list[tuple[int, ...]], supps: list[int]) -> tuple[list[tuple[int, ...]], list[int]]:
    order = sorted(range(len(sets)), key=lambda k: (-supps[k], sets[k]))
    return [sets[k] for k in order], [supps[k] for k in order]


def filter_output(itemsets: list[tuple[int, ...]], supports: list[int], output: str) -> tuple[list, list]:
    """Keep all itemsets, only the closed ones (no superset with equal support) or only the maximal ones (no
    frequent superset). Checking immediate supersets suffices, as support is anti-monotone."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if output == "all":
        return itemsets, supports
    supp = dict(zip(itemsets, supports))
    dominated = set()
    for s, v in supp.items():
        for k in range(len(s)):
            sub = s[:k] + s[k + 1:]
            if sub in supp and (output == "maximal" or supp[sub] == v):
                dominated.add(sub)
    kept = [k for k, s in enumerate(itemsets) if s not in dominated]
    return [itemsets[k] for k in kept], [supports[k] for k in kept]


# -- per class -----------------------------------------------------------------------------------------
@dataclass
class ClassItemsets:
    """Mining output over all classes, ordered by (class, -support, itemset)."""

    itemsets: list[tuple[int, ...]]
    supports: list[int]
    classes: list[int]
    thresholds: list[int]
    class_sizes: list[int]

    def count(self, c: int) -> int:
        return sum(1 for k in self.classes if k == c)

    def arrays(self) -> dict[str, np.ndarray]:
        """``itemset_ptr`` [I+1], ``itemset_items``, ``itemset_class`` [I], ``itemset_support`` [I] (int64)."""
        ptr = np.zeros(len(self.itemsets) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(s) for s in self.itemsets])
        items = np.fromiter((i for s in self.itemsets for i in s), dtype=np.int64, count=int(ptr[-1]))
        return {
            "itemset_ptr": ptr,
            "itemset_items": items,
            "itemset_class": np.asarray(self.classes, dtype=np.int64),
            "itemset_support": np.asarray(self.supports, dtype=np.int64),
        }


def _budget_threshold(transactions, size: int, k: int, max_size: int | None) -> int:
    """The largest θ in [1, size] with at least k itemsets (bisection; counts stop early at k)."""
    lo, hi = 1, max(size, 1)
    if len(mine_frequent_itemsets(transactions, lo, max_size=max_size, limit=k)[0]) < k:
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(mine_frequent_itemsets(transactions, mid, max_size=max_size, limit=k)[0]) >= k:
            lo = mid
        else:
            hi = mid - 1
    return lo


def mine_classes(
    transactions,
    labels: Iterable[int],
    num_classes: int,
    support=None,
    *,
    exclusive: bool = False,
    max_itemset_size: int | None = None,
    max_itemsets: int | None = None,
    output: str = "all",
    target_itemsets_per_class: int | None = None,
    allow_missing_classes: bool = False,
) -> ClassItemsets:
    """Mine every class independently: class c uses the transactions with label c and threshold θ_c.

    ``support`` is resolved by :func:`resolve_thresholds`; alternatively ``target_itemsets_per_class=k``
    picks, per class, the largest θ_c giving at least k itemsets. ``exclusive`` drops itemsets that are also
    frequent in another class. A class with no transactions, or no itemset reaching θ_c, raises (naming the
    class and θ_c) unless ``allow_missing_classes``, which only warns: a model trained on the result can never
    predict that class.
    """
    ptr, items = as_csr(transactions)
    labels = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels, dtype=np.int64).reshape(-1)
    if labels.size != ptr.size - 1:
        raise ValueError(f"{labels.size} labels for {ptr.size - 1} transactions")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]")
    sizes = np.bincount(labels, minlength=num_classes).tolist()
    per_class_tx = []
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        starts, lens = ptr[rows], ptr[rows + 1] - ptr[rows]
        sub_ptr = np.zeros(rows.size + 1, dtype=np.int64)
        sub_ptr[1:] = np.cumsum(lens)
        idx = (np.repeat(starts - sub_ptr[:-1], lens) + np.arange(sub_ptr[-1])) if rows.size else np.zeros(0, np.int64)
        per_class_tx.append(Transactions(sub_ptr, items[idx]))
    if target_itemsets_per_class is not None:
        if target_itemsets_per_class < 1:
            raise ValueError(f"target_itemsets_per_class must be >= 1, got {target_itemsets_per_class}")
        thresholds = [_budget_threshold(per_class_tx[c], sizes[c], target_itemsets_per_class, max_itemset_size)
                      for c in range(num_classes)]
    else:
        thresholds = resolve_thresholds(support, sizes)
    mined = []
    for c in range(num_classes):
        if sizes[c] == 0:
            mined.append(([], []))
            continue
        sets, supps = mine_frequent_itemsets(per_class_tx[c], thresholds[c], max_size=max_itemset_size, max_itemsets=max_itemsets)
        mined.append(filter_output(sets, supps, output))
    if exclusive:
        frequent_in = [set(sets) for sets, _ in mined]
        for c in range(num_classes):
            others = set().union(*(frequent_in[o] for o in range(num_classes) if o != c))
            sets, supps = mined[c]
            keep = [k for k, s in enumerate(sets) if s not in others]
            mined[c] = ([sets[k] for k in keep], [supps[k] for k in keep])
    for c in range(num_classes):
        if not mined[c][0]:
            why = "has no training graphs" if sizes[c] == 0 else f"has no itemset with support >= θ={thresholds[c]}"
            msg = (f"class {c} {why} (of {sizes[c]} graphs{', after the class-exclusive filter' if exclusive else ''}); "
                   "lower its support threshold")
            if not allow_missing_classes:
                raise ValueError(msg + ", or pass allow_missing_classes=True")
            warnings.warn(msg + "; a model trained on this set can never predict it", stacklevel=2)
    out = ClassItemsets([], [], [], thresholds, sizes)
    for c, (sets, supps) in enumerate(mined):
        out.itemsets += sets
        out.supports += supps
        out.classes += [c] * len(sets)
    return out

"""Baselines that give every distilled graph set its context: real training graphs chosen per class.

* **random** — a seeded random order of each class's graphs;
* **herding** (Welling, ICML 2009) on graph embeddings — per class, greedily add the graph that keeps the
  running mean of the chosen embeddings closest to the class mean:

  .. math::
      i_t = \\arg\\min_{i \\notin S} \\Big\\| \\mu_c - \\frac{1}{t}\\Big(\\sum_{j \\in S} e_j + e_i\\Big) \\Big\\|_2 ;

* **full** — the whole training split.

An order is cut at a fixed number of graphs per class (:func:`take_per_class`), or at a byte budget
(:func:`take_by_bytes`: classes take their next graph in turn while it fits, so the selection costs at most
the budget under the ``storage`` convention of :mod:`condense.graph.accounting`, and every class keeps at least one
graph).
"""
from __future__ import annotations

import torch

from condense.graph.accounting import per_graph_storage_bytes

#: The bytes of a graph subset beyond its graphs' own bytes: the first graph_ptr entry (int64).
SUBSET_OVERHEAD_BYTES = 8


def random_order(labels: torch.Tensor, num_classes: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Per class, that class's graph indices in a seeded random order."""
    out = []
    for c in range(num_classes):
        idx = (labels == c).nonzero().squeeze(1)
        out.append(idx[torch.randperm(idx.numel(), generator=gen, device=gen.device).to(idx.device)])
    return out


def herding_order(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, limit: int) -> list[torch.Tensor]:
    """Per class, the first ``limit`` graphs chosen by herding on ``embeddings`` [G, D] (see the module docstring)."""
    out = []
    for c in range(num_classes):
        idx = (labels == c).nonzero().squeeze(1)
        emb = embeddings[idx].double()
        mu = emb.mean(0)
        chosen = torch.zeros(idx.numel(), dtype=torch.bool, device=emb.device)
        total = torch.zeros_like(mu)
        picks = []
        for t in range(1, min(limit, idx.numel()) + 1):
            dist = ((mu - (total + emb) / t) ** 2).sum(1).masked_fill(chosen, float("inf"))
            i = int(dist.argmin())
            picks.append(i)
            chosen[i] = True
            total += emb[i]
        out.append(idx[torch.tensor(picks, dtype=torch.long, device=idx.device)])
    return out


def take_per_class(orders: list[torch.Tensor], k: int) -> torch.Tensor:
    """The first ``k`` graphs of every class's order (all of a class's graphs if it has fewer)."""
    if k < 1:
        raise ValueError(f"graphs per class must be >= 1, got {k}")
    return torch.sort(torch.cat([o[:k] for o in orders])).values


def take_by_bytes(orders: list[torch.Tensor], graph_bytes: torch.Tensor, budget: int) -> torch.Tensor:
    """Round-robin over classes, each taking its next graph while the total stays within ``budget`` bytes; a
    class stops at its first graph that does not fit. Every class keeps at least its first graph, even past
    the budget (the caller reports the bytes actually used)."""
    taken = [1 if o.numel() else 0 for o in orders]
    used = SUBSET_OVERHEAD_BYTES + sum(int(graph_bytes[o[0]]) for o in orders if o.numel())
    open_ = [o.numel() > 1 for o in orders]
    while any(open_):
        for c, o in enumerate(orders):
            if not open_[c]:
                continue
            cost = int(graph_bytes[o[taken[c]]])
            if used + cost > budget:
                open_[c] = False
                continue
            used += cost
            taken[c] += 1
            open_[c] = taken[c] < o.numel()
    return torch.sort(torch.cat([o[:t] for o, t in zip(orders, taken)])).values


def baseline_selections(train, num_classes: int, *, budget_bytes: int, per_class: int, seed: int,
                        embeddings: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Training-graph indices of every baseline for one seed: ``random_bytes``, ``random_per_class`` and, when
    ``embeddings`` are given, ``herding_bytes`` and ``herding_per_class``."""
    from condense.runtime import generator

    graph_bytes = per_graph_storage_bytes(train)
    rand = random_order(train.y, num_classes, generator(seed, "cpu"))
    rand = [o.to(train.y.device) for o in rand]
    out = {"random_bytes": take_by_bytes(rand, graph_bytes, budget_bytes), "random_per_class": take_per_class(rand, per_class)}
    if embeddings is not None:
        need = max(per_class, int(budget_bytes // max(int(graph_bytes.min()), 1)) + 1)
        herd = herding_order(embeddings, train.y, num_classes, need)
        out["herding_bytes"] = take_by_bytes(herd, graph_bytes, budget_bytes)
        out["herding_per_class"] = take_per_class(herd, per_class)
    return out

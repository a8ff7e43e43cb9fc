"""Floors for graph classification: scores that cost nothing, which any condensed set must beat.

* ``node_count``: the number of nodes as the only feature. For each class c the score of a test graph g is
  :math:`\\pm n(g)`, the sign chosen on the training split so that the training one-vs-rest ROC-AUC of class c is
  at least 0.5 (on some datasets the positive class has the *smaller* graphs), so the floor is never below chance
  by construction. Binary tasks report the AUC of class 1; multi-class tasks the macro one-vs-rest AUC, as the
  trained models do (:func:`condense.graph.classify.epoch_metrics`). Its accuracy predicts the class whose
  training graphs' mean node count is nearest (ties to the lower class).
* ``untrained``: the evaluation GNN at its initialisation, never updated, scored on the test split: one model
  per seed, as the trained runs use.
* ``majority``: always the largest training class (ties to the lower class); its ROC-AUC is 0.5 (a constant
  score ranks nothing).

Each returns the ``{"accuracy", "roc_auc", ...}`` form of :func:`condense.graph.classify.summarise`; the two
deterministic floors hold one "run".
"""
from __future__ import annotations

from typing import Any

import torch

from condense.graph.classify import TrainConfig, epoch_metrics, roc_auc
from condense.graph.nets import GraphClassifier, PackedGraphs
from condense.registry import run_stats
from condense.runtime import seed_everything

FLOORS = ("node_count", "untrained", "majority")


def _result(accuracy: list[float], auc: list[float], **extra: Any) -> dict[str, Any]:
    return {"accuracy": run_stats(accuracy), "roc_auc": run_stats(auc), "train_seconds": 0.0, **extra}


def node_count_floor(train: PackedGraphs, test: PackedGraphs, num_classes: int) -> dict[str, Any]:
    """The node-count floor of the module docstring, with the sign chosen per class (``signs``)."""
    n_train = train.node_counts.double()
    n_test = test.node_counts.double()
    signs = []
    for c in range(num_classes):
        positive = train.y == c
        auc = roc_auc(n_train.unsqueeze(0), positive)[0]
        signs.append(1.0 if bool(torch.isnan(auc)) or float(auc) >= 0.5 else -1.0)
    if num_classes == 2:
        test_auc = float(roc_auc((signs[1] * n_test).unsqueeze(0), test.y == 1)[0])
    else:
        per_class = torch.stack([roc_auc((signs[c] * n_test).unsqueeze(0), test.y == c)[0]
                                 for c in range(num_classes)])
        defined = ~torch.isnan(per_class)
        test_auc = float(per_class[defined].mean()) if int(defined.sum()) >= 2 else float("nan")
    means = torch.stack([n_train[train.y == c].mean() if bool((train.y == c).any()) else torch.tensor(float("inf"),
                         dtype=torch.float64) for c in range(num_classes)])
    predicted = (n_test.unsqueeze(1) - means.unsqueeze(0)).abs().argmin(1)
    accuracy = float((predicted == test.y).double().mean())
    return _result([accuracy], [test_auc], signs=signs)


def majority_floor(train: PackedGraphs, test: PackedGraphs, num_classes: int) -> dict[str, Any]:
    """The majority floor: accuracy of the largest training class, ROC-AUC 0.5."""
    largest = int(torch.bincount(train.y, minlength=num_classes).argmax())
    return _result([float((test.y == largest).double().mean())], [0.5], predicted_class=largest)


@torch.no_grad()
def untrained_floor(train: PackedGraphs, test: PackedGraphs, cfg: TrainConfig, *, num_classes: int,
                    seeds: list[int]) -> dict[str, Any]:
    """The untrained floor: for each seed, the GNN ``cfg`` builds for ``train``'s features (initialised exactly as
    a trained run with that seed starts), scored on ``test`` without any update."""
    accuracy, auc = [], []
    edge_dim = None if train.edge_attr is None or train.edge_attr.shape[-1] == 0 else train.edge_attr.shape[-1]
    for seed in seeds:
        seed_everything(seed)  # as a trained run with this seed starts: the same initial weights
        model = GraphClassifier(train.x.shape[1], num_classes, cfg, edge_dim=edge_dim).to(
            device=train.x.device, dtype=train.x.dtype).eval()
        probs = torch.softmax(model(test), dim=-1)
        m = epoch_metrics(probs.unsqueeze(0), test.y)
        accuracy.append(float(m["accuracy"][0]))
        auc.append(float(m["roc_auc"][0]))
    return _result(accuracy, auc, seeds=list(seeds))

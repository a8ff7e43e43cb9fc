"""Graph-classification training and evaluation protocol (docs/protocols.md): splits, per-epoch sampling,
training with test-at-best-validation, ROC-AUC and accuracy, and mean ± std reporting over seeds.

* **Splits.** ``split``: one 80/10/10 split, a permutation drawn with ``torch.Generator`` seeded ``seed``,
  test = the first ⌈n/10⌉, validation = the next ⌈n/10⌉, train = the rest (not stratified; the
  DosCond/GC-Bench/Mirage-NCI1 convention). ``kfold``: stratified k-fold (Errica et al., ICLR 2020) with a
  stratified 10 % validation hold-out inside the training folds.
* **Training.** Adam on cross-entropy; every epoch the validation set is scored, and a run reports test
  accuracy / ROC-AUC at the epoch with the best validation metric (ROC-AUC for binary tasks, accuracy for
  multi-class, by default; ties go to the later epoch). Nothing is ever selected by test metrics.
* **Sampling** of the training graphs per epoch: ``each_once`` (a shuffled pass), ``support`` (|D| draws with
  replacement, P(I) = supp(I)/Σ supp) or ``support_per_class`` (P ∝ supp within a class, classes equally likely).
* **Metrics.** Binary ROC-AUC scores softmax P(class 1); multi-class reports macro one-vs-rest AUC. AUC is the
  Mann-Whitney statistic with tied scores counted one half, vectorised over epochs. A split lacking a class
  gives NaN (binary) with a warning, never a crash.
* **Further metrics.** An :class:`ExtraMetric` (e.g. OGB's Evaluator) scores each run's test predictions at the
  best-validation epoch too, reported under its own name beside accuracy and ROC-AUC.
* **Reporting.** Mean ± population std (ddof = 0) over **all** runs. The Mirage reference's top 5 of 10 runs
  ranked by validation is reachable only as ``report="top5_of_10_by_val"`` and is labelled as such.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch

from condense.config import require
from condense.graph.nets import GNNConfig, GraphClassifier, PackedGraphs
from condense.progress import Progress
from condense.registry import run_stats
from condense.runtime import flush_denormals, generator, seed_everything

SAMPLING = ("each_once", "support", "support_per_class")
REPORTS = ("all_seeds", "top5_of_10_by_val")
TOP_K_REFERENCE = 5
VAL_FRACTION_KFOLD = 0.1


@dataclass
class TrainConfig(GNNConfig):
    """A GNN architecture plus how to train and report it (defaults: library choices where nothing is
    published; dataset presets carry the published settings)."""

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 5e-4
    sampling: Literal["each_once", "support", "support_per_class"] = "each_once"
    selection: Literal["auto", "roc_auc", "accuracy"] = "auto"
    runs: int = 10
    report: Literal["all_seeds", "top5_of_10_by_val"] = "all_seeds"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", f"must be an integer >= 1, got {self.epochs!r}")
        require(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size!r}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr!r}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay!r}")
        require(self.sampling in SAMPLING, "sampling", f"must be one of {SAMPLING}, got {self.sampling!r}")
        require(isinstance(self.runs, int) and self.runs >= 1, "runs", f"must be an integer >= 1, got {self.runs!r}")
        require(self.report in REPORTS, "report", f"must be one of {REPORTS}, got {self.report!r}")


# -- splits ----------------------------------------------------------------------------------------------
def split_indices(labels, *, protocol: str = "split", seed: int = 0, folds: int = 10, fold: int = 0):
    """``(train, val, test)`` index arrays (sorted) for ``protocol`` ``split`` (80/10/10) or ``kfold``."""
    y = np.asarray(labels).reshape(-1)
    n = y.size
    if protocol == "split":
        perm = torch.randperm(n, generator=generator(seed)).numpy()
        k = math.ceil(n / 10)
        test, val, train = perm[:k], perm[k:2 * k], perm[2 * k:]
    elif protocol == "kfold":
        from sklearn.model_selection import StratifiedKFold, train_test_split

        if not (isinstance(folds, int) and folds >= 2 and 0 <= fold < folds):
            raise ValueError(f"kfold needs folds >= 2 and 0 <= fold < folds, got folds={folds!r}, fold={fold!r}")
        rest, test = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), y))[fold]
        train, val = train_test_split(rest, test_size=VAL_FRACTION_KFOLD, stratify=y[rest], random_state=seed)
    else:
        raise ValueError(f"protocol must be 'split' or 'kfold', got {protocol!r}")
    return np.sort(train), np.sort(val), np.sort(test)


# -- sampling --------------------------------------------------------------------------------------------
def epoch_order(n: int, mode: str, gen: torch.Generator, *, support: torch.Tensor | None = None,
                classes: torch.Tensor | None = None) -> torch.Tensor:
    """The training items of one epoch, in order (see the module docstring for the three modes)."""
    device = gen.device
    if mode == "each_once":
        return torch.randperm(n, generator=gen, device=device)
    if mode not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, got {mode!r}")
    if support is None:
        raise ValueError(f"sampling={mode!r} needs supports (a Mirage tree set); real graph sets use 'each_once'")
    p = support.double().to(device)
    if mode == "support_per_class":
        cls = classes.to(device)
        per_class = torch.zeros(int(cls.max()) + 1, dtype=torch.float64, device=device).index_add_(0, cls, p)
        present = (per_class > 0).sum()
        p = p / per_class[cls] / present
    return torch.multinomial(p / p.sum(), n, replacement=True, generator=gen)


# -- metrics ---------------------------------------------------------------------------------------------
def roc_auc(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """ROC-AUC of each row of ``scores`` [R, n] against boolean labels ``positive`` [n] or [R, n].

    Mann-Whitney: (sum of the positives' ranks - n₊(n₊+1)/2) / (n₊ n₋), tied scores getting their average rank.
    Rows without both classes give NaN.
    """
    scores = scores.reshape(-1, scores.shape[-1]).double()
    R, n = scores.shape
    positive = positive.expand(R, n) if positive.dim() == 1 else positive
    sorted_s, order = scores.sort(dim=1)
    new = torch.ones_like(sorted_s, dtype=torch.bool)
    new[:, 1:] = sorted_s[:, 1:] != sorted_s[:, :-1]
    group = (torch.cumsum(new, 1) - 1 + torch.arange(R, device=scores.device).unsqueeze(1) * n).reshape(-1)
    pos = torch.arange(1, n + 1, device=scores.device, dtype=torch.float64).repeat(R)
    first = torch.full((R * n,), float("inf"), dtype=torch.float64, device=scores.device).scatter_reduce(0, group, pos, "amin")
    last = torch.zeros(R * n, dtype=torch.float64, device=scores.device).scatter_reduce(0, group, pos, "amax")
    ranks = torch.empty_like(sorted_s).scatter_(1, order, ((first + last) / 2)[group].reshape(R, n))
    pos_mask = positive.double()
    n_pos = pos_mask.sum(1)
    n_neg = n - n_pos
    auc = ((ranks * pos_mask).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.full_like(auc, float("nan")))


def epoch_metrics(probs: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy and ROC-AUC per epoch from softmax outputs ``probs`` [E, n, K]: binary AUC of P(class 1), or
    macro one-vs-rest AUC over the classes that occur with both labels (NaN with fewer than two such classes).
    Runs on the outputs' device without host syncs."""
    E, n, K = probs.shape
    acc = (probs.argmax(-1) == y).double().mean(1)
    if K == 2:
        return {"accuracy": acc, "roc_auc": roc_auc(probs[..., 1], y == 1)}
    onehot = torch.nn.functional.one_hot(y, K).bool().t()  # [K, n]
    per_class = roc_auc(probs.permute(0, 2, 1).reshape(E * K, n), onehot.repeat(E, 1)).reshape(E, K)
    defined = (~torch.isnan(per_class)).sum(1)
    auc = torch.where(defined >= 2, torch.nanmean(per_class, 1), torch.full_like(per_class[:, 0], float("nan")))
    return {"accuracy": acc, "roc_auc": auc}


def selection_metric(cfg: "TrainConfig", num_classes: int, val_labels: torch.Tensor) -> str:
    """The validation metric that picks the epoch: ``cfg.selection``, where ``auto`` is ROC-AUC for binary tasks
    and accuracy otherwise; accuracy (with a warning) when the validation split cannot define an AUC."""
    selection = cfg.selection if cfg.selection != "auto" else ("roc_auc" if num_classes == 2 else "accuracy")
    if selection == "roc_auc" and int(torch.unique(val_labels).numel()) < 2:
        warnings.warn("validation ROC-AUC is undefined (the validation split lacks a class); selecting by accuracy",
                      stacklevel=3)
        selection = "accuracy"
    return selection


@dataclass(frozen=True)
class ExtraMetric:
    """A test metric beyond accuracy and ROC-AUC, reported under ``name``: ``score(predictions, labels)`` -> float
    (graph classification passes the softmax outputs [n, K] and the labels [n])."""

    name: str
    score: Callable[[torch.Tensor, torch.Tensor], float]


# -- training --------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    seed: int
    best_epoch: int
    val: float
    selection: str
    test_accuracy: float
    test_roc_auc: float
    val_accuracy: float
    val_roc_auc: float
    seconds: float
    model: GraphClassifier | None = None
    extra: dict[str, float] = field(default_factory=dict)  # ExtraMetric name -> test score


def _predict(model: GraphClassifier, pack: PackedGraphs) -> torch.Tensor:
    return torch.softmax(model(pack), dim=-1)


@flush_denormals()  # long CPU runs otherwise slow down 3-4x once weights turn subnormal
def train_run(
    train: PackedGraphs,
    val: PackedGraphs,
    test: PackedGraphs,
    cfg: TrainConfig,
    *,
    num_classes: int,
    seed: int,
    sampling: str = "each_once",
    bar: Progress | None = None,
    keep_model: bool = False,
    extra_metric: ExtraMetric | None = None,
) -> RunResult:
    """Train one freshly initialised model on ``train`` and report test metrics at the best-validation epoch.

    The validation set is scored after every epoch on the device; the weights of the best epoch so far (ties go to
    the later epoch, as in the reference) are kept on the device without host syncs, and the test set is scored
    once with them, which equals scoring it every epoch and reading the best-validation epoch (``extra_metric``, if
    given, scores those test predictions too).
    """
    device = train.x.device
    seed_everything(seed)
    gen = generator(seed, device)
    edge_dim = None if train.edge_attr is None or train.edge_attr.shape[-1] == 0 else train.edge_attr.shape[-1]
    model = GraphClassifier(train.x.shape[1], num_classes, cfg, edge_dim=edge_dim).to(device=device, dtype=train.x.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    selection = selection_metric(cfg, num_classes, val.y)
    state = model.state_dict()
    best_state = {k: v.detach().clone() for k, v in state.items()}
    best_score = torch.tensor(-math.inf, dtype=torch.float64, device=device)
    best_epoch = torch.tensor(-1, device=device)
    best_val = {"accuracy": best_score.clone(), "roc_auc": best_score.clone()}
    support = train.weight if sampling != "each_once" else None
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = epoch_order(train.num_graphs, sampling, gen, support=support, classes=train.y)
        for start in range(0, order.numel(), cfg.batch_size):
            batch = train.select(order[start:start + cfg.batch_size])
            loss = torch.nn.functional.cross_entropy(model(batch), batch.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v = epoch_metrics(_predict(model, val).unsqueeze(0), val.y)
            score = torch.nan_to_num(v[selection][0], nan=-math.inf)
            better = score >= best_score
            best_score = torch.where(better, score, best_score)
            best_epoch = torch.where(better, torch.tensor(epoch, device=device), best_epoch)
            for key in best_val:
                best_val[key] = torch.where(better, v[key][0], best_val[key])
            for key, value in state.items():
                best_state[key].copy_(torch.where(better, value, best_state[key]))
        if bar is not None:
            bar.update(loss=loss)
    seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        probs = _predict(model, test)
        t = epoch_metrics(probs.unsqueeze(0), test.y)
    extra = {extra_metric.name: float(extra_metric.score(probs, test.y))} if extra_metric is not None else {}
    if bool(torch.isnan(t["roc_auc"][0])):
        warnings.warn("test ROC-AUC is undefined (the test split lacks a class); reported as NaN", stacklevel=2)
    return RunResult(
        seed=seed, best_epoch=int(best_epoch), val=float(best_val[selection]), selection=selection,
        test_accuracy=float(t["accuracy"][0]), test_roc_auc=float(t["roc_auc"][0]),
        val_accuracy=float(best_val["accuracy"]), val_roc_auc=float(best_val["roc_auc"]),
        seconds=seconds, model=model if keep_model else None, extra=extra,
    )


def summarise(runs: list[RunResult], report: str = "all_seeds") -> dict:
    """Mean ± population std of test accuracy, ROC-AUC and any :class:`ExtraMetric` over all runs (or, explicitly,
    the reference's top 5 of 10 by validation, labelled in the output)."""
    if report not in REPORTS:
        raise ValueError(f"report must be one of {REPORTS}, got {report!r}")
    chosen = runs
    if report == "top5_of_10_by_val":
        chosen = sorted(runs, key=lambda r: (-r.val, r.seed))[:TOP_K_REFERENCE]

    out = {
        "accuracy": run_stats([r.test_accuracy for r in chosen]),
        "roc_auc": run_stats([r.test_roc_auc for r in chosen]),
        "val": run_stats([r.val for r in chosen]),
        "selection": chosen[0].selection if chosen else None,
        "best_epochs": [r.best_epoch for r in chosen],
        "seeds": [r.seed for r in chosen],
        "train_seconds": float(sum(r.seconds for r in runs)),
        "report": report if report == "all_seeds" else
        f"{report}: the Mirage reference's reporting (top {TOP_K_REFERENCE} of {len(runs)} runs by validation), "
        "not the library convention",
    }
    for name in chosen[0].extra if chosen else ():
        out[name] = run_stats([r.extra[name] for r in chosen])
    return out


def train_runs(train: PackedGraphs, val: PackedGraphs, test: PackedGraphs, cfg: TrainConfig, *, num_classes: int,
               seed: int = 0, sampling: str = "each_once", desc: str = "train", keep_first_model: bool = False,
               extra_metric: ExtraMetric | None = None):
    """``cfg.runs`` runs with seeds ``seed, seed+1, ...``: ``(summary, runs)``. Under ``torchrun`` the runs are split
    across ranks and gathered back in run order."""
    from condense import distributed

    mine = distributed.take(range(cfg.runs))
    local = []
    with Progress(total=len(mine) * cfg.epochs, desc=desc) as bar:
        for r in mine:
            local.append(train_run(train, val, test, cfg, num_classes=num_classes, seed=seed + r, sampling=sampling,
                                   bar=bar, keep_model=keep_first_model and r == 0, extra_metric=extra_metric))
    runs = distributed.gather_in_order(local, cfg.runs)
    return summarise(runs, cfg.report), runs

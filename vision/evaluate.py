"""Evaluating synthetic image sets: train fresh networks on a set, test them on the real test split.

The protocol of the references (docs/protocols.md), for one set (S, hard labels):

1. build a freshly initialised network (any name :func:`condense.vision.nets.build_net` knows);
2. train it for E+1 epochs (epoch counters 0..E) with minibatch SGD (shuffled), cross-entropy and per-sample
   DSA on every batch; lr = the set's learned lr (``syn_lr``, MTT/AST) or 0.01, momentum 0.9, weight decay
   5e-4; after epoch E//2+1 the lr is multiplied by the decay (0.1) and the optimiser is rebuilt, which resets
   its momentum exactly as the references do (the AST profile also switches momentum to 0.8);
3. test on the full real test split in the set's input space (ZCA-whitened with the *artifact's* transform
   when it carries one); the number is the **final-epoch** test accuracy — never a maximum over epochs;
4. repeat for ``runs`` independent networks and report mean ± population std (ddof = 0).

Profiles are data (:data:`condense.vision.presets.EVAL_PROFILES`): ``dsa``, ``mtt``, ``datadam``,
``datadam-paper`` (StepLR ×0.5 every 15 epochs, the schedule DataDAM's paper describes) and ``ast``; an
artifact's method picks its profile, and every field can be overridden. With ``baselines=True`` the same
protocol also trains on coresets of the real training split at the artifact's IPC (random, herding, k-means;
:mod:`condense.vision.coreset`) and on the whole
training split (``full_epochs``, raised to at least the small sets' number of steps: :func:`full_data_epochs`),
so a number always comes with its context.

Run r of every set uses the same seed (derived from ``seed`` and r): the distilled set and its baselines are
compared on identical network initialisations.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from condense import distributed
from condense.artifacts import ImageSet, load
from condense.config import build_config, require, to_dict
from condense.registry import run_stats
from condense.runtime import Meter, resolve_device
from condense.vision.augment import DSA, DSAConfig, strategy_for
from condense.vision.coreset import select
from condense.vision.nets import build_net, resolved_name
from condense.vision.presets import EVAL_PROFILES
from condense.vision.zca import ZCA, whiten

#: the profile an artifact's method is evaluated with (an artifact may name another in extra.eval_profile)
METHOD_PROFILES: dict[str, str] = {"datadam": "datadam", "mtt": "mtt", "ast": "ast"}
BASELINES = ("random", "herding", "kmeans", "full")


@dataclass
class ImageEvalConfig:
    """How networks are trained on a set and tested; defaults are the ``dsa`` profile."""

    model: str = "convnet"
    runs: int = 20
    epochs: int = 1000  # E: epochs 0..E are run
    batch: int = 256
    lr: float | None = None  # None: the set's learned lr (syn_lr) if it has one, else default_lr
    default_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["half", "step"] = "half"  # half: one decay after epoch E//2+1; step: every step_size epochs
    decay: float = 0.1
    step_size: int = 15
    momentum_after_decay: float | None = None  # AST: 0.8 after the decay
    dsa: bool = True
    dsa_strategy: str | None = None  # None: by dataset (no flip for digit datasets)
    align_corners: bool = False
    test_batch: int = 500
    channels_last: bool = True  # memory layout only: faster convolutions (mkldnn on CPU, tensor cores on GPU)
    baseline_sets: tuple[str, ...] = BASELINES
    distilled: bool = True  # train on the artifact's images (false: baselines only, e.g. to split long CPU runs)
    full_epochs: int = 30  # epoch cap for the whole-training-set baseline
    full_batch: int = 256
    full_runs: int | None = None  # None: as many as ``runs``
    dataset: str | None = None  # None: the artifact's source dataset (name or .npz file)
    check_fingerprint: bool = True
    labels: Literal["hard", "soft"] = "hard"  # soft: KL to a teacher's logits at ``temperature``
    temperature: float = 4.0
    teacher_model: str | None = None  # None: the evaluation model
    teacher_epochs: int = 30
    scores: bool = False  # DD-Ranking's LRS and ARS (condense.vision.scores), with the runs they need
    score_lambda: float = 0.5

    def __post_init__(self) -> None:
        for key in ("runs", "epochs", "batch", "test_batch", "full_batch", "step_size"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= (0 if key == "epochs" else 1), key,
                    f"must be a {'non-negative' if key == 'epochs' else 'positive'} integer, got {value!r}")
        require(self.full_epochs >= 0, "full_epochs", f"must be >= 0, got {self.full_epochs!r}")
        require(self.full_runs is None or self.full_runs >= 1, "full_runs", f"must be >= 1, got {self.full_runs!r}")
        require(self.lr is None or self.lr > 0, "lr", f"must be positive, got {self.lr!r}")
        require(self.default_lr > 0, "default_lr", f"must be positive, got {self.default_lr!r}")
        require(0 < self.decay <= 1, "decay", f"must be in (0, 1], got {self.decay!r}")
        unknown = [b for b in self.baseline_sets if b not in BASELINES]
        require(not unknown, "baseline_sets", f"unknown baseline(s) {unknown}; known: {list(BASELINES)}")
        require(self.labels in ("hard", "soft"), "labels", f"must be 'hard' or 'soft', got {self.labels!r}")
        require(self.temperature > 0, "temperature", f"must be positive, got {self.temperature!r}")
        require(isinstance(self.teacher_epochs, int) and self.teacher_epochs >= 1, "teacher_epochs",
                f"must be a positive integer, got {self.teacher_epochs!r}")
        require(0 <= self.score_lambda <= 1, "score_lambda", f"must lie in [0, 1], got {self.score_lambda!r}")


def run_seed(seed: int, run: int) -> int:
    """The seed of training run ``run`` (the same for every set, so sets share network initialisations)."""
    return int(np.random.SeedSequence([int(seed), int(run)]).generate_state(1, dtype=np.uint64)[0] >> 1)


# -- training one network ----------------------------------------------------------------------------
def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500,
             channels_last: bool = False) -> float:
    """Top-1 accuracy (a fraction) of ``net`` in eval mode on (x, y)."""
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, x.shape[0], batch):
        logits = net(_layout(x[start:start + batch], channels_last))
        correct += (logits.argmax(1) == y[start:start + batch]).sum()
    net.train(was_training)
    return float(correct) / max(int(y.shape[0]), 1)


def soft_label_loss(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""Knowledge distillation to a teacher's logits t at temperature T (Hinton et al., 2015):

    .. math::
        \mathcal{L} = \frac{T^2}{B} \sum_{b=1}^{B} \sum_k p_{bk} \big(\log p_{bk} - \log q_{bk}\big),\qquad
        p = \mathrm{softmax}(t / T),\quad q = \mathrm{softmax}(z / T)

    the batch-mean KL(p ‖ q); the T² keeps the gradient's scale independent of T."""
    log_q = F.log_softmax(logits / temperature, dim=1)
    log_p = F.log_softmax(target_logits / temperature, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature ** 2


def train_net(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ImageEvalConfig, *, lr: float,
              epochs: int, batch: int, generator: torch.Generator, dsa: DSA | None) -> torch.Tensor:
    """Train ``net`` on (x, y) by the protocol of the module docstring; returns the last batch loss.

    ``y``: int64 class labels [N] (cross-entropy) or float soft labels [N, K], a teacher's logits
    (:func:`soft_label_loss` at ``cfg.temperature``)."""
    soft = y.is_floating_point()

    def optimiser(rate: float, momentum: float) -> torch.optim.SGD:
        return torch.optim.SGD(net.parameters(), lr=rate, momentum=momentum, weight_decay=cfg.weight_decay)

    net.train()
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    opt = optimiser(lr, cfg.momentum)
    decay_epoch = epochs // 2 + 1
    n = x.shape[0]
    loss = torch.zeros((), device=x.device)
    for ep in range(epochs + 1):
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb = x[idx]
            if dsa is not None:
                xb = dsa(xb, generator)
            logits = net(_layout(xb, cfg.channels_last))
            loss = soft_label_loss(logits, y[idx], cfg.temperature) if soft else F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if cfg.schedule == "half" and ep == decay_epoch:
            momentum = cfg.momentum if cfg.momentum_after_decay is None else cfg.momentum_after_decay
            opt = optimiser(lr * cfg.decay, momentum)  # rebuilt: the references reset momentum here
        elif cfg.schedule == "step":
            for group in opt.param_groups:
                group["lr"] = lr * cfg.decay ** ((ep + 1) // cfg.step_size)
    return loss.detach()


def evaluate_set(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, *,
                 cfg: ImageEvalConfig, lr: float, num_classes: int, strategy: str, seed: int = 0,
                 runs: int | None = None, epochs: int | None = None, batch: int | None = None,
                 augment: bool | None = None) -> dict[str, Any]:
    """Train ``runs`` fresh networks on (x, y) and test each: accuracies, mean and population std. ``y`` holds
    class labels or soft labels (:func:`train_net`); ``augment`` (default ``cfg.dsa``) turns DSA on or off.

    Under ``torchrun`` the runs are split across ranks and gathered back in run order (run r has the same seed
    wherever it runs, so the result equals a single process's)."""
    dev = x.device
    augment = cfg.dsa if augment is None else augment
    dsa = DSA(DSAConfig(strategy=strategy, align_corners=cfg.align_corners)) if augment else None
    total = cfg.runs if runs is None else runs
    mine = []
    name = resolved_name(cfg.model, tuple(x.shape[2:]))
    with Meter(dev) as meter:
        for r in distributed.take(range(total)):
            g = torch.Generator(device=dev).manual_seed(run_seed(seed, r))
            net = build_net(cfg.model, x.shape[1], num_classes, tuple(x.shape[2:]), device=dev, generator=g)
            train_net(net, x, y, cfg, lr=lr, epochs=cfg.epochs if epochs is None else epochs,
                      batch=cfg.batch if batch is None else batch, generator=g, dsa=dsa)
            mine.append(accuracy(net, x_test, y_test, cfg.test_batch, cfg.channels_last))
    accs = distributed.gather_in_order(mine, total)
    return {
        "accuracy": run_stats(accs),
        "samples": int(x.shape[0]),
        "labels": "soft" if y.is_floating_point() else "hard",
        "augment": bool(augment),
        "lr": float(lr),
        "epochs": cfg.epochs if epochs is None else epochs,
        "model": name,
        "timing": meter.result.as_dict(),
    }


# -- artifacts ---------------------------------------------------------------------------------------
def _user_data(data: Any):
    """An :class:`ImageData` from evaluation data a user passes: an ImageData, ``(test_images, test_labels)``,
    a test ``Dataset``, or ``(train, test)`` where each is such a pair or Dataset (tensors taken as given)."""
    from condense.vision.data import ImageData, as_image_data

    if isinstance(data, ImageData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], torch.Tensor):
        train, test = as_image_data(data[0], name="data"), as_image_data(data[1], name="data")
        return replace(train, x_test=test.x_train, y_test=test.y_train,
                       classes=train.classes if train.num_classes >= test.num_classes else test.classes)
    test = as_image_data(data, name="data")
    return replace(test, x_train=test.x_train[:0], y_train=test.y_train[:0], x_test=test.x_train,
                   y_test=test.y_train)


def _real_data(artifact: ImageSet, cfg: ImageEvalConfig, data_root, device: torch.device, data: Any = None):
    """The real data of the artifact's source (or ``data``), in the artifact's input space."""
    from condense.data import canonical_name
    from condense.vision.data import load_images

    src = artifact.meta.get("source") or {}
    if data is not None:
        data = _user_data(data)
    else:
        name = cfg.dataset or src.get("file") or src.get("name")
        known = bool(name) and (str(name).endswith(".npz") or os.path.isdir(str(name))
                                or _is_catalogue(name, canonical_name))
        if not known:
            raise ValueError(f"this ImageSet was distilled from your own data (source {src.get('name')!r}), so there "
                             "is no test split to load: pass data=(test_images, test_labels), a test Dataset, or "
                             "data=(train, test) for baselines too")
        sub = src.get("subsample") or {}
        data = load_images(name, data_root=data_root, train_per_class=sub.get("train_per_class"),
                           seed=sub.get("seed", 0), image_size=src.get("image_size"))
        if cfg.check_fingerprint and src.get("fingerprint") and cfg.dataset is None \
                and data.fingerprint != src["fingerprint"]:
            raise ValueError(f"the dataset {name!r} found under the data root (fingerprint {data.fingerprint}) is not "
                             f"the one the artifact was distilled from ({src['fingerprint']}); set "
                             "check_fingerprint=false to evaluate anyway")
    images = artifact.images
    if tuple(images.shape[1:]) != tuple(data.x_test.shape[1:]):
        raise ValueError(f"artifact images are {list(images.shape[1:])} but the evaluation data has "
                         f"{list(data.x_test.shape[1:])}")
    if int(artifact.labels.max()) >= data.num_classes or int(artifact.labels.min()) < 0:
        raise ValueError(f"artifact labels span [{int(artifact.labels.min())}, {int(artifact.labels.max())}] but "
                         f"the evaluation data has {data.num_classes} classes")
    if data.x_test.shape[0] == 0:
        raise ValueError("the evaluation data has no test images")
    shape = tuple(images.shape[1:])
    zca = ZCA.from_tensors(artifact.tensors, shape)
    space = ((artifact.meta.get("extra") or {}).get("preprocessing") or {}).get("space")
    if space == "zca" and zca is None:
        raise ValueError("the artifact's images are ZCA-whitened but it carries no ZCA transform (zca_mean, "
                         "zca_matrix, zca_inverse); the test images cannot be put in the same space, so it "
                         "cannot be evaluated")
    if zca is not None:
        data, _ = whiten(data, zca)
    elif "mean" in artifact and "std" in artifact and data.space != "given":
        mean, std = artifact["mean"].tolist(), artifact["std"].tolist()
        if not (np.allclose(mean, data.mean) and np.allclose(std, data.std)):
            # the set was normalised with other constants (e.g. MTT's CIFAR-10 statistics for CIFAR-100)
            data = replace(data, x_train=_renormalise(data, data.x_train, mean, std),
                           x_test=_renormalise(data, data.x_test, mean, std), mean=tuple(mean), std=tuple(std))
    return replace(data, x_train=data.x_train.to(device), y_train=data.y_train.to(device),
                   x_test=data.x_test.to(device), y_test=data.y_test.to(device))


class _Labels:
    """The labels a set is trained with: its hard labels, or soft labels (the set's own stored logits, else a
    teacher's; :mod:`condense.vision.teacher`). The teacher is trained, or loaded from its cache, on first use."""

    def __init__(self, artifact: ImageSet, data, cfg: ImageEvalConfig, device: torch.device):
        self.artifact, self.data, self.cfg, self.device = artifact, data, cfg, device
        self.teacher = None
        self.teacher_meta: dict[str, Any] | None = None

    def of(self, images, hard: torch.Tensor, kind: str, *, own: bool = False) -> torch.Tensor:
        if kind == "hard":
            return hard
        stored = self.artifact.soft_labels
        if own and stored is not None:
            return stored.to(self.device).float()
        return self._relabel(images)

    def _relabel(self, images) -> torch.Tensor:
        from condense.vision.teacher import TeacherConfig, relabel, train_teacher

        if self.teacher is None:
            cfg = self.cfg
            self.teacher, self.teacher_meta = train_teacher(
                self.data, TeacherConfig(model=cfg.teacher_model or cfg.model, epochs=cfg.teacher_epochs,
                                         batch=cfg.full_batch, lr=cfg.default_lr),
                device=self.device)
        return relabel(self.teacher, images)


def _robust_scores(cfg: ImageEvalConfig, results: dict, labels: _Labels, syn_x, syn_y, lr: float, base_lr: float,
                   coreset, full_set, data, x_test, y_test, common: dict) -> tuple[dict, dict]:
    """LRS and ARS (:mod:`condense.vision.scores`) from the runs they need, reusing those already in ``results``.
    Returns ``(scores, the extra runs by name)``: ``<set>[<labels>]`` trained with DSA, ``<set>[<labels>,plain]``
    without augmentation."""
    from condense.vision.scores import augmentation_robust_score, label_robust_score

    idx = coreset("random")
    rx, ry = data.x_train[idx], data.y_train[idx]
    runs: dict[str, dict[str, Any]] = {}

    def get(name: str, make) -> dict[str, Any]:
        if name not in runs:
            runs[name] = make()
        return runs[name]

    def syn(kind: str, augment: bool) -> dict[str, Any]:
        if kind == cfg.labels and augment == cfg.dsa and "distilled" in results:
            return results["distilled"]
        name = f"distilled[{kind}{'' if augment else ',plain'}]"
        return get(name, lambda: evaluate_set(syn_x, labels.of(syn_x, syn_y, kind, own=True), x_test, y_test,
                                              lr=lr, augment=augment, **common))

    def rdm(kind: str, augment: bool) -> dict[str, Any]:
        if kind == cfg.labels and augment == cfg.dsa and "random" in results:
            return results["random"]
        name = f"random[{kind}{'' if augment else ',plain'}]"
        return get(name, lambda: evaluate_set(rx, labels.of(rx, ry, kind), x_test, y_test, lr=base_lr,
                                              augment=augment, **common))

    def full_plain() -> dict[str, Any]:
        if not cfg.dsa and "full" in results:
            return results["full"]
        return get("full[hard,plain]", lambda: full_set(augment=False))

    def accs(r: dict[str, Any]) -> list[float]:
        return r["accuracy"]["runs"]

    full = full_plain()
    if len(accs(full)) != cfg.runs:
        raise ValueError(f"the scores pair runs, so the full-data baseline needs runs={cfg.runs} (full_runs is "
                         f"{cfg.full_runs})")
    lrs = label_robust_score(accs(full), accs(syn("hard", False)), accs(syn("soft", True)), accs(rdm("soft", True)),
                             cfg.score_lambda)
    ars = augmentation_robust_score(accs(syn("soft", True)), accs(rdm("soft", True)), accs(syn("soft", False)),
                                    accs(rdm("soft", False)), cfg.score_lambda)
    for r in runs.values():
        r["ipc"] = results.get("distilled", {}).get("ipc")
    return {"lrs": lrs, "ars": ars, "labels": "soft", "temperature": cfg.temperature,
            "source": "DD-Ranking (Li et al. 2025, arXiv:2505.13300); condense.vision.scores"}, runs


def _is_catalogue(name: str, canonical_name) -> bool:
    try:
        canonical_name(name)
    except ValueError:
        return False
    return True


def _renormalise(data, x: torch.Tensor, mean, std) -> torch.Tensor:
    if data.streaming:
        return x.with_normalisation(mean, std)
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (data.to_pixels(x) - m) / s


def _ipc(artifact: ImageSet, num_classes: int) -> int:
    ipc = (artifact.meta.get("budget") or {}).get("ipc")
    if isinstance(ipc, int) and ipc > 0:
        return ipc
    counts = torch.bincount(artifact.labels, minlength=num_classes)
    if int(counts.min()) != int(counts.max()):
        raise ValueError(f"the artifact has unequal images per class ({counts.tolist()}); baselines need one IPC")
    return int(counts[0])


def full_data_epochs(cfg: ImageEvalConfig, n_small: int, n_full: int) -> int:
    """The epochs :math:`E_f` of the whole-training-set baseline: ``full_epochs``, raised where needed so that a
    run on the full data takes at least as many optimiser steps as a run on a set of ``n_small`` images,
    :math:`(E_f + 1)\\lceil N / B_f \\rceil \\ge (E + 1)\\lceil n / B \\rceil`.

    ``full_epochs`` caps the cost on large training sets (epochs 0..30 of 60,000 MNIST images are 7,285 steps,
    more than a 10-image set's 1,001); on a small subsample the cap alone would train the full data for fewer
    steps than the distilled set (31 against 101 for 200 images in one batch at E = 100), and score below it."""
    small = (cfg.epochs + 1) * math.ceil(n_small / cfg.batch)
    per_epoch = math.ceil(n_full / cfg.full_batch)
    return max(cfg.full_epochs, math.ceil(small / per_epoch) - 1)


def evaluate_artifact(
    artifact: ImageSet | str | os.PathLike,
    data: Any = None,
    *,
    model: str | None = None,
    runs: int | None = None,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
    baselines: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate an :class:`ImageSet` (or its file) by its method's profile; see the module docstring.

    ``data``: the real data, for a set distilled from your own data (an ImageData, ``(test_images, test_labels)``,
    a test ``Dataset``, or ``(train, test)``; the training split is needed for baselines). ``model``: a built-in
    network name or one registered with :func:`condense.vision.nets.register`. ``overrides`` are
    :class:`ImageEvalConfig` fields (typed or strings) plus ``profile`` (an evaluation profile name). Returns the
    result dictionary of ``condense.registry.EVALUATORS`` (accuracies as fractions).
    """
    if not isinstance(artifact, ImageSet):
        artifact = load(artifact) if isinstance(artifact, (str, os.PathLike)) else artifact
        if not isinstance(artifact, ImageSet):
            raise TypeError(f"evaluate_artifact needs an ImageSet, got {type(artifact).__name__}")
    overrides = dict(overrides)
    method = artifact.meta.get("method")
    extra = artifact.meta.get("extra") or {}
    profile = overrides.pop("profile", None) or extra.get("eval_profile") or METHOD_PROFILES.get(method, "dsa")
    if model is not None:
        overrides["model"] = model
    if runs is not None:
        overrides["runs"] = runs
    cfg = build_config(ImageEvalConfig, EVAL_PROFILES, chain=[profile], overrides=overrides, what="evaluation profile")
    dev = resolve_device(device)
    data = _real_data(artifact, cfg, data_root, dev, data)
    src_name = (artifact.meta.get("source") or {}).get("name") or data.name
    strategy = cfg.dsa_strategy or strategy_for(src_name)
    k = data.num_classes
    learned = artifact.learned_lr
    lr = cfg.lr if cfg.lr is not None else (learned if learned is not None else cfg.default_lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"the evaluation learning rate must be positive and finite, got {lr!r} "
                         "(the artifact's learned syn_lr?); set lr=... to override")
    common = dict(cfg=cfg, num_classes=k, strategy=strategy, seed=seed)
    if not cfg.distilled and not baselines:
        raise ValueError("distilled=false and no baselines: there is nothing to evaluate")
    if baselines and data.x_train.shape[0] == 0:
        raise ValueError("baselines need the real training split: pass data=(train, test) or an ImageData")
    x_test, y_test = data.x_test, data.y_test
    ipc = _ipc(artifact, k)
    labels = _Labels(artifact, data, cfg, dev)
    base_lr = cfg.lr if cfg.lr is not None else cfg.default_lr
    syn_x, syn_y = artifact.images.to(dev), artifact.labels.to(dev)

    def coreset(name: str) -> torch.Tensor:
        # each selection has its own generator, so a baseline does not depend on which others are run
        return select(name, data.x_train, data.y_train, ipc, num_classes=k,
                      generator=torch.Generator(device=dev).manual_seed(int(seed)))

    def full_set(augment: bool | None = None) -> dict[str, Any]:
        full_epochs = full_data_epochs(cfg, int(artifact.images.shape[0]), int(data.x_train.shape[0]))
        return evaluate_set(data.x_train, data.y_train, x_test, y_test, lr=base_lr, epochs=full_epochs,
                            batch=cfg.full_batch, runs=cfg.full_runs or cfg.runs, augment=augment, **common)

    results: dict[str, dict[str, Any]] = {}
    if cfg.distilled:
        results["distilled"] = evaluate_set(syn_x, labels.of(syn_x, syn_y, cfg.labels, own=True), x_test, y_test,
                                            lr=lr, **common)
        results["distilled"]["ipc"] = ipc
    if baselines:
        for name in cfg.baseline_sets:
            if name == "full":  # the reference: the whole training split with its hard labels
                results["full"] = full_set()
                continue
            idx = coreset(name)
            xb = data.x_train[idx]
            results[name] = evaluate_set(xb, labels.of(xb, data.y_train[idx], cfg.labels), x_test, y_test,
                                         lr=base_lr, **common)
            results[name]["ipc"] = ipc
    scores = None
    if cfg.scores:
        scores, score_runs = _robust_scores(cfg, results, labels, syn_x, syn_y, lr, base_lr, coreset, full_set,
                                            data, x_test, y_test, common)
        results.update(score_runs)
    n_syn = int(artifact.images.shape[0])
    n_full = int(data.x_train.shape[0])
    syn_bytes = artifact.images.numel() * artifact.images.element_size() + artifact.labels.numel() * 8
    full_bytes = data.x_train.numel() * data.x_train.element_size() + n_full * 8
    result = {
        "kind": artifact.kind,
        "method": method,
        "dataset": src_name,
        "model": next(iter(results.values()))["model"],
        "profile": profile,
        "ipc": ipc,
        "device": str(dev),
        "results": results,
        "compression": {"samples": n_full / n_syn if n_full else None,
                        "bytes": full_bytes / syn_bytes if n_full else None, "distilled_samples": n_syn,
                        "full_samples": n_full, "distilled_bytes": syn_bytes, "full_bytes": full_bytes},
        "timing": {name: r["timing"] for name, r in results.items()},
        "config": to_dict(cfg),
    }
    if labels.teacher_meta is not None:
        result["teacher"] = labels.teacher_meta
    if scores is not None:
        result["scores"] = scores
    result["table"] = _table(result, cfg)
    return result


def _table(result: Mapping[str, Any], cfg: ImageEvalConfig) -> str:
    lines = [
        f"{result['method']} on {result['dataset']} (IPC {result['ipc']}): {result['model']}, profile "
        f"{result['profile']}, {cfg.epochs + 1} epochs, {cfg.runs} run(s), device {result['device']}",
        f"  {'set':<22} {'labels':<6} {'DSA':<4} {'images':>7} {'lr':>8} {'epochs':>7}  {'test accuracy (%)':<18} "
        f"{'wall s':>8} {'peak MB':>8}",
    ]
    for name, r in result["results"].items():
        acc = r["accuracy"]
        t = r["timing"]
        lines.append(f"  {name:<22} {r.get('labels', 'hard'):<6} {'on' if r.get('augment', True) else 'off':<4} "
                     f"{r['samples']:>7} {r['lr']:>8.4g} {r['epochs'] + 1:>7}  "
                     f"{100 * acc['mean']:6.2f} ± {100 * acc['std']:<9.2f} {t['wall_s']:>8.1f} {t['peak_rss_mb']:>8.0f}")
    teacher = result.get("teacher")
    if teacher:
        acc = teacher.get("test_accuracy")
        lines.append(f"  soft labels: logits of a {teacher['model']} teacher trained on the full training split"
                     + (f" (test accuracy {100 * acc:.2f} %)" if acc is not None else "")
                     + f", temperature {cfg.temperature:g}")
    scores = result.get("scores")
    if scores:
        lrs, ars = scores["lrs"], scores["ars"]
        lines.append(f"  DD-Ranking scores (λ = {lrs['lambda']:g}): LRS {100 * lrs['lrs']['mean']:.2f} ± "
                     f"{100 * lrs['lrs']['std']:.2f} (HLR {100 * lrs['hlr']['mean']:.2f}, IOR "
                     f"{100 * lrs['ior']['mean']:.2f} points); ARS {100 * ars['ars']['mean']:.2f} ± "
                     f"{100 * ars['ars']['std']:.2f} (with DSA {100 * ars['with_aug']['mean']:+.2f}, without "
                     f"{100 * ars['without_aug']['mean']:+.2f} points over random)")
    c = result["compression"]
    if c["samples"] is not None:
        lines.append(f"  compression: {c['samples']:.0f}x fewer images ({c['distilled_samples']} vs "
                     f"{c['full_samples']}), {c['bytes']:.0f}x fewer bytes")
    return "\n".join(lines)

"""The two stages of a run: the teacher (trained with the supervised protocol, or given as a module or as logits)
and the MLP student (trained on one mode's objective, full batch or on seeded edge minibatches), both with early
stopping on validation accuracy and resumable checkpoints."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple

import torch
from torch import Tensor, nn

from condense.graph.g2m.config import MODES, G2MConfig
from condense.graph.g2m.losses import MODE_TERMS, g2m_loss
from condense.graph.g2m.problem import NodeProblem
from condense.graph.teachers import (
    NodeMLP,
    accuracy,
    build_teacher,
    fit_early_stopping,
    minibatch_epoch,
    predict,
    student_for,
    train_teacher,
)
from condense.runtime import generator


# -- teacher stage -----------------------------------------------------------------------------------
@dataclass
class TeacherOutcome:
    """Teacher logits on the training graph (detached) and the teacher's scores (fractions)."""

    logits: Tensor
    val_acc: float
    test_acc: float
    test_ind_acc: float | None
    best_epoch: int | None
    epochs_run: int
    train_time_s: float
    params: int
    arch: str
    model: nn.Module | None = None
    training: str = "full"  # "neighbors" when trained on sampled minibatches (outputs from layer-wise inference)


def teach(problem: NodeProblem, cfg: G2MConfig, teacher: Any = None, *, device: torch.device,
          train: bool = True, run_dir=None, identity: Mapping[str, Any] | None = None) -> TeacherOutcome:
    """Train (or take) the teacher and return its eval-mode logits on the graph training sees.

    ``teacher``: ``None`` (build ``cfg.teacher`` and train it), any ``nn.Module`` mapping ``(x, edge_index)`` to
    logits (trained with the protocol, or used as is with ``train=False``), or precomputed logits ``[N, K]`` for
    every node of the graph (in the inductive setting they must not have seen the held-out nodes).
    """
    p = problem
    if isinstance(teacher, Tensor):
        z = teacher.detach().to(device).float()
        if z.shape != (p.x.shape[0], p.num_classes):
            raise ValueError(f"teacher logits must have shape [num_nodes={p.x.shape[0]}, num_classes={p.num_classes}]"
                             f", got {list(z.shape)}")
        if not bool(torch.isfinite(z).all()):
            raise ValueError("teacher logits contain NaN or inf values")
        z_obs = z if p.obs is None else z[p.obs]
        y_obs = p.y_obs
        test_ind = float(accuracy(z[p.test_ind], p.y[p.test_ind])) if p.setting == "inductive" else None
        return TeacherOutcome(z_obs, float(accuracy(z_obs[p.val], y_obs[p.val])),
                              float(accuracy(z_obs[p.test], y_obs[p.test])), test_ind, None, 0, 0.0, 0, "logits")
    tcfg = cfg.teacher_config()
    if teacher is None:
        model, arch = build_teacher(tcfg, p.x.shape[1], p.num_classes), cfg.teacher
    elif isinstance(teacher, nn.Module):
        model, arch = teacher, type(teacher).__name__
    else:
        raise TypeError(f"teacher must be None, an nn.Module mapping (x, edge_index) to logits, or a logits tensor "
                        f"[N, K]; got {type(teacher).__name__}")
    model = model.to(device)
    x_obs, y_obs, edges = p.x_obs, p.y_obs, p.obs_graph.edges_plus
    if train:
        res = train_teacher(model, x_obs, y_obs, edges, p.train, p.val, p.test, tcfg, device=device,
                            run_dir=run_dir, identity=identity, desc=f"teacher {arch}")
        z, val, test, best, elapsed = res.logits, res.val_acc, res.test_acc, res.best_epoch, res.train_time_s
        epochs = res.epochs_run
    else:
        model.eval()
        with torch.no_grad():
            z = predict(model, x_obs, edges, tcfg).detach().float()
        if z.shape != (x_obs.shape[0], p.num_classes):
            raise ValueError(f"the teacher module returned logits of shape {list(z.shape)}, expected "
                             f"[{x_obs.shape[0]}, {p.num_classes}]")
        val, test = float(accuracy(z[p.val], y_obs[p.val])), float(accuracy(z[p.test], y_obs[p.test]))
        best, elapsed, epochs = None, 0.0, 0
    test_ind = None
    if p.setting == "inductive":
        model.eval()
        with torch.no_grad():  # the held-out nodes' accuracy is measured on the full graph
            full_logits = predict(model, p.x, p.full.edges_plus, tcfg)
        test_ind = float(accuracy(full_logits[p.test_ind], p.y[p.test_ind]))
    params = sum(t.numel() for t in model.parameters())
    training = "neighbors" if train and tcfg.samples(edges.shape[1]) else "full"
    return TeacherOutcome(z, val, test, test_ind, best, epochs, elapsed, params, arch, model, training)


# -- student stage -----------------------------------------------------------------------------------
class _Batch(NamedTuple):
    """One optimisation step's rows, in local ids of ``nodes`` (``nodes=None``: all nodes, no gather)."""

    nodes: Tensor | None
    train: Tensor
    edges_plus: Tensor | None
    edges: Tensor | None
    kd_nodes: Tensor | None


def _full_batch(mode: str, p: NodeProblem) -> _Batch:
    if mode == "mlp":  # labels only: the student runs on the training nodes alone
        return _Batch(p.train, torch.arange(p.train.numel(), device=p.train.device), None, None, None)
    return _Batch(None, p.train, p.obs_graph.edges_plus, p.obs_graph.edges, None)


def _edge_batches(mode: str, p: NodeProblem, batch_size: int, gen: torch.Generator) -> Iterator[_Batch]:
    """Seeded edge-subset minibatches covering E+ (and E, and the nodes for GLNN) once per epoch, made one at a
    time; the label loss uses every training node in every step."""
    terms = MODE_TERMS[mode]
    g, dev = p.obs_graph, p.train.device
    steps = max(1, math.ceil(g.edges_plus.shape[1] / batch_size))
    pick = lambda n: torch.randperm(n, generator=gen, device=dev).tensor_split(steps)  # noqa: E731
    plus = pick(g.edges_plus.shape[1]) if "lfd" in terms else [None] * steps
    plain = pick(g.edges.shape[1]) if "hfd" in terms else [None] * steps
    kd = pick(g.num_nodes) if "kd" in terms else [None] * steps
    for cp, ce, ck in zip(plus, plain, kd):
        parts = [p.train]
        ep = g.edges_plus[:, cp] if cp is not None else None
        ee = g.edges[:, ce] if ce is not None else None
        parts += [t.reshape(-1) for t in (ep, ee) if t is not None] + ([ck] if ck is not None else [])
        nodes, inv = torch.cat(parts).unique(return_inverse=True)
        pieces = list(inv.split([t.numel() for t in parts]))
        train = pieces.pop(0)
        lp = pieces.pop(0).view(2, -1) if ep is not None else None
        le = pieces.pop(0).view(2, -1) if ee is not None else None
        lk = pieces.pop(0) if ck is not None else None
        yield _Batch(nodes, train, lp, le, lk)


@dataclass
class StudentOutcome:
    """A trained student (best-validation state) and its scores; ``test_acc`` is test_tran when inductive."""

    model: NodeMLP
    mode: str
    val_acc: float
    test_acc: float
    test_ind_acc: float | None
    best_epoch: int
    epochs_run: int
    train_time_s: float
    edge_batch: int = 0  # edges per step (0: full batch)

    def headline(self) -> float:
        """The number a run reports: test accuracy (transductive) or held-out accuracy (inductive)."""
        return self.test_acc if self.test_ind_acc is None else self.test_ind_acc


def distil(problem: NodeProblem, teacher: TeacherOutcome, cfg: G2MConfig, *, mode: str | None = None,
           seed: int = 0, device: torch.device, run_dir=None,
           identity: Mapping[str, Any] | None = None) -> StudentOutcome:
    """Train the MLP student of ``mode`` (default ``cfg.mode``) from ``teacher``'s logits with early stopping."""
    mode = mode or cfg.mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    p = problem
    student = student_for(cfg.teacher_config(), p.x.shape[1], p.num_classes, cfg.mlp_dropout).to(device)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, y, z = p.x_obs, p.y_obs, teacher.logits.detach()
    eval_idx = torch.cat([p.val, p.test])
    n_val = p.val.numel()
    gen = generator(seed, device)
    edge_batch = cfg.student_edge_batch(p.obs_graph.edges_plus.shape[1])
    static = None if edge_batch > 0 and mode != "mlp" else [_full_batch(mode, p)]

    def batch_loss(b: _Batch) -> Tensor:
        if b.nodes is None:
            h, zb, yb = student(x), z, y
        else:
            h, zb, yb = student(x[b.nodes]), z[b.nodes], y[b.nodes]
        return g2m_loss(mode, h, zb, yb, b.train, b.edges_plus, b.edges, lam=cfg.lam, tau=cfg.tau,
                        kd_nodes=b.kd_nodes)

    def train_step(epoch: int) -> Tensor:
        student.train()
        return minibatch_epoch(opt, static or _edge_batches(mode, p, edge_batch, gen), batch_loss, device)

    @torch.no_grad()
    def evaluate() -> dict[str, Tensor]:
        student.eval()
        out = student(x[eval_idx])
        y_eval = y[eval_idx]
        metrics = {"val": accuracy(out[:n_val], y_eval[:n_val]), "test": accuracy(out[n_val:], y_eval[n_val:])}
        if p.setting == "inductive":  # features only: the held-out nodes were never part of training
            metrics["test_ind"] = accuracy(student(p.x[p.test_ind]), p.y[p.test_ind])
        return metrics

    t0 = time.perf_counter()
    stopper = fit_early_stopping(student, opt, train_step, evaluate, max_epochs=cfg.max_epochs, patience=cfg.patience,
                                 device=device, run_dir=run_dir, identity=identity,
                                 checkpoint_every=cfg.checkpoint_every, desc=f"student {mode}",
                                 extra_state={"edge_gen": gen})
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    student.eval()
    return StudentOutcome(student, mode, stopper.best_val, stopper.metrics["test"], stopper.metrics.get("test_ind"),
                          stopper.best_epoch, stopper.best_epoch + stopper.bad_epochs + 1, elapsed,
                          0 if static else edge_batch)

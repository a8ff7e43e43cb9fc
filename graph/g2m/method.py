"""FF-G2M: full-frequency GNN-to-MLP distillation (Wu, Lin, Huang, Fan, Li, AAAI 2024), with the GLNN (Zhang et
al., ICLR 2022) and plain-MLP baselines and the low-/high-frequency ablations.

A GNN teacher (:mod:`condense.graph.teachers`) is trained on the graph; an MLP student with the teacher's depth and width
then learns from node features alone. With student logits :math:`h`, fixed teacher logits :math:`z`,
:math:`p_T(v) = \\mathrm{softmax}(z_v)`, :math:`\\mathrm{KL}(P \\| Q) = \\sum_k P_k (\\log P_k - \\log Q_k)` and
means over the listed rows (the losses as the official FF-G2M code computes them):

.. math::

    \\mathcal{L}_{CE}  &= \\mathrm{mean}_{v \\in V_L} -\\log p_S(v)[y_v] \\\\
    \\mathcal{L}_{LFD} &= \\mathrm{mean}_{(u,v) \\in E^+} \\mathrm{KL}(p_T(v) \\| p_S(u)) \\\\
    \\mathcal{L}_{HFD} &= \\mathrm{mean}_{(u,v) \\in E} \\mathrm{KL}(\\mathrm{softmax}(|z_u - z_v| / \\tau) \\|
                          \\mathrm{softmax}(|h_u - h_v| / \\tau)) \\\\
    \\mathcal{L}_{KD}  &= \\mathrm{mean}_{v \\in V_{obs}} \\mathrm{KL}(p_T(v) \\| p_S(v))

:math:`E^+` is every directed edge of the symmetric graph with one self-loop per node, :math:`E` the same without
self-loops; in an edge row :math:`(u, v)` the student side is :math:`u = ` ``edge_index[0]``. :math:`|\\cdot|` is
elementwise on raw logits; :math:`\\tau` enters only the high-frequency term. The modes:

===========  =====================================================================
``ffg2m``     :math:`\\lambda L_{CE} + (1-\\lambda)(L_{LFD} + L_{HFD})`
``lfd_only``  :math:`\\lambda L_{CE} + (1-\\lambda) L_{LFD}`
``hfd_only``  :math:`\\lambda L_{CE} + (1-\\lambda) L_{HFD}`
``glnn``      :math:`\\lambda L_{CE} + (1-\\lambda) L_{KD}` (all nodes of the training graph, temperature 1)
``mlp``       :math:`L_{CE}`
===========  =====================================================================

Protocol (the FF-G2M and GLNN papers' node-classification setting): the teacher trains with Adam (lr 0.01, weight decay
5e-4) and early stopping (patience 50 on validation accuracy, ties update, <= 500 epochs); the student trains full
batch with the preset lr and the same early stopping; the reported number is test accuracy at the best-validation
epoch. Planetoid graphs use the public split with row-normalised features, OGB graphs (ogbn-arxiv, ogbn-products)
their official split with raw features (arxiv's directed citations symmetrised, as every input graph), the other
datasets a random 20 per class / 500 / 1000 split drawn per seed. ``setting="inductive"`` holds out
``floor(0.2 |test|)`` test nodes and every edge touching them from everything the teacher and the student train on,
and reports the student's accuracy on them from features alone. ``edge_batch_size > 0`` trains on seeded edge
subsets per step (an approximation for graphs whose |E| x K gathers do not fit one batch).

This module holds the method, ``FFG2M(config).fit(graph, teacher=...) -> Student``. The package splits the rest by
job: :mod:`~condense.graph.g2m.config` (settings), :mod:`~condense.graph.g2m.losses` (the terms above),
:mod:`~condense.graph.g2m.problem` (the graph, features and split on the device), :mod:`~condense.graph.g2m.training`
(the teacher and student stages), :mod:`~condense.graph.g2m.comparison` (teacher / MLP / GLNN / FF-G2M over seeds),
:mod:`~condense.graph.g2m.evaluate` (scoring a stored student) and :mod:`~condense.graph.g2m.inference_speed` (inference
throughput, student vs teacher).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from condense.artifacts import Student
from condense.config import to_dict
from condense.graph.g2m.config import G2MConfig
from condense.graph.g2m.problem import NodeProblem, load_node_graph, prepare_problem
from condense.graph.g2m.training import StudentOutcome, TeacherOutcome, distil, teach
from condense.graph.presets import FFG2M_PRESETS
from condense.method import Method
from condense.runtime import resolve_device, seed_everything


@dataclass
class NodeGraph:
    """A catalogue node-classification graph as :meth:`FFG2M.load_data` returns it: the PyG ``Data``, its name
    (which picks the presets and the feature normalisation) and the training subsample asked for."""

    data: Any
    name: str
    train_per_class: int | None = None


class FFG2M(Method):
    """GNN-to-MLP distillation: ``FFG2M(config).fit(graph, teacher=None) -> Student``.

    ``graph`` is a PyG ``Data`` (``x``, ``y``, ``edge_index``, optional split masks), a ``dgl.DGLGraph`` (node data
    ``feat``, ``label``, optional masks) or a :class:`NodeGraph`. ``teacher`` is ``None`` (train the config's
    ``teacher`` architecture: a built-in name or one registered with :func:`condense.graph.teachers.register`), an
    ``nn.Module`` mapping ``(x, edge_index)`` to logits (trained with the protocol unless ``train_teacher=False``)
    or precomputed logits ``[N, K]``. The student mirrors ``config.num_layers``/``config.hidden``. ``run_dir`` holds
    the teacher's and the student's checkpoints (a rerun resumes).
    """

    name = "ffg2m"
    config_class = G2MConfig
    presets = FFG2M_PRESETS
    inputs = ("teacher", "train_teacher")

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0) -> NodeGraph:
        return load_input(name, data_root, train_per_class)

    @classmethod
    def preset_chain(cls, dataset, hint, preset):
        """``ffg2m-<dataset>-<teacher>`` for the run's teacher (where the paper tuned one), then ``preset``."""
        chain = [f"ffg2m-{dataset}-{hint.teacher}"] if dataset is not None else []
        chain = [name for name in chain if name in cls.presets]
        return chain + ([preset] if preset is not None else [])

    def fit(self, graph: Any, *, device: str | torch.device = "auto", seed: int = 0,
            run_dir: str | os.PathLike | None = None, teacher: Any = None, train_teacher: bool = True) -> Student:
        cfg = self.config
        device = resolve_device(device)
        graph = load_input(graph)
        seed_everything(seed)
        problem = prepare_problem(graph.data, cfg, seed=seed, device=device, name=graph.name,
                                  train_per_class=graph.train_per_class)
        identity = {"config": to_dict(cfg), "data": problem.source["fingerprint"], "seed": seed,
                    "train_per_class": graph.train_per_class}
        sub = (lambda part: None) if run_dir is None else (lambda part: f"{run_dir}/{part}")
        t = teach(problem, cfg, teacher, device=device, train=train_teacher, run_dir=sub("teacher"),
                  identity={**identity, "phase": "teacher"})
        seed_everything(seed)
        s = distil(problem, t, cfg, seed=seed, device=device, run_dir=sub(f"student-{cfg.mode}"),
                   identity={**identity, "phase": f"student-{cfg.mode}"})
        return student_artifact(problem, t, s, cfg, seed=seed, device=device, train_per_class=graph.train_per_class)


def student_artifact(problem: NodeProblem, t: TeacherOutcome, s: StudentOutcome, cfg: G2MConfig, *, seed: int,
                     device: torch.device, train_per_class: int | None = None) -> Student:
    """Pack a trained student as a :class:`~condense.artifacts.Student` (weights, config, feature normalisation,
    teacher and student scores)."""
    p = problem
    params = sum(w.numel() for w in s.model.parameters())
    summary = {"teacher": t.arch, "mode": s.mode, "setting": p.setting,
               "teacher_test_acc": round(t.test_acc, 4), "student_test_acc": round(s.test_acc, 4),
               "teacher_train_s": round(t.train_time_s, 2), "student_train_s": round(s.train_time_s, 2)}
    if p.setting == "inductive":
        r = cfg.inductive_rate
        summary.update({"teacher_test_ind_acc": round(t.test_ind_acc, 4), "student_test_ind_acc": round(s.test_ind_acc, 4),
                        "student_production_acc": round((1 - r) * s.test_acc + r * s.test_ind_acc, 4)})
    return Student.create(
        {f"model.{k}": v for k, v in s.model.state_dict().items()},
        method="ffg2m",
        config=to_dict(cfg),
        source=p.source,
        budget={"student_params": params, "teacher_params": t.params, "train_per_class": train_per_class},
        seed=seed,
        device=str(device),
        extra={
            "summary": summary,
            "feature_norm": p.feature_norm,
            "setting": p.setting,
            "split": {"kind": p.split_kind, "train": int(p.split.train.numel()), "val": int(p.split.val.numel()),
                      "test": int(p.split.test.numel()), "test_ind": int(p.test_ind.numel())},
            "teacher": {"arch": t.arch, "val_acc": t.val_acc, "test_acc": t.test_acc, "test_ind_acc": t.test_ind_acc,
                        "best_epoch": t.best_epoch, "epochs_run": t.epochs_run, "train_time_s": t.train_time_s,
                        "params": t.params, "training": t.training},
            "student": {"mode": s.mode, "val_acc": s.val_acc, "test_acc": s.test_acc, "test_ind_acc": s.test_ind_acc,
                        "best_epoch": s.best_epoch, "epochs_run": s.epochs_run, "train_time_s": s.train_time_s,
                        "params": params, "num_layers": s.model.num_layers, "hidden": s.model.hidden,
                        "edge_batch": s.edge_batch},
        },
    )


def load_input(graph: Any, data_root: str | os.PathLike | None = None,
               train_per_class: int | None = None) -> NodeGraph:
    """A :class:`NodeGraph` from a catalogue name, a ``NodeGraph``, a PyG ``Data`` or a DGL graph (named ``graph``)."""
    if isinstance(graph, NodeGraph):
        return graph
    if isinstance(graph, (str, os.PathLike)):
        from condense.data import canonical_name

        return NodeGraph(load_node_graph(str(graph), data_root), canonical_name(str(graph)), train_per_class)
    return NodeGraph(graph, "graph", train_per_class)

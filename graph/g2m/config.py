"""FF-G2M's configuration: one dataclass for the teacher, the student and the protocol (defaults: the Cora / GCN
preset and the reference's fixed settings), and the names of the distillation modes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from condense.config import require
from condense.graph.teachers import TeacherConfig, teacher_names

#: the student's training objectives (see :mod:`condense.graph.g2m.losses`)
MODES: tuple[str, ...] = ("ffg2m", "glnn", "mlp", "lfd_only", "hfd_only")
#: Planetoid citation graphs: public split, row-normalised features
PLANETOID: tuple[str, ...] = ("cora", "citeseer", "pubmed")


@dataclass
class G2MConfig:
    """FF-G2M configuration. Defaults: the Cora / GCN preset and the reference's fixed settings.

    ``num_layers``/``hidden`` describe the teacher and the student alike (GAT: ``hidden`` is the concatenated
    width, ``heads`` heads of ``hidden // heads``); ``mlp_dropout`` acts after the student's hidden ReLUs,
    ``gnn_dropout`` in the teacher. ``lam`` weighs the label loss, ``tau`` is the high-frequency temperature.
    ``split="auto"`` uses the graph's masks when it has them (Planetoid public split, OGB's split), else a random split of
    ``split_train_per_class`` / ``split_val`` / ``split_test`` nodes drawn per seed. ``feature_norm="auto"``
    row-normalises Planetoid features (as DGL's loaders do). ``edge_batch_size=0`` trains the student full batch.

    Large graphs: past ``large_graph_edges`` edges (E+, self-loops included) the teacher trains on neighbour-sampled
    minibatches of ``teacher_batch_size`` seed nodes with ``fanouts`` neighbours per hop and its outputs come from
    layer-wise inference over chunks of ``inference_batch_size`` nodes (``teacher_sampling`` forces either way), and
    a full-batch student (``edge_batch_size=0``) trains on minibatches of ``large_edge_batch_size`` edges.
    """

    teacher: str = "gcn"  # gcn, sage, gat, appnp or a name registered with condense.graph.teachers.register
    mode: Literal["ffg2m", "glnn", "mlp", "lfd_only", "hfd_only"] = "ffg2m"
    num_layers: int = 3
    hidden: int = 512
    mlp_dropout: float = 0.6
    gnn_dropout: float = 0.5
    tau: float = 1.5
    lam: float = 0.4
    lr: float = 0.01
    teacher_lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 500
    patience: int = 50
    heads: int = 4
    attn_dropout: float = 0.3
    negative_slope: float = 0.2
    appnp_k: int = 10
    appnp_alpha: float = 0.1
    setting: Literal["transductive", "inductive"] = "transductive"
    inductive_rate: float = 0.2
    split: Literal["auto", "public", "random"] = "auto"
    split_train_per_class: int = 20
    split_val: int = 500
    split_test: int = 1000
    feature_norm: Literal["auto", "row", "none"] = "auto"
    symmetrise: bool = True
    edge_batch_size: int = 0
    teacher_sampling: Literal["auto", "full", "neighbors"] = "auto"
    fanouts: tuple[int, ...] | None = None  # per teacher layer; None: (15, 10, 5)[:num_layers]
    teacher_batch_size: int = 1024
    inference_batch_size: int = 16384
    large_graph_edges: int = 5_000_000
    large_edge_batch_size: int = 131_072
    checkpoint_every: int = 50

    def __post_init__(self):
        require(self.teacher in teacher_names(), "teacher",
                f"expected one of {', '.join(teacher_names())}, got {self.teacher!r}")
        require(self.mode in MODES, "mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        require(0.0 <= self.lam <= 1.0, "lam", f"must be in [0, 1], got {self.lam}")
        require(self.tau > 0, "tau", f"must be > 0, got {self.tau}")
        require(0.0 <= self.mlp_dropout < 1.0, "mlp_dropout", f"must be in [0, 1), got {self.mlp_dropout}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0.0 < self.inductive_rate < 1.0, "inductive_rate", f"must be in (0, 1), got {self.inductive_rate}")
        for key in ("split_train_per_class", "split_val", "split_test"):
            require(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        require(self.edge_batch_size >= 0, "edge_batch_size", f"must be >= 0 (0 = full batch), got {self.edge_batch_size}")
        require(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        require(isinstance(self.large_edge_batch_size, int) and self.large_edge_batch_size >= 1,
                "large_edge_batch_size", f"must be a positive integer, got {self.large_edge_batch_size!r}")
        self.teacher_config()  # validates the teacher fields (GAT widths, dropouts, ...)

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(arch=self.teacher, num_layers=self.num_layers, hidden=self.hidden,
                             dropout=self.gnn_dropout, heads=self.heads, attn_dropout=self.attn_dropout,
                             negative_slope=self.negative_slope, appnp_k=self.appnp_k, appnp_alpha=self.appnp_alpha,
                             lr=self.teacher_lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs,
                             patience=self.patience, sampling=self.teacher_sampling, fanouts=self.fanouts,
                             batch_size=self.teacher_batch_size, inference_batch_size=self.inference_batch_size,
                             large_graph_edges=self.large_graph_edges)

    def student_edge_batch(self, num_edges: int) -> int:
        """Edges per student step on a graph of ``num_edges`` edges (E+); 0 = full batch."""
        if self.edge_batch_size == 0 and num_edges > self.large_graph_edges:
            return self.large_edge_batch_size
        return self.edge_batch_size

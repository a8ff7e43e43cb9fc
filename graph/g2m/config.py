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
    ``split="auto"`` uses the graph's masks when it has them (Planetoid public split), else a random split of
    ``split_train_per_class`` / ``split_val`` / ``split_test`` nodes drawn per seed. ``feature_norm="auto"``
    row-normalises Planetoid features (as DGL's loaders do). ``edge_batch_size=0`` trains full batch.
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
        self.teacher_config()  # validates the teacher fields (GAT widths, dropouts, ...)

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(arch=self.teacher, num_layers=self.num_layers, hidden=self.hidden,
                             dropout=self.gnn_dropout, heads=self.heads, attn_dropout=self.attn_dropout,
                             negative_slope=self.negative_slope, appnp_k=self.appnp_k, appnp_alpha=self.appnp_alpha,
                             lr=self.teacher_lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs,
                             patience=self.patience)

"""FF-G2M: full-frequency GNN-to-MLP distillation (Wu et al., AAAI 2024), with the GLNN and plain-MLP baselines.

The method and its formulas are in :mod:`condense.graph.g2m.method`; the other modules hold one job each (config,
losses, problem, training, compare, evaluate, speed). The names most users need are importable from here.
"""
from condense.graph.g2m.compare import COMPARE_MODES, Comparison, compare
from condense.graph.g2m.config import MODES, PLANETOID, G2MConfig
from condense.graph.g2m.losses import g2m_loss, hfd_loss, kd_loss, label_loss, lfd_edge_values, lfd_loss
from condense.graph.g2m.method import FFG2M, NodeGraph, student_artifact
from condense.graph.g2m.problem import inductive_split, mask_split, prepare_problem, random_split
from condense.graph.g2m.speed import inference_benchmark, speed, speed_table, synthetic_graph, throughput

__all__ = [
    "FFG2M", "G2MConfig", "NodeGraph", "MODES", "PLANETOID", "COMPARE_MODES", "Comparison", "compare",
    "g2m_loss", "hfd_loss", "kd_loss", "label_loss", "lfd_edge_values", "lfd_loss", "inductive_split", "mask_split",
    "prepare_problem", "random_split", "student_artifact", "inference_benchmark", "speed", "speed_table",
    "synthetic_graph", "throughput",
]

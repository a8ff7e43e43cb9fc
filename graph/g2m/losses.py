"""The training objectives of an MLP student (formulas in :mod:`condense.graph.g2m.method`): the label loss, FF-G2M's
low- and high-frequency distillation terms, GLNN's node-wise KD, and their combination per mode. Every function
takes student logits ``h`` and teacher logits ``z``; the teacher side is detached, so no gradient reaches it."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from condense.graph.g2m.config import MODES

# which distillation terms each mode adds to the label loss (mlp: the label loss alone, without lambda)
MODE_TERMS: dict[str, tuple[str, ...]] = {
    "ffg2m": ("lfd", "hfd"),
    "lfd_only": ("lfd",),
    "hfd_only": ("hfd",),
    "glnn": ("kd",),
    "mlp": (),
}


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Row-wise :math:`\\sum_k P_k (\\log P_k - \\log Q_k)` from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def label_loss(h: Tensor, y: Tensor, train_idx: Tensor) -> Tensor:
    """:math:`L_{CE} = \\mathrm{mean}_{v \\in V_L} -\\log \\mathrm{softmax}(h_v)[y_v]`."""
    return F.cross_entropy(h[train_idx], y[train_idx])


def lfd_edge_values(h: Tensor, z: Tensor, edges_plus: Tensor) -> Tensor:
    """Per-row :math:`\\mathrm{KL}(p_T(v) \\| p_S(u))` for rows ``(u, v)`` of ``edges_plus`` (u = student side)."""
    u, v = edges_plus
    return _kl_rows(F.log_softmax(z.detach(), dim=-1)[v], F.log_softmax(h, dim=-1)[u])


def lfd_loss(h: Tensor, z: Tensor, edges_plus: Tensor) -> Tensor:
    """Low-frequency distillation :math:`\\mathrm{mean}_{(u,v) \\in E^+} \\mathrm{KL}(p_T(v) \\| p_S(u))`;
    ``edges_plus`` must include the self-loops."""
    return lfd_edge_values(h, z, edges_plus).mean()


def hfd_loss(h: Tensor, z: Tensor, edges: Tensor, tau: float) -> Tensor:
    """High-frequency distillation :math:`\\mathrm{mean}_{(u,v) \\in E} \\mathrm{KL}(\\mathrm{softmax}(|z_u - z_v|
    / \\tau) \\| \\mathrm{softmax}(|h_u - h_v| / \\tau))` on raw logits; ``edges`` has no self-loops. Zero (with a
    gradient path) when there are no edges."""
    if edges.shape[1] == 0:
        return h.sum() * 0.0
    u, v = edges
    z = z.detach()
    log_p = F.log_softmax((z[u] - z[v]).abs() / tau, dim=-1)
    log_q = F.log_softmax((h[u] - h[v]).abs() / tau, dim=-1)
    return _kl_rows(log_p, log_q).mean()


def kd_loss(h: Tensor, z: Tensor, nodes: Tensor | None = None) -> Tensor:
    """GLNN's node-wise distillation :math:`\\mathrm{mean}_v \\mathrm{KL}(p_T(v) \\| p_S(v))` (temperature 1),
    over ``nodes`` (default: every row)."""
    if nodes is not None:
        h, z = h[nodes], z[nodes]
    return _kl_rows(F.log_softmax(z.detach(), dim=-1), F.log_softmax(h, dim=-1)).mean()


def g2m_loss(mode: str, h: Tensor, z: Tensor, y: Tensor, train_idx: Tensor, edges_plus: Tensor | None,
             edges: Tensor | None, *, lam: float, tau: float, kd_nodes: Tensor | None = None) -> Tensor:
    """The total loss of ``mode`` (see the module docstring); ``z`` is detached, so the teacher gets no gradient."""
    if mode not in MODE_TERMS:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ce = label_loss(h, y, train_idx)
    if mode == "mlp":
        return ce
    terms = {"lfd": lambda: lfd_loss(h, z, edges_plus), "hfd": lambda: hfd_loss(h, z, edges, tau),
             "kd": lambda: kd_loss(h, z, kd_nodes)}
    return lam * ce + (1.0 - lam) * sum(terms[t]() for t in MODE_TERMS[mode])

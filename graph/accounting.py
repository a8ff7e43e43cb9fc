"""Byte accounting of graph sets and Mirage tree sets (what a distilled set costs against the data it replaces).

Two dtype conventions, each applied identically to both sides:

* ``storage`` (the headline): integer arrays as int64, float features as float32, categorical features as the
  loader stores them (one-hot float32 rows for TU datasets, int64 columns for OGB);
* ``compact``: every integer array at the narrowest integer type holding its range, categorical features as
  narrow integer codes (a one-hot block becomes one code column; an integer-valued column its narrowest type),
  floats as float32.

Original side (the training split): ``edge_index`` (2 x E directed), ``x`` (N x F), ``y`` (G), ``graph_ptr``
(G + 1) and ``edge_attr`` when present. Distilled side: ``tree_ptr``, ``node_code``, ``parent``, ``edge_code``,
``itemset_ptr``, ``itemset_tree``, ``itemset_class``, ``itemset_support`` plus the codebook rows of the codes
that occur (node and edge) and any feature transform the set carries. Ratio = original / distilled.
"""
from __future__ import annotations

import torch

CONVENTIONS = ("storage", "compact")

#: TreeSet integer arrays that the accounting counts (int64 under ``storage``).
TREESET_ARRAYS = ("tree_ptr", "node_code", "parent", "edge_code", "itemset_ptr", "itemset_tree", "itemset_class",
                  "itemset_support", "node_code_degree")
#: TreeSet feature tables (codebooks and the feature transform).
TREESET_CODEBOOKS = ("node_codebook", "edge_codebook", "feature_shift", "feature_scale")


def _check(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def narrow_width(lo: int, hi: int) -> int:
    """Bytes of the narrowest (signed or unsigned) integer type holding every value in [lo, hi]."""
    for nbytes in (1, 2, 4):
        bits = 8 * nbytes
        if (lo >= 0 and hi < 2**bits) or (-(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1)):
            return nbytes
    return 8


def int_array_bytes(t: torch.Tensor, convention: str) -> int:
    """Bytes of an integer array: 8 per entry (``storage``) or the narrowest width for its range (``compact``)."""
    _check(convention)
    if t.numel() == 0:
        return 0
    if convention == "storage":
        return 8 * t.numel()
    return narrow_width(int(t.min()), int(t.max())) * t.numel()


def feature_bytes(x: torch.Tensor | None, convention: str) -> int:
    """Bytes of a feature matrix: as stored (``storage``), or column by column (``compact``): non-integer columns
    4 bytes per row, a one-hot block of {0, 1} columns (each row sums to 1) one narrow code per row, and any
    other integer-valued column its narrowest integer type."""
    _check(convention)
    if x is None or x.numel() == 0:
        return 0
    x = x.reshape(x.shape[0], -1)
    if convention == "storage":
        return x.numel() * x.element_size()
    n = x.shape[0]
    integral = (x == torch.round(x)).all(0) if x.is_floating_point() else torch.ones(x.shape[1], dtype=torch.bool)
    binary = integral & ((x == 0) | (x == 1)).all(0)
    total = 4 * n * int((~integral).sum())
    block = binary.nonzero().squeeze(1)
    if block.numel() > 1 and bool((x[:, block].sum(1) == 1).all()):
        total += narrow_width(0, block.numel() - 1) * n
        integral = integral & ~binary
    for j in integral.nonzero().squeeze(1).tolist():
        total += narrow_width(int(x[:, j].min()), int(x[:, j].max())) * n
    return total


def graph_set_bytes(pack, convention: str) -> dict[str, int]:
    """Bytes of a :class:`condense.graph.nets.PackedGraphs` as the data a distilled set replaces, by array and in total."""
    parts = {
        "edge_index": int_array_bytes(pack.edge_index, convention),
        "x": feature_bytes(pack.x, convention),
        "y": int_array_bytes(pack.y, convention),
        "graph_ptr": int_array_bytes(pack.node_ptr, convention),
        "edge_attr": feature_bytes(pack.edge_attr, convention),
    }
    parts["total"] = sum(parts.values())
    return parts


def per_graph_storage_bytes(pack) -> torch.Tensor:
    """Each graph's own ``storage`` bytes (its x rows, edge columns, edge_attr rows, label and one graph_ptr
    entry); a subset of graphs costs the sum plus 8 (the first graph_ptr entry)."""
    row = pack.x.shape[1] * pack.x.element_size() if pack.x.dim() == 2 else pack.x.element_size()
    erow = 0 if pack.edge_attr is None else pack.edge_attr.reshape(pack.num_edges, -1).shape[1] * pack.edge_attr.element_size()
    return pack.node_counts * row + pack.edge_counts * (16 + erow) + 16


def treeset_bytes(tensors: dict[str, torch.Tensor], convention: str) -> dict[str, int]:
    """Bytes of a tree set's arrays (:data:`TREESET_ARRAYS`) and codebooks (:data:`TREESET_CODEBOOKS`)."""
    parts = {k: int_array_bytes(tensors[k], convention) for k in TREESET_ARRAYS if k in tensors}
    codebook = {k: feature_bytes(tensors[k], convention) for k in TREESET_CODEBOOKS if k in tensors}
    parts.update(codebook)
    parts["codebook"] = sum(codebook.values())
    parts["total"] = sum(v for k, v in parts.items() if k != "codebook")
    return parts

"""Inference throughput of an MLP student against its GNN teacher (the ``condense g2m-speed`` command): nodes per
second of a full-graph forward on the same device, on a dataset or on a seeded random graph."""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from condense.graph.g2m.method import FFG2M, load_input
from condense.graph.g2m.problem import _validate_node_data, as_pyg
from condense.graph.teachers import build_teacher, prepare_graph, sparse_adjacency, student_for
from condense.runtime import Meter, generator, resolve_device, seed_everything


def throughput(model: nn.Module, x: Tensor, graph: Any = None, *, repeats: int = 3, warmup: int = 1,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """Nodes per second of a full-graph eval-mode forward: ``model(x)`` for an MLP, ``model(x, graph)`` for a GNN
    (the neighbourhood aggregation is inside the timed call). Also seconds per pass and peak memory (RSS, and
    CUDA allocations on a GPU) during the timed passes."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = torch.device(device)
    model = model.to(device).eval()
    args = (x,) if graph is None else (x, graph)
    with torch.inference_mode():
        for _ in range(warmup):
            model(*args)
        with Meter(device) as meter:
            for _ in range(repeats):
                out = model(*args)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    del out
    wall = meter.result.wall_s
    return {"nodes_per_s": x.shape[0] * repeats / wall, "seconds_per_pass": wall / repeats,
            "peak_rss_mb": meter.result.peak_rss_mb, "peak_cuda_mb": meter.result.peak_cuda_mb}


def inference_benchmark(student: nn.Module, teacher: nn.Module, x: Tensor, edges_plus: Tensor, *,
                        device: str | torch.device = "cpu", repeats: int = 3, warmup: int = 1,
                        sparse: bool = True) -> dict[str, Any]:
    """Student (features only) vs teacher (features + graph) throughput on the same device, and their ratio.

    With ``sparse`` the built-in GCN, SAGE and APPNP teachers read a CSR adjacency built once beforehand (graph
    preprocessing, not timed), so their aggregation is a sparse matrix product instead of per-edge messages; GAT
    (attention needs per-edge scores) and users' own teachers get the edge list.
    """
    device = torch.device(device)
    x = x.to(device)
    edges_plus = edges_plus.to(device)
    graph = edges_plus
    if sparse and isinstance(teacher, _sparse_teachers()):
        graph = sparse_adjacency(edges_plus, x.shape[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        t = throughput(teacher, x, graph, repeats=repeats, warmup=warmup, device=device)
    s = throughput(student, x, repeats=repeats, warmup=warmup, device=device)
    return {"num_nodes": int(x.shape[0]), "num_edges": int(edges_plus.shape[1]), "num_features": int(x.shape[1]),
            "device": str(device), "student": s, "teacher": t,
            "speedup": s["nodes_per_s"] / t["nodes_per_s"]}


def _sparse_teachers() -> tuple[type, ...]:
    from condense.graph.teachers import GCN, SAGE, APPNPNet

    return (GCN, SAGE, APPNPNet)


def synthetic_graph(num_nodes: int, num_edges: int, num_features: int, num_classes: int, *, seed: int = 0):
    """A random graph for timing: ``num_edges`` undirected random pairs (both directions stored), Gaussian
    features and random labels. Not meant to be learnable."""
    from torch_geometric.data import Data

    for key, value in (("num_nodes", num_nodes), ("num_edges", num_edges), ("num_features", num_features),
                       ("num_classes", num_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    gen = generator(seed, "cpu")
    pairs = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, num_features, generator=gen)
    y = torch.randint(0, num_classes, (num_nodes,), generator=gen)
    data = Data(x=x, y=y, edge_index=torch.cat([pairs, pairs.flip(0)], dim=1))
    data.num_classes = num_classes
    return data


def speed(dataset: Any = "cora", *, preset: str | None = None, data_root=None, device: str = "auto",
          repeats: int = 3, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Inference throughput of the student MLP vs the teacher GNN for ``dataset`` (name, ``Data`` or DGL graph)
    with the preset architecture (``teacher`` and other settings as overrides). Freshly initialised weights: a
    forward's cost does not depend on them."""
    cfg, _ = FFG2M.configure(dataset, preset=preset, **overrides)
    dev = resolve_device(device)
    graph = load_input(dataset, data_root)
    name = graph.name
    data = as_pyg(graph.data)
    x, _, k = _validate_node_data(data.x, data.y, getattr(data, "num_classes", None))
    prepared = prepare_graph(data.edge_index, x.shape[0], symmetrise=cfg.symmetrise)
    del data, graph, dataset  # keep only x and the prepared edges alive while timing
    seed_everything(seed)
    tcfg = cfg.teacher_config()
    result = inference_benchmark(student_for(tcfg, x.shape[1], k, cfg.mlp_dropout),
                                 build_teacher(tcfg, x.shape[1], k), x, prepared.edges_plus, device=dev,
                                 repeats=repeats)
    result.update({"dataset": name, "teacher_arch": cfg.teacher, "num_layers": cfg.num_layers, "hidden": cfg.hidden,
                   "num_classes": k})
    return result


def speed_table(r: Mapping[str, Any]) -> str:
    lines = [f"{r['dataset']}: {r['num_nodes']:,} nodes, {r['num_edges']:,} directed edges incl. self-loops, "
             f"{r['num_features']} features; {r['teacher_arch']} teacher vs MLP student ({r['num_layers']} layers, hidden "
             f"{r['hidden']}), device {r['device']}",
             f"  {'model':<8} {'nodes/s':>14} {'s/pass':>10} {'peak RSS (MB)':>14}"]
    for key in ("teacher", "student"):
        m = r[key]
        lines.append(f"  {key:<8} {m['nodes_per_s']:>14,.0f} {m['seconds_per_pass']:>10.4f} {m['peak_rss_mb']:>14.0f}")
    lines.append(f"  student / teacher throughput: {r['speedup']:.1f}x")
    return "\n".join(lines)

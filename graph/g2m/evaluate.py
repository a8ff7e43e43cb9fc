"""Scoring a stored :class:`~condense.artifacts.Student` (the registry's evaluator for its kind): its accuracy on
its dataset's split from features alone, its inference speed against the teacher, and with baselines the
teacher / MLP / GLNN / mode comparison over seeds."""
from __future__ import annotations

from typing import Any

import torch

from condense.artifacts import Student
from condense.config import apply_overrides, from_dict, to_dict
from condense.graph.g2m.comparison import compare
from condense.graph.g2m.config import G2MConfig
from condense.graph.g2m.inference_speed import inference_benchmark
from condense.graph.g2m.problem import load_node_graph, prepare_problem
from condense.graph.presets import FFG2M_ARCHITECTURE_FIELDS
from condense.graph.teachers import build_teacher, student_for
from condense.registry import run_stats
from condense.runtime import resolve_device


def evaluate_artifact(artifact: Student, data: Any = None, *, model: str | None = None, runs: int | None = None,
                      data_root=None, device: str = "auto", seed: int = 0, baselines: bool = False,
                      **overrides: Any) -> dict[str, Any]:
    """Score a stored student on its dataset's split (rebuilt from the artifact's seed and config), through
    ``Student.predict`` on raw features (no graph). ``data``: the graph (PyG ``Data`` or DGL) for a student trained
    on your own graph. An OGB graph's score adds OGB's Evaluator accuracy (``ogb_acc``). With ``baselines``, also
    retrain the teacher, MLP, GLNN and the artifact's mode over ``runs`` (default 5) seeds ``seed, seed+1, ...``, with
    teacher ``model`` if given.
    """
    from condense.data import canonical_name
    from condense.graph.data import fingerprint
    from condense.graph.g2m.method import NodeGraph
    from condense.graph.g2m.problem import as_pyg
    from condense.graph.ogb import is_ogb

    if not isinstance(artifact, Student):
        raise TypeError(f"evaluate_artifact expects a Student artifact, got {type(artifact).__name__}")
    source = artifact.meta.get("source", {})
    name = source.get("name")
    if data is None:
        try:
            canonical_name(name)
        except (ValueError, TypeError):
            raise ValueError(f"this student was trained on your own graph ({name!r}), not a catalogue dataset: pass "
                             "data=<the graph> to evaluate it") from None
        graph = load_node_graph(name, data_root)
    else:
        graph = as_pyg(data.data if isinstance(data, NodeGraph) else data)
    cfg = apply_overrides(from_dict(G2MConfig, artifact.meta["config"]), overrides)
    art_seed = int(artifact.meta.get("seed") or 0)
    dev = resolve_device(device)
    if source.get("fingerprint") and fingerprint(graph) != source["fingerprint"]:
        raise ValueError(f"the {name} graph given differs from the graph this student was trained on "
                         f"(fingerprint {fingerprint(graph)} vs {source['fingerprint']})")
    problem = prepare_problem(graph, cfg, seed=art_seed, device=torch.device("cpu"), name=name,
                              train_per_class=artifact.meta.get("budget", {}).get("train_per_class"))
    eval_nodes = problem.test_ind if cfg.setting == "inductive" else problem.split.test
    pred = artifact.predict(graph.x[eval_nodes].float())
    acc = float((pred == problem.y[eval_nodes]).float().mean())
    metric = "test_ind" if cfg.setting == "inductive" else "test"
    results: dict[str, Any] = {"distilled": {"accuracy": run_stats([acc]), "evaluated_on": metric}}
    official = ""
    if data is None and is_ogb(name):
        from condense.graph.ogb import node_metric

        scorer = node_metric(name)
        value = scorer.score(pred, problem.y[eval_nodes])
        results["distilled"][scorer.name] = run_stats([value])
        official = f" (OGB Evaluator {scorer.name}: {100 * value:.2f}%)"

    tcfg = cfg.teacher_config()
    k, f_in = problem.num_classes, problem.x.shape[1]
    teacher_net = build_teacher(tcfg, f_in, k)
    teacher_bytes = sum(t.numel() * t.element_size() for t in teacher_net.parameters())
    graph_bytes = problem.full.edges_plus.numel() * problem.full.edges_plus.element_size()
    student_bytes = artifact.nbytes
    timing = inference_benchmark(student_for(tcfg, f_in, k, cfg.mlp_dropout), teacher_net, problem.x,
                                 problem.full.edges_plus, device=dev)
    comparison = None
    if baselines:
        modes = tuple(dict.fromkeys(("mlp", "glnn", cfg.mode)))
        comparison = compare(NodeGraph(graph, name, artifact.meta.get("budget", {}).get("train_per_class")),
                             teacher=model or cfg.teacher, modes=modes, runs=runs or 5, seed=seed, device=device,
                             **_config_overrides(cfg, model))
        results.update(comparison.summary["results"])
    out = {
        "kind": "Student", "method": "ffg2m", "dataset": name, "model": f"mlp-{cfg.num_layers}x{cfg.hidden}",
        "teacher": cfg.teacher, "mode": cfg.mode, "setting": cfg.setting,
        "results": results,
        "compression": {"samples": None, "distilled_samples": None, "full_samples": None,
                        "distilled_bytes": student_bytes, "full_bytes": teacher_bytes + graph_bytes,
                        "bytes": (teacher_bytes + graph_bytes) / student_bytes,
                        "note": "full = teacher parameters + the graph's edge list the teacher needs at inference"},
        "timing": {"student_nodes_per_s": timing["student"]["nodes_per_s"],
                   "teacher_nodes_per_s": timing["teacher"]["nodes_per_s"], "speedup": timing["speedup"],
                   "device": timing["device"]},
    }
    lines = [f"{name}: stored {cfg.mode} student ({cfg.teacher} teacher, {cfg.setting}) {metric} accuracy "
             f"{100 * acc:.2f}%{official}",
             f"  inference: student {timing['student']['nodes_per_s']:,.0f} nodes/s vs teacher "
             f"{timing['teacher']['nodes_per_s']:,.0f} nodes/s ({timing['speedup']:.1f}x) on {timing['device']}"]
    if comparison is not None:
        lines.append(comparison.table())
    out["table"] = "\n".join(lines)
    return out


def _config_overrides(cfg: G2MConfig, model: str | None) -> dict[str, Any]:
    """The artifact's config as overrides for :func:`compare`; a different teacher ``model`` takes its preset."""
    values = to_dict(cfg)
    if model is not None and model != cfg.teacher:
        arch_fields = {"teacher", "lr", *FFG2M_ARCHITECTURE_FIELDS}
        values = {k: v for k, v in values.items() if k not in arch_fields}
    values.pop("teacher", None)
    return values

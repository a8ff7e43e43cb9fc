"""Graph verbs for the ``condense`` command: ``g2m`` (train and compare GNN-to-MLP students), ``g2m-speed``
(inference throughput, student vs teacher) and ``trees-speed`` (Mirage's tree-id throughput on random graph
sets of growing size). Heavy imports happen inside the handlers."""
from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    """Add ``condense g2m``, ``condense g2m-speed`` and ``condense trees-speed`` to the CLI (see
    ``condense.registry.CLI_HOOKS``)."""
    from condense.cli import add_common

    p = subparsers.add_parser(
        "g2m", help="GNN-to-MLP distillation (FF-G2M, GLNN, MLP): train a student, optionally compare over seeds",
        description="Train a GNN teacher and distil an MLP student (FF-G2M, Wu et al., AAAI 2024). With --compare, "
                    "report teacher / MLP / GLNN / FF-G2M test accuracy (mean ± population std) over --runs seeds "
                    "starting at --seed. The student (of the first seed) is written to OUT/ffg2m.safetensors.")
    add_common(p, default_dataset="cora")
    _set_seed_default(p, 2022)
    p.add_argument("--teacher", default=None, help="teacher GNN: gcn, sage, gat or appnp (default: gcn)")
    p.add_argument("--mode", default=None, help="ffg2m, glnn, mlp, lfd_only or hfd_only (default: ffg2m)")
    p.add_argument("--preset", default=None, help="a named preset (default: ffg2m-<dataset>-<teacher> when it exists)")
    p.add_argument("--setting", default=None, choices=("transductive", "inductive"),
                   help="transductive (default) or inductive (20%% of the test nodes held out of training)")
    p.add_argument("--compare", action="store_true", help="train teacher, MLP, GLNN and --mode over --runs seeds")
    p.add_argument("--runs", type=int, default=5, help="seeds for --compare (default: 5, as the paper)")
    p.set_defaults(func=cmd_g2m)

    q = subparsers.add_parser(
        "g2m-speed", help="inference throughput (nodes/s) of an MLP student vs its GNN teacher",
        description="Time full-graph inference of the teacher GNN (neighbourhood aggregation included) and of the "
                    "MLP student (features only) with the preset architecture, on a dataset or on a random graph "
                    "(--nodes/--edges/--features). Weights are freshly initialised: cost does not depend on them.")
    add_common(q, default_dataset="cora", out=False)
    q.add_argument("--teacher", default=None, help="teacher GNN: gcn, sage, gat or appnp (default: gcn)")
    q.add_argument("--preset", default=None, help="a named preset for the architecture")
    q.add_argument("--nodes", type=int, default=None, help="time a random graph with this many nodes instead")
    q.add_argument("--edges", type=int, default=None, help="random graph: undirected edges (stored both ways)")
    q.add_argument("--features", type=int, default=128, help="random graph: feature width (default: 128)")
    q.add_argument("--classes", type=int, default=7, help="random graph: classes (default: 7)")
    q.add_argument("--repeats", type=int, default=3, help="timed forward passes per model (default: 3)")
    q.set_defaults(func=cmd_speed)

    t = subparsers.add_parser(
        "trees-speed", help="Mirage tree-id throughput on random molecule-like graph sets of growing size",
        description="Time the exact computation-tree relabelling (condense.graph.trees.computation_trees) on random graph "
                    "sets (random recursive trees plus chords, uniform labels) for every --graphs x --depths "
                    "pair; print seconds, peak RSS and nanoseconds per (directed edge x round), which stays "
                    "roughly flat when the cost grows linearly with edges times depth.")
    add_common(t, dataset=False, out=False)
    t.add_argument("--graphs", default="25000,50000,100000,200000", help="comma-separated graph counts")
    t.add_argument("--nodes-per-graph", type=int, default=30, help="nodes per graph (default: 30, about NCI1's)")
    t.add_argument("--extra-edges", type=int, default=2, help="chords per graph beyond its tree (default: 2)")
    t.add_argument("--labels", type=int, default=20, help="node labels (default: 20)")
    t.add_argument("--depths", default="1,2,3", help="comma-separated depths L (default: 1,2,3)")
    t.add_argument("--plot", default=None, metavar="PNG", help="also draw seconds against edges x depth")
    t.set_defaults(func=cmd_trees_speed)


def _set_seed_default(parser: argparse.ArgumentParser, seed: int) -> None:
    """FF-G2M's seed base is 2022 (seeds 2022..2026); say so in --help too."""
    for action in parser._actions:
        if action.dest == "seed":
            action.default = seed
            action.help = f"random seed; with --compare the first of --runs consecutive seeds (default: {seed})"


def cmd_g2m(args: argparse.Namespace) -> None:
    from pathlib import Path

    from condense.cli import _overrides, emit
    from condense.graph import g2m

    overrides = dict(_overrides(args))
    if args.setting is not None:
        overrides["setting"] = args.setting
    out = Path(args.out)
    if args.compare:
        result = g2m.compare(args.dataset, teacher=args.teacher, modes=tuple(dict.fromkeys(
                                 ("mlp", "glnn", args.mode or "ffg2m"))),
                             runs=args.runs, seed=args.seed, data_root=args.data_root, device=args.device,
                             preset=args.preset, train_per_class=args.train_per_class,
                             **({"mode": args.mode} if args.mode else {}), **overrides)
        path = result.student.save(out / "ffg2m.safetensors")
        payload = {**result.summary, "artifact": str(path)}
        _write_json(out / "compare.json", payload)
        emit(args, payload, result.table() + f"\nstudent (seed {args.seed}) written to {path}")
        return
    artifact = g2m.run(args.dataset, data_root=args.data_root, device=args.device, seed=args.seed,
                       train_per_class=args.train_per_class, out=str(out), teacher=args.teacher, mode=args.mode,
                       preset=args.preset, **overrides)
    path = artifact.save(out / "ffg2m.safetensors")
    summary = artifact.meta["extra"]["summary"]
    human = [f"g2m: wrote {path}", f"  {artifact!r}"] + [f"  {k}: {v}" for k, v in summary.items()]
    emit(args, {"artifact": str(path), "summary": summary, "meta": artifact.meta}, "\n".join(human))


def cmd_speed(args: argparse.Namespace) -> None:
    from condense.cli import CliError, _overrides, emit
    from condense.graph import g2m

    overrides = dict(_overrides(args))
    if (args.nodes is None) != (args.edges is None):
        raise CliError("--nodes and --edges go together (a random graph needs both)")
    label = None
    if args.nodes is not None:  # built inline so no reference outlives the conversion inside speed()
        label = f"random graph ({args.nodes:,} nodes, {args.edges:,} undirected edges)"
    result = g2m.speed(args.dataset if label is None else
                       g2m.synthetic_graph(args.nodes, args.edges, args.features, args.classes, seed=args.seed),
                       teacher=args.teacher, preset=args.preset, data_root=args.data_root, device=args.device,
                       repeats=args.repeats, seed=args.seed, **overrides)
    if label:
        result["dataset"] = label
    emit(args, result, g2m.speed_table(result))


def _int_list(text: str, name: str) -> list[int]:
    from condense.cli import CliError
    from condense.config import parse_value

    try:
        values = list(parse_value(tuple[int, ...], text, name))
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise CliError(f"{name} must be comma-separated positive integers, got {text!r}")
    return values


def cmd_trees_speed(args: argparse.Namespace) -> None:
    from condense.cli import emit
    from condense.runtime import Meter, resolve_device
    from condense.graph.trees import computation_trees, synthetic_graph_set

    device = resolve_device(args.device)
    graphs, depths = _int_list(args.graphs, "--graphs"), _int_list(args.depths, "--depths")
    # one untimed small call first: the first call pays for kernel set-up, not for the data
    warm = synthetic_graph_set(100, args.nodes_per_graph, seed=args.seed, device=device)
    computation_trees(warm[0], warm[1], max(depths), warm[2])
    rows = []
    for g in graphs:
        node_code, edge_index, edge_code = synthetic_graph_set(
            g, args.nodes_per_graph, extra_edges=args.extra_edges, node_labels=args.labels, seed=args.seed,
            device=device)
        edges = int(edge_index.shape[1])
        for depth in depths:
            with Meter(device) as meter:  # the meter synchronises CUDA before reading the clock
                trees = computation_trees(node_code, edge_index, depth, edge_code)
            wall = meter.result.wall_s
            rows.append({"graphs": g, "nodes": int(node_code.numel()), "directed_edges": edges, "depth": depth,
                         "seconds": wall, "peak_rss_mb": meter.result.peak_rss_mb,
                         "peak_cuda_mb": meter.result.peak_cuda_mb, "distinct_trees": trees.num_trees,
                         "ns_per_edge_round": 1e9 * wall / max(edges * depth, 1)})
            del trees
        del node_code, edge_index, edge_code
    payload = {"device": str(device), "nodes_per_graph": args.nodes_per_graph, "extra_edges": args.extra_edges,
               "labels": args.labels, "rows": rows}
    lines = [f"tree ids on {device}: random graphs of {args.nodes_per_graph} nodes (+{args.extra_edges} chords), "
             f"{args.labels} node labels",
             f"{'graphs':>8} {'nodes':>10} {'edges':>11} {'L':>2} {'seconds':>8} {'peak MB':>8} {'trees':>9} "
             f"{'ns/(edge*L)':>11}"]
    for r in rows:
        lines.append(f"{r['graphs']:>8} {r['nodes']:>10} {r['directed_edges']:>11} {r['depth']:>2} {r['seconds']:>8.2f} "
                     f"{r['peak_rss_mb'] or float('nan'):>8.0f} {r['distinct_trees']:>9} {r['ns_per_edge_round']:>11.0f}")
    if args.plot:
        payload["plot"] = _plot_trees_speed(rows, args.plot)
        lines.append(f"plot: {payload['plot']}")
    emit(args, payload, "\n".join(lines))


def _plot_trees_speed(rows: list[dict], path: str) -> str:
    from pathlib import Path

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from condense.artifacts import atomic_target

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for depth in sorted({r["depth"] for r in rows}):
        pts = sorted((r["directed_edges"] * r["depth"], r["seconds"]) for r in rows if r["depth"] == depth)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"L = {depth}")
    work = [r["directed_edges"] * r["depth"] for r in rows]
    rate = sorted(r["seconds"] / (r["directed_edges"] * r["depth"]) for r in rows)[len(rows) // 2]
    span = [min(work), max(work)]
    ax.plot(span, [rate * w for w in span], "k--", lw=1, label="linear (median rate)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decade labels only: minor ones overlap
    ax.set_xlabel("directed edges x depth L")
    ax.set_ylabel("seconds")
    ax.set_title("Mirage tree ids: time vs edges x depth")
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    with atomic_target(out) as tmp:  # creates the folder; a crash never leaves half a PNG
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return str(out)


def _write_json(path, payload) -> None:
    import json

    from condense.cli import _json_default

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")

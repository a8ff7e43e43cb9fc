"""Graph verbs for the ``condense`` command: ``g2m`` (an alias of ``distill ffg2m``, kept for the command users
know), ``g2m-speed`` (inference throughput, student vs teacher) and ``trees-speed`` (Mirage's tree-id throughput
on random graph sets of growing size). Heavy imports happen inside the handlers."""
from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    """Add ``condense g2m``, ``condense g2m-speed`` and ``condense trees-speed`` to the CLI (see
    ``condense.registry.CLI_HOOKS``)."""
    from condense import registry
    from condense.cli import add_common, add_method_parser

    if registry.get("ffg2m").available():
        add_method_parser(subparsers, registry.get("ffg2m"), "g2m", alias_of="distill ffg2m")

    q = subparsers.add_parser(
        "g2m-speed", help="inference throughput (nodes/s) of an MLP student vs its GNN teacher",
        description="Time full-graph inference of the teacher GNN (neighbourhood aggregation included) and of the "
                    "MLP student (features only) with the preset architecture, on a dataset or on a random graph "
                    "(--nodes/--edges/--features). Weights are freshly initialised: cost does not depend on them.")
    add_common(q, default_dataset="cora", out=False)
    q.add_argument("--teacher", default=None, help="teacher GNN: gcn, sage, gat, appnp or a registered name (default: gcn)")
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


def cmd_speed(args: argparse.Namespace) -> None:
    from condense.cli import CliError, _overrides, emit
    from condense.graph import g2m

    overrides = dict(_overrides(args))
    if args.teacher is not None:
        overrides["teacher"] = args.teacher
    if (args.nodes is None) != (args.edges is None):
        raise CliError("--nodes and --edges go together (a random graph needs both)")
    label = None
    if args.nodes is not None:  # built inline so no reference outlives the conversion inside speed()
        label = f"random graph ({args.nodes:,} nodes, {args.edges:,} undirected edges)"
    result = g2m.speed(args.dataset if label is None else
                       g2m.synthetic_graph(args.nodes, args.edges, args.features, args.classes, seed=args.seed),
                       preset=args.preset, data_root=args.data_root, device=args.device, repeats=args.repeats,
                       seed=args.seed, **overrides)
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
    from condense.graph.trees import computation_trees, synthetic_graph_set
    from condense.runtime import Meter, resolve_device

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

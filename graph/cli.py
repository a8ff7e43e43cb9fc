"""Graph verbs for the ``condense`` command: ``g2m`` (train and compare GNN-to-MLP students) and ``g2m-speed``
(inference throughput, student vs teacher). Heavy imports happen inside the handlers."""
from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    """Add ``condense g2m`` and ``condense g2m-speed`` to the CLI (see ``condense.registry.CLI_HOOKS``)."""
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


def _set_seed_default(parser: argparse.ArgumentParser, seed: int) -> None:
    """FF-G2M's seed base is 2022 (seeds 2022..2026); say so in --help too."""
    for action in parser._actions:
        if action.dest == "seed":
            action.default = seed
            action.help = f"random seed; with --compare the first of --runs consecutive seeds (default: {seed})"


def cmd_g2m(args: argparse.Namespace) -> None:
    from pathlib import Path

    from condense.cli import _overrides, emit
    from graph import g2m

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
    from graph import g2m

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


def _write_json(path, payload) -> None:
    import json

    from condense.cli import _json_default

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")

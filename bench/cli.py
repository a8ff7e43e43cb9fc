"""``condense bench ...``: run suites, render reports, list suites, merge shard results.

Loaded through ``condense.registry.CLI_HOOKS``; only argparse is imported at module level, so ``condense
--help`` stays fast. Every verb takes ``--json`` (one JSON object on stdout, text on stderr).
"""
from __future__ import annotations

import argparse
import json


def cmd_run(args: argparse.Namespace) -> None:
    from condense.bench.runner import Summary, run_suite
    from condense.bench.suites import get_suite
    from condense.cli import emit

    suite = get_suite(args.suite)
    summary = run_suite(suite, args.out, device=args.device, data_root=args.data_root, shard=args.shard,
                        isolation="inline" if args.in_process else "process", work_dir=args.work_dir,
                        retry_failed=args.retry_failed, plugins=args.plugin, timeout=args.timeout)
    from condense import distributed

    if distributed.active():  # one summary for the whole run: every rank's counts added up
        summary = Summary.combined(distributed.gather_objects(summary))
    emit(args, summary.as_dict(), summary.text())


def cmd_report(args: argparse.Namespace) -> None:
    from condense.bench.report import render
    from condense.cli import emit

    summary = render(args.results, args.out, plots_enabled=not args.no_plots)
    human = [f"wrote {summary['report']} ({summary['cells']} cells: {summary['ok']} ok, {summary['failed']} failed)"]
    human += [f"  {p}" for p in summary["plots"]]
    emit(args, summary, "\n".join(human))


def cmd_merge(args: argparse.Namespace) -> None:
    from condense.bench import results
    from condense.cli import emit

    merged = results.merge(args.results)
    path = results.write(args.out, merged)
    emit(args, {"results": str(path), "cells": len(merged), "sources": list(args.results)},
         f"wrote {path}: {len(merged)} cells from {len(args.results)} file(s)")


def cmd_list(args: argparse.Namespace) -> None:
    from condense import registry
    from condense.bench.execute import load_plugins
    from condense.bench.suites import SUITES, expand, format_kv, get_suite
    from condense.cli import emit

    load_plugins(args.plugin)
    suites = [get_suite(args.suite)] if args.suite else list(SUITES.values())
    payload, lines = [], []
    for suite in suites:
        cells = expand(suite)
        grids = []
        for grid in suite.grids:
            try:
                available = registry.get(grid.method).available()
            except ValueError:
                available = False
            grids.append({"method": grid.method, "label": grid.label or grid.method, "available": available,
                          "datasets": list(grid.datasets), "budgets": list(grid.budgets),
                          "variants": list(grid.variants), "seeds": list(grid.seeds), "models": list(grid.models),
                          "runs": grid.runs, "config": grid.config, "evaluation": grid.evaluation,
                          "train_per_class": grid.train_per_class,
                          "prepare": [{"name": p.name, "argv": list(p.argv)} for p in grid.prepare],
                          "notes": grid.notes, "ranks": grid.ranks, "on_cpu": grid.on_cpu})
        entry = {"name": suite.name, "description": suite.description, "cells": len(cells), "grids": grids}
        lines.append(f"{suite.name}: {suite.description} ({len(cells)} cells)")
        for g in grids:
            state = "" if g["available"] else "  [not installed yet: skipped]"
            lines.append(f"  {g['label']}: {', '.join(g['datasets'])}; budgets "
                         f"{'; '.join(format_kv(b) for b in g['budgets']) or '-'}; seeds "
                         f"{','.join(map(str, g['seeds']))}{state}")
            details = [f"config {format_kv(g['config'])}" if g["config"] else "",
                       f"variants {'; '.join(format_kv(v) for v in g['variants'])}" if any(g["variants"]) else "",
                       f"models {','.join(m or 'default' for m in g['models'])}" if any(g["models"]) else "",
                       f"runs {g['runs']}" if g["runs"] else "",
                       f"evaluation {format_kv(g['evaluation'])}" if g["evaluation"] else "",
                       f"train_per_class {g['train_per_class']}" if g["train_per_class"] else "",
                       f"ranks {g['ranks']} (torchrun)" if g["ranks"] > 1 else "",
                       f"on a CPU: {json.dumps(g['on_cpu'], sort_keys=True)}" if g["on_cpu"] else "",
                       *(f"prepare {p['name']}: condense {' '.join(p['argv'])}" for p in g["prepare"]), g["notes"]]
            lines += [f"      {d}" for d in details if d]
        if args.suite:
            entry["cell_list"] = [c.as_dict() for c in cells]
            lines += [f"    [{c.index}] {c.describe()}" for c in cells]
        payload.append(entry)
    emit(args, {"suites": payload}, "\n".join(lines))


def add_commands(subparsers) -> None:
    """Add ``condense bench {run,report,list,merge}``."""
    from condense.cli import add_common, shard_arg

    p = subparsers.add_parser("bench", help="run benchmark suites and render reports",
                              description="The evaluation bench: suites of (method, dataset, budget, seed) cells, "
                                          "resumable JSON-lines results, Markdown + PNG reports.")
    sub = p.add_subparsers(dest="bench_verb", metavar="COMMAND")

    def no_verb(args: argparse.Namespace) -> None:
        from condense.cli import CliError

        raise CliError("choose a bench command: run, report, list or merge (see condense bench --help)")

    p.set_defaults(func=no_verb)

    r = sub.add_parser("run", help="run a suite (or one shard of it), appending one JSON line per cell",
                       description="Run every cell of SUITE not yet in the results file; failed cells are "
                                   "recorded with their error and the suite goes on.")
    r.add_argument("suite", metavar="SUITE", help="a named suite (see `condense bench list`) or a suite .json file")
    r.add_argument("--out", required=True, metavar="RESULTS.jsonl", help="results file (appended to; resumes)")
    r.add_argument("--shard", type=shard_arg, default=None, metavar="i/n",
                   help="run only shard i of n (1-based, as `condense buffer --shard`); merge the shards' files with "
                        "`condense bench merge`")
    r.add_argument("--work-dir", default=None, metavar="DIR",
                   help="artifacts, checkpoints and preparation outputs (default: RESULTS.runs beside the file)")
    r.add_argument("--retry-failed", action="store_true", help="run cells recorded as failed again")
    r.add_argument("--in-process", action="store_true",
                   help="run cells in this process instead of one worker process per cell")
    r.add_argument("--timeout", type=float, default=None, metavar="S", help="stop a cell after S seconds "
                                                                            "(recorded as failed)")
    r.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers extra methods/evaluators (repeatable)")
    add_common(r, dataset=False, out=False, settings=False, log=True)
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="render a Markdown report with PNG plots from results files")
    rep.add_argument("results", nargs="+", metavar="RESULTS.jsonl", help="one or more results files (merged)")
    rep.add_argument("--out", required=True, metavar="REPORT_DIR", help="folder for report.md and the PNGs")
    rep.add_argument("--no-plots", action="store_true", help="tables only")
    add_common(rep, dataset=False, out=False, device=False, settings=False, data_root=False)
    rep.set_defaults(func=cmd_report)

    lst = sub.add_parser("list", help="list the suites, or one suite's cells")
    lst.add_argument("suite", nargs="?", metavar="SUITE", help="show this suite's cells")
    lst.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                     help="import a module or .py file that registers extra methods (repeatable)")
    add_common(lst, dataset=False, out=False, device=False, settings=False, data_root=False)
    lst.set_defaults(func=cmd_list)

    m = sub.add_parser("merge", help="merge results files (e.g. shards) into one, one record per cell")
    m.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    m.add_argument("--out", required=True, metavar="MERGED.jsonl")
    add_common(m, dataset=False, out=False, device=False, settings=False, data_root=False)
    m.set_defaults(func=cmd_merge)

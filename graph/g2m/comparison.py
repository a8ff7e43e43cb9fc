"""Teacher, plain MLP, GLNN and FF-G2M over seeds (the papers' comparison), and the ``condense distill ffg2m
--compare`` command (also ``condense g2m --compare``)."""
from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from condense import distributed
from condense.artifacts import Student
from condense.config import to_dict
from condense.graph.g2m.config import MODES
from condense.graph.g2m.method import FFG2M, load_input, student_artifact
from condense.graph.g2m.problem import prepare_problem
from condense.graph.g2m.training import distil, teach
from condense.progress import quiet as quiet_mode
from condense.registry import run_stats
from condense.runtime import resolve_device, seed_everything

#: the students ``--compare`` trains besides the teacher
COMPARE_MODES: tuple[str, ...] = ("mlp", "glnn", "ffg2m")


@dataclass
class Comparison:
    """Teacher / student accuracies and training times over seeds (``summary``), and the student of the first seed
    for the requested mode (``student``)."""

    summary: dict[str, Any]
    student: Student | None = None

    def table(self) -> str:
        s = self.summary
        head = f"{s['dataset']} / {s['teacher']} teacher / {s['setting']} / seeds {s['seeds']}"
        metric = "test_ind accuracy (%)" if s["setting"] == "inductive" else "test accuracy (%)"
        lines = [head, f"  {'model':<10} {metric:>22}   {'train time (s)':>16}   {'epochs':>7}"]
        for key, r in s["results"].items():
            acc, tt = r["accuracy"], r["train_time_s"]
            lines.append(f"  {key:<10} {100 * acc['mean']:>14.2f} ± {100 * acc['std']:<5.2f}   "
                         f"{tt['mean']:>9.1f} ± {tt['std']:<5.1f}   {r['epochs']['mean']:>7.0f}")
        return "\n".join(lines)


def compare(data: Any = "cora", *, modes: Sequence[str] = COMPARE_MODES, runs: int = 5, seed: int = 0,
            data_root=None, device: str = "auto", preset: str | None = None, config: Any = None,
            train_per_class: int | None = None, keep_mode: str | None = None, quiet: bool | None = None,
            **overrides: Any) -> Comparison:
    """Teacher and students of ``modes`` over seeds ``seed + 0 .. runs-1`` (each run seeds everything, redraws
    random splits, retrains the teacher, then trains each student from the same seed). The FF-G2M paper reports
    seeds 2022..2026.

    ``data``, ``preset``, ``config`` and ``overrides`` (``teacher``, ``mode``, any :class:`G2MConfig` field) as in
    ``condense.distill("ffg2m", ...)``. Accuracy is test accuracy at the best-validation epoch (held-out accuracy
    when inductive), reported as mean ± population std; training times are wall seconds. The student of
    ``keep_mode`` (default: the config's mode when it is in ``modes``) from the first seed is returned as an
    artifact.
    """
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {', '.join(MODES)}, got {list(modes)}")
    cfg, _ = FFG2M.configure(data, preset=preset, config=config, **overrides)
    keep_mode = keep_mode or (cfg.mode if cfg.mode in modes else None)
    dev = resolve_device(device)
    seeds = [seed + i for i in range(runs)]
    kept = None
    local: list[dict[str, tuple]] = []  # per seed: {model: (acc, test_tran, val, epochs, seconds)}
    with quiet_mode(quiet) if quiet is not None else nullcontext():
        graph = load_input(data, data_root, train_per_class)
        name = graph.name
        for s in distributed.take(seeds):  # under torchrun each rank trains its share of the seeds
            seed_everything(s)
            problem = prepare_problem(graph.data, cfg, seed=s, device=dev, name=name,
                                      train_per_class=graph.train_per_class)
            t = teach(problem, cfg, device=dev)
            row = {"teacher": (t.test_ind_acc if t.test_ind_acc is not None else t.test_acc, t.test_acc, t.val_acc,
                               t.epochs_run, t.train_time_s)}
            for m in modes:
                seed_everything(s)
                o = distil(problem, t, cfg, mode=m, seed=s, device=dev)
                row[m] = (o.headline(), o.test_acc, o.val_acc, o.epochs_run, o.train_time_s)
                if s == seeds[0] and m == keep_mode:
                    kept = student_artifact(problem, t, o, replace(cfg, mode=m), seed=s, device=dev,
                                            train_per_class=graph.train_per_class)
            local.append(row)
    rows = distributed.gather_in_order(local, len(seeds))
    results = {k: {"acc": [r[k][0] for r in rows], "tran": [r[k][1] for r in rows], "val": [r[k][2] for r in rows],
                   "epochs": [r[k][3] for r in rows], "time": [r[k][4] for r in rows]} for k in ("teacher", *modes)}
    summary: dict[str, Any] = {"dataset": name, "teacher": cfg.teacher, "setting": cfg.setting, "seeds": seeds,
                               "config": to_dict(cfg), "results": {}}
    for key, r in results.items():
        entry = {"accuracy": run_stats(r["acc"]), "val_accuracy": run_stats(r["val"]), "train_time_s": run_stats(r["time"]),
                 "epochs": run_stats(r["epochs"])}
        if cfg.setting == "inductive":
            rate = cfg.inductive_rate
            entry["test_tran"] = run_stats(r["tran"])
            entry["production"] = run_stats([(1 - rate) * a + rate * b for a, b in zip(r["tran"], r["acc"])])
        summary["results"][key] = entry
    return Comparison(summary, kept)


def cli_distill(args: argparse.Namespace, entry, kwargs: dict[str, Any]) -> None:
    """``condense distill ffg2m`` (alias ``condense g2m``): one student, or with ``--compare`` the comparison over
    ``--runs`` seeds, writing ``OUT/ffg2m.safetensors`` (the first seed's student) and ``OUT/compare.json``."""
    from condense.artifacts import write_atomic
    from condense.cli import _json_default, distill_and_emit, emit

    compare_flag, runs = kwargs.pop("compare", False), kwargs.pop("runs", None)
    if not compare_flag:
        if runs is not None:
            raise ValueError("--runs counts the seeds of --compare; add --compare")
        return distill_and_emit(args, entry, kwargs)
    mode = kwargs.get("mode") or "ffg2m"
    result = compare(args.dataset, modes=tuple(dict.fromkeys(("mlp", "glnn", mode))), runs=runs or 5,
                     seed=args.seed, data_root=args.data_root, device=args.device,
                     train_per_class=args.train_per_class, **kwargs)
    out = Path(args.out)
    path = out / "ffg2m.safetensors"
    payload = {**result.summary, "artifact": str(path)}
    if distributed.is_main():  # rank 0 trained the first seed and holds its student
        result.student.save(path)
        write_atomic(out / "compare.json", (json.dumps(payload, indent=2, default=_json_default) + "\n").encode())
    emit(args, payload, result.table() + f"\nstudent (seed {args.seed}) written to {path}")

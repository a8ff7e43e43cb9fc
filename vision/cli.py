"""Extra ``condense`` verbs of the vision package: ``buffer`` (expert trajectories) and ``mtt-memory``.

Only argparse is imported here; the handlers import torch and the methods when they run.

``condense buffer --dataset mnist --experts N --epochs E --out BUF_DIR`` trains (or resumes) an expert
buffer; ``--shard i/n`` or ``--experts-range a:b`` trains one share (``torchrun`` ranks are picked up
automatically); ``condense buffer --merge SHARE1 SHARE2 ... --out BUF_DIR`` combines shares. Shards are
numbered from 1, as in ``condense bench run`` (:mod:`condense.shard`).

``condense mtt-memory --dataset mnist --ipc 1 --buffer BUF_DIR --syn-steps 10 20 40`` measures the peak memory
of one distillation iteration per N, with and without ``inner_checkpoint`` (each in a fresh process).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _range(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--experts-range expects a:b (e.g. 0:50), got {text!r}") from None
    return a, b


def cmd_buffer(args: argparse.Namespace) -> None:
    from condense.cli import CliError, _overrides, emit
    from condense.vision.experts import buffer_config, generate_buffer, merge_buffers, shard_indices

    if args.merge:
        buf = merge_buffers(args.merge, args.out)
        emit(args, {"buffer": str(buf.folder), "experts": buf.indices, "manifest": buf.manifest},
             f"merged {len(args.merge)} share(s) into {buf.folder}: {buf.describe()}")
        return
    if not args.dataset:
        raise CliError("condense buffer needs --dataset (or --merge SHARES ...)")
    overrides: dict = dict(_overrides(args))
    for flag, key in (("experts", "experts"), ("epochs", "epochs"), ("model", "model"), ("optimizer", "optimizer"),
                      ("lr", "lr"), ("grad_penalty", "grad_penalty"), ("batch", "batch")):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.loss_clipping:
        overrides["loss_clipping"] = True
    if args.zca:
        overrides["zca"] = True
    config = buffer_config(overrides, preset="ast" if args.ast else "mtt")

    from condense.cli import data_options
    from condense.runtime import Meter
    from condense.vision.data import load_images

    data = load_images(args.dataset, data_root=args.data_root, train_per_class=args.train_per_class, seed=args.seed,
                       **data_options(args))
    indices = shard_indices(config.experts, shard=args.shard, experts_range=args.experts_range)
    from condense import distributed
    from condense.vision.experts import SHARD_PATTERN

    on_disk = [i for i in indices if (Path(args.out) / SHARD_PATTERN.format(i)).is_file()]
    with Meter() as meter:
        buf = generate_buffer(data, config, args.out, seed=args.seed, device=args.device, indices=indices)
    # every rank's experts: those trained now and those a previous run had finished
    on_disk = sorted(i for part in distributed.gather_objects(on_disk) for i in part)
    indices = sorted(i for part in distributed.gather_objects(indices) for i in part if i not in on_disk)
    records = []
    for i in indices:
        from condense.artifacts import read_file

        _, meta = read_file(buf.folder / f"expert-{i:05d}.safetensors")
        records.append({"expert": i, "test_acc": meta.get("test_acc"), "wall_s": meta.get("wall_s")})
    accs = [r["test_acc"] for r in records if r["test_acc"] is not None]
    human = [f"buffer {buf.folder}: {buf.describe()}",
             f"  this run: {len(indices)} expert(s) {_compact(indices)}, {meter.result.wall_s:.1f} s"
             if indices else "  this run: no experts to train",
             *([f"  already on disk before this run: {len(on_disk)} expert(s) {_compact(on_disk)}"] if on_disk else []),
             f"  experts on disk: {buf.num_experts} of {buf.manifest['experts']}"]
    if accs:
        human.append(f"  final test accuracy of this run's experts: mean {100 * sum(accs) / len(accs):.2f}%, "
                     f"min {100 * min(accs):.2f}%, max {100 * max(accs):.2f}%")
    emit(args, {"buffer": str(buf.folder), "experts_run": indices, "experts_skipped": on_disk,
                "experts_on_disk": buf.indices, "records": records,
                "manifest": buf.manifest, "wall_s": meter.result.wall_s}, "\n".join(human))


def _compact(indices: list[int]) -> str:
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}..{indices[-1]}"
    return str(indices) if len(indices) <= 8 else f"{indices[:4]} ... {indices[-2:]}"


def memory_probe(dataset: str, buffer: str, ipc: int, syn_steps: int, inner_checkpoint: bool, device: str = "auto",
                 data_root=None, train_per_class=None, overrides: dict | None = None) -> dict:
    """Peak memory of one distillation iteration (in this process): RSS before, peak RSS and peak CUDA."""
    from condense.progress import quiet
    from condense.runtime import current_rss_mb
    from condense.vision.data import load_images
    from condense.vision.trajectory import TrajectoryMatching

    data = load_images(dataset, data_root=data_root, train_per_class=train_per_class)
    cfg, _ = TrajectoryMatching.configure(data, **{**(overrides or {}), "ipc": ipc, "iterations": 1,
                                                  "syn_steps": syn_steps, "inner_checkpoint": inner_checkpoint})
    method = TrajectoryMatching(cfg)
    buf = method._open(buffer)
    before = current_rss_mb()
    with quiet():
        art = method.fit(data, buffer=buf, device=device, seed=0)
    s = art.meta["extra"]["summary"]
    return {"syn_steps": syn_steps, "inner_checkpoint": inner_checkpoint, "rss_before_mb": round(before, 1),
            "peak_rss_mb": s["peak_rss_mb"], "peak_cuda_mb": s["peak_cuda_mb"], "wall_s": s["wall_s"],
            "device": art.meta["device"]}


def cmd_memory(args: argparse.Namespace) -> None:
    import json
    import subprocess
    import sys

    from condense.cli import _overrides, emit

    rows = []
    for n in args.syn_steps:
        for ck in (False, True):
            spec = dict(dataset=args.dataset, buffer=args.buffer, ipc=args.ipc, syn_steps=n, inner_checkpoint=ck,
                        device=args.device, data_root=args.data_root, train_per_class=args.train_per_class,
                        overrides=_overrides(args))
            code = ("import json, sys; from condense.vision.cli import memory_probe; "
                    "print(json.dumps(memory_probe(**json.loads(sys.argv[1]))))")
            out = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"memory probe N={n} checkpoint={ck} failed:\n{out.stderr[-2000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cuda = any(r["peak_cuda_mb"] is not None for r in rows)
    head = f"  {'syn_steps':>9} {'checkpoint':>10} {'RSS before MB':>13} {'peak RSS MB':>11} {'+MB':>8}"
    head += f" {'peak CUDA MB':>12}" if cuda else ""
    lines = [f"one MTT iteration on {args.dataset}, IPC {args.ipc} (device {rows[0]['device']})", head + f" {'wall s':>7}"]
    for r in rows:
        line = (f"  {r['syn_steps']:>9} {str(r['inner_checkpoint']).lower():>10} {r['rss_before_mb']:>13.0f} "
                f"{r['peak_rss_mb']:>11.0f} {r['peak_rss_mb'] - r['rss_before_mb']:>8.0f}")
        line += f" {r['peak_cuda_mb']:>12.0f}" if cuda else ""
        lines.append(line + f" {r['wall_s']:>7.1f}")
    emit(args, {"rows": rows}, "\n".join(lines))


def add_commands(subparsers) -> None:
    """Add ``buffer`` and ``mtt-memory`` to the ``condense`` command (see :data:`condense.registry.CLI_HOOKS`)."""
    from condense.cli import add_common, shard_arg

    p = subparsers.add_parser("buffer", help="train (or resume) an expert-trajectory buffer for MTT/AST",
                              description="Train N experts for E epochs on the real data and store their "
                                          "parameters after every epoch (safetensors shards + buffer.json).")
    add_common(p, log=True)
    p.add_argument("--experts", type=int, default=None, help="number of experts N (default 100)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per expert E (default 50)")
    p.add_argument("--model", default=None, help="network (default: convnet, depth by resolution)")
    p.add_argument("--batch", type=int, default=None, help="minibatch size (default 256)")
    p.add_argument("--optimizer", choices=("sgd", "sgd_momentum"), default=None,
                   help="sgd (MTT: lr 0.01) or sgd_momentum (AST: lr 0.003, momentum 0.9, wd 1e-3, x0.6 decay)")
    p.add_argument("--lr", type=float, default=None, help="expert learning rate (default: the optimiser's)")
    p.add_argument("--loss-clipping", action="store_true", help="AST loss clipping c_e = min(0.5 + 0.05 e, 1)")
    p.add_argument("--grad-penalty", type=float, default=None, help="AST input-gradient penalty weight (AST: 2)")
    p.add_argument("--ast", action="store_true", help="AST's smooth experts: sgd_momentum, loss clipping, GP 2")
    p.add_argument("--zca", action="store_true", help="train in ZCA-whitened space (fitted on the training pixels)")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--shard", type=shard_arg, default=None, metavar="I/N",
                       help="train shard I of N (1-based): experts e with e mod N = I - 1")
    share.add_argument("--experts-range", type=_range, default=None, metavar="A:B", help="train experts A <= e < B")
    share.add_argument("--merge", nargs="+", default=None, metavar="SHARE", help="merge buffer shares into --out")
    p.set_defaults(func=cmd_buffer)

    p = subparsers.add_parser("mtt-memory", help="peak memory of one MTT iteration vs syn_steps, with and "
                                                 "without inner-loop checkpointing")
    add_common(p, out=False)
    p.add_argument("--buffer", required=True, help="expert buffer folder")
    p.add_argument("--ipc", type=int, default=1, help="images per class (default 1)")
    p.add_argument("--syn-steps", type=int, nargs="+", default=[10, 20, 40], help="values of N (default 10 20 40)")
    p.set_defaults(func=cmd_memory)

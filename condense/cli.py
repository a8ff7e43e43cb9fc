"""The ``condense`` command.

Shape: ``condense <verb> [method] --dataset NAME [--data-root DIR] [--device D] [--seed S]
[--set key=value ...] [--train-per-class N] [--json] --out DIR``.

With ``--json`` a command prints exactly one JSON object on stdout; human-readable text, progress bars and
logs go to stderr, so scripts (and the bench) can consume the output.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from condense import registry


class CliError(Exception):
    """A user error the CLI reports as one line and exit status 2."""


# -- output ------------------------------------------------------------------------------------------
def _json_default(obj: Any) -> Any:
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null so every consumer can parse the output."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def emit(args: argparse.Namespace, payload: dict[str, Any], human: str) -> None:
    """Print ``payload`` as one JSON object (``--json``) or ``human`` text (on rank 0 only under ``torchrun``)."""
    from condense import distributed

    if not distributed.is_main():
        return
    if getattr(args, "json", False):
        text = json.dumps(_clean(json.loads(json.dumps(payload, default=_json_default))), indent=None)
        sys.stdout.write(text + "\n")
    else:
        sys.stdout.write(human.rstrip() + "\n")
    sys.stdout.flush()


# -- shared options: declared once, here ---------------------------------------------------------------
def add_common(p: argparse.ArgumentParser, *, dataset: bool = True, out: bool = True, device: bool = True,
               settings: bool = True, data_root: bool = True, default_dataset: str | None = None,
               log: bool = False) -> None:
    """The options the commands share, each declared here only: ``--json`` and ``--quiet`` always; ``--dataset``,
    ``--train-per-class``, ``--image-size`` and ``--stream`` (``dataset``); ``--data-root``; ``--device``; ``--seed``
    and ``--set`` (``settings``); a required ``--out`` run folder (``out``); ``--log`` and ``--log-dir`` (``log``)."""
    if dataset:
        p.add_argument("--dataset", default=default_dataset,
                       help=f"dataset name or .npz path (default: {default_dataset})" if default_dataset else "dataset name")
        p.add_argument("--train-per-class", type=int, default=None, metavar="N",
                       help="use a seeded, stratified subsample of N training items per class (recorded in metadata)")
        p.add_argument("--image-size", type=int, default=None, metavar="S",
                       help="image folders: resize the shorter side to S and centre-crop SxS when decoding")
        p.add_argument("--stream", choices=("auto", "on", "off"), default="auto",
                       help="image folders: read real batches from the uint8 cache (on), hold the set in memory "
                            "(off), or stream sets over 1 GiB as float32 (auto, the default)")
    if data_root:
        p.add_argument("--data-root", default=None, metavar="DIR",
                       help="data folder (default: $CONDENSE_DATA, else the user cache folder)")
    if device:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    if settings:
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set lr_img=10 (repeatable)")
    if log:
        p.add_argument("--log", choices=("tensorboard", "wandb"), default=None,
                       help="track the run with TensorBoard or Weights & Biases (offline unless WANDB_MODE is set)")
        p.add_argument("--log-dir", default=None, metavar="DIR",
                       help="where the tracker writes (default: OUT/logs, else ./condense-logs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout; text goes to stderr")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if out:
        p.add_argument("--out", required=True, metavar="DIR", help="run folder (artifact, checkpoints, plots)")


def shard_arg(text: str):
    """argparse type of ``--shard i/n`` (1-based, the one convention of :mod:`condense.shard`)."""
    from condense.shard import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The image-folder options a command was given (``image_size``, ``stream``), for ``load_images``."""
    options: dict[str, Any] = {}
    if getattr(args, "image_size", None) is not None:
        options["image_size"] = args.image_size
    if getattr(args, "stream", "auto") != "auto":
        options["stream"] = args.stream == "on"
    return options


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    from condense.config import parse_set

    return parse_set(args.set)


def _setup(args: argparse.Namespace) -> None:
    from condense.progress import set_quiet

    if getattr(args, "quiet", False):
        set_quiet(True)
    from condense.allocator import RETAIN_ENV, retain_freed_memory

    if os.environ.get(RETAIN_ENV, "1") != "0":
        retain_freed_memory()
    from condense import distributed

    if distributed.requested():  # launched by torchrun: join the process group before any work
        distributed.init(getattr(args, "device", "auto"))
    if getattr(args, "log", None) and distributed.is_main():  # one tracker per run: rank 0's
        from condense import tracking

        out = getattr(args, "out", None)
        log_dir = args.log_dir or (os.path.join(out, "logs") if out else "condense-logs")
        config = {k: v for k, v in vars(args).items() if k not in ("func", "log", "log_dir")}
        tracking.start(args.log, log_dir, config=config, name=getattr(args, "verb", None))


# -- verbs ------------------------------------------------------------------------------------------
def cmd_datasets(args: argparse.Namespace) -> None:
    from condense.data import data_root, status

    root = data_root(args.data_root)
    rows = status(root)
    width = max(len(r["name"]) for r in rows)
    lines = [f"data root: {root}", ""]
    for r in rows:
        mark = "found  " if r["found"] else "missing"
        where = r["location"] or "-"
        lines.append(f"  {r['name']:<{width}}  {mark}  {r['family']:<21}  {where}")
        if not r["found"]:
            lines.append(f"  {'':<{width}}  expects {r['layout']}")
    lines += ["", "Image folders (--dataset PATH, with --image-size S to resize): a class-per-folder tree "
              "(<class>/<image>; 20 % of each class held out as the test split), a train/val tree "
              "(train/<class>/<image> with val/ or test/ alike: the ImageNet layout) or the Tiny-ImageNet layout "
              "(wnids.txt, train/<wnid>/images/, val/images/ with val/val_annotations.txt); decoded once into a "
              "uint8 cache under <cache>/images and streamed from it when large."]
    emit(args, {"data_root": str(root), "datasets": rows}, "\n".join(lines))


def cmd_info(args: argparse.Namespace) -> None:
    from condense.artifacts import read_file

    tensors, meta = read_file(args.artifact)
    shapes = {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in sorted(tensors.items())}
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    lines = [f"{args.artifact}: {meta.get('kind')} from {meta.get('method')} (schema {meta.get('schema_version')})"]
    for key in ("source", "budget", "seed", "device", "library_version", "created"):
        lines.append(f"  {key}: {json.dumps(meta.get(key))}")
    lines.append(f"  tensors ({nbytes} bytes):")
    for k, v in shapes.items():
        lines.append(f"    {k}: {v['dtype']} {v['shape']}")
    lines.append(f"  config: {json.dumps(meta.get('config'))}")
    emit(args, {"path": str(args.artifact), "meta": meta, "tensors": shapes, "tensor_bytes": nbytes}, "\n".join(lines))


def method_kwargs(args: argparse.Namespace, entry: registry.MethodEntry) -> dict[str, Any]:
    """``condense.distill`` keyword arguments from a method command's flags (``--set`` values first, so a
    dedicated flag wins)."""
    kwargs: dict[str, Any] = dict(_overrides(args))
    if args.preset is not None:
        kwargs["preset"] = args.preset
    for opt in entry.cli_options:
        value = getattr(args, opt.attribute, None)
        if value is None or value is False:
            continue
        if opt.const is not None:
            if kwargs.get(opt.key, opt.const) != opt.const:
                raise CliError(f"{opt.flag} means --{opt.key} {opt.const}; it cannot be combined with "
                               f"--{opt.key} {kwargs[opt.key]}")
            value = opt.const
        kwargs[opt.key] = value
    return kwargs


def distill_and_emit(args: argparse.Namespace, entry: registry.MethodEntry, kwargs: dict[str, Any]) -> None:
    """Run ``condense.distill`` with the command's common options and print what it wrote."""
    artifact = registry.distill(entry.name, args.dataset, data_root=args.data_root, device=args.device,
                                seed=args.seed, train_per_class=args.train_per_class, out=args.out,
                                data_options=data_options(args), **kwargs)
    path = str(getattr(artifact, "path", None) or Path(args.out) / f"{entry.name}.safetensors")
    summary = artifact.meta.get("extra", {}).get("summary", {})
    from condense import tracking

    tracking.summary(f"{entry.name}/final", summary)
    human = [f"{entry.name}: wrote {path}", f"  {artifact!r}"]
    human += [f"  {k}: {v}" for k, v in summary.items()]
    emit(args, {"artifact": path, "kind": artifact.kind, "method": entry.name, "summary": summary,
                "meta": artifact.meta}, "\n".join(human))


def cmd_distill(args: argparse.Namespace) -> None:
    entry = registry.get(args.method)
    kwargs = method_kwargs(args, entry)
    if entry.cli_handler is not None:
        registry.resolve_target(entry.cli_handler)(args, entry, kwargs)
    else:
        distill_and_emit(args, entry, kwargs)


def cmd_evaluate(args: argparse.Namespace) -> None:
    overrides = dict(_overrides(args))
    if args.labels is not None:
        overrides["labels"] = args.labels
    if args.scores:
        overrides["scores"] = True
    result = registry.evaluate(args.artifact, model=args.model, runs=args.runs, data_root=args.data_root,
                               device=args.device, seed=args.seed, baselines=args.baselines, **overrides)
    from condense import tracking

    tracking.summary("evaluate", {name: r.get("accuracy", {}) for name, r in (result.get("results") or {}).items()}
                     | {"scores": result.get("scores") or {}})
    emit(args, result, result.get("table") or json.dumps(result, indent=2, default=_json_default))


def cmd_export(args: argparse.Namespace) -> None:
    from condense.artifacts import ImageSet, load

    artifact = load(args.artifact)
    if not isinstance(artifact, ImageSet):
        raise CliError(f"condense export writes image sets; {args.artifact} holds a {artifact.kind}")
    if args.format == "folder":
        info = artifact.export_folder(args.out)
        human = (f"wrote {info['images']} PNG images in {info['classes']} class folders to {info['folder']}"
                 + (f" ({info['clipped_fraction']:.2%} of the pixel values lay outside [0, 1] and were clipped)"
                    if info["clipped_fraction"] else ""))
    else:
        dataset = artifact.to_hf_dataset()
        dataset.save_to_disk(args.out)
        info = {"folder": str(args.out), "images": len(dataset), "format": "hf"}
        human = f"wrote a Hugging Face dataset of {len(dataset)} images to {args.out} (datasets.load_from_disk)"
    emit(args, info, human)


def add_method_parser(sub, entry: registry.MethodEntry, name: str | None = None, alias_of: str | None = None):
    """The ``distill METHOD`` parser of ``entry`` (also used for top-level aliases such as ``condense g2m``)."""
    note = f" (the same as `condense {alias_of}`)" if alias_of else ""
    mp = sub.add_parser(name or entry.name, help=f"{entry.summary} ({entry.paper}){note}",
                        description=f"{entry.summary} ({entry.paper}); writes a {entry.produces}.{note}")
    add_common(mp, default_dataset=entry.default_dataset, log=True)
    mp.add_argument("--preset", default=None, help="a named preset of the method (applied after the dataset's own)")
    for opt in entry.cli_options:
        if opt.action:
            mp.add_argument(opt.flag, action=opt.action, help=opt.help, dest=opt.attribute)
        else:
            mp.add_argument(opt.flag, type=opt.type, default=None, help=opt.help, dest=opt.attribute)
    mp.set_defaults(func=cmd_distill, method=entry.name)
    return mp


# -- parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from condense import __version__

    parser = argparse.ArgumentParser(
        prog="condense",
        description="Data-centric distillation: condensed image sets, computation-tree graph sets, GNN-to-MLP students.",
    )
    parser.add_argument("--version", action="version", version=f"condense {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("datasets", help="list known datasets and whether they are found under the data root")
    add_common(p, dataset=False, out=False, device=False, settings=False)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("info", help="print an artifact's metadata and tensor shapes")
    p.add_argument("artifact", help="path to a .safetensors artifact")
    add_common(p, dataset=False, out=False, device=False, settings=False, data_root=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("distill", help="run a distillation method and write its artifact")
    msub = p.add_subparsers(dest="method", metavar="METHOD")
    for entry in registry.entries():
        if entry.available():
            add_method_parser(msub, entry)

    p = sub.add_parser("evaluate", help="train models on an artifact and test them on the real test split")
    p.add_argument("artifact", help="path to a .safetensors artifact")
    p.add_argument("--model", default=None, help="architecture to train (default: the method's evaluation profile)")
    p.add_argument("--runs", type=int, default=None, help="independent training runs (default: the profile's)")
    p.add_argument("--baselines", action="store_true",
                   help="also train on the baselines (random real, herding, ...) and the full training set")
    p.add_argument("--labels", choices=("hard", "soft"), default=None,
                   help="image sets: train with hard labels (cross-entropy) or soft labels (KL to a teacher's logits: "
                        "the set's own, else a cached teacher trained on the real data)")
    p.add_argument("--scores", action="store_true",
                   help="image sets: DD-Ranking's label- and augmentation-robust scores (LRS, ARS), with the runs "
                        "they need")
    add_common(p, dataset=False, out=False, log=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write an image set as an ImageFolder of PNGs or a Hugging Face dataset",
                       description="Write an ImageSet's images in [0, 1] pixel space: --format folder writes "
                                   "OUT/<class>/<index>.png (8-bit; values outside [0, 1] are clipped, and the count "
                                   "is reported), --format hf a datasets.Dataset with save_to_disk (the hf extra).")
    p.add_argument("artifact", help="path to an ImageSet .safetensors artifact")
    p.add_argument("--format", choices=("folder", "hf"), default="folder", help="folder (default) or hf")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (must not exist yet)")
    add_common(p, dataset=False, out=False, device=False, settings=False, data_root=False)
    p.set_defaults(func=cmd_export)

    for hook in registry.cli_hooks():
        hook(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if getattr(args, "verb", None) == "distill":
            parser.parse_args(["distill", "--help"])
        parser.print_help(sys.stderr)
        return 2
    from condense import distributed

    finished = False
    try:
        _setup(args)
        args.func(args)
        finished = True
    except KeyboardInterrupt:
        print("condense: interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except (CliError, ValueError, FileNotFoundError, ImportError, ArithmeticError) as exc:
        if os.environ.get("CONDENSE_DEBUG"):
            raise
        where = f" (rank {distributed.rank()})" if distributed.active() else ""
        print(f"condense: error{where}: {exc}", file=sys.stderr)
        return 2
    finally:
        from condense import tracking

        tracking.stop()
        distributed.shutdown(synchronise=finished)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

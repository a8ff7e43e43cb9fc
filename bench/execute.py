"""Run one bench cell (preparation, distillation, evaluation, measurement) and build its result record.

The cell goes through exactly the two public calls every method provides::

    artifact = condense.distill(method, dataset, data_root=..., device=..., seed=...,
                                train_per_class=..., out=RUN_DIR, **budget, **config)
    result = condense.registry.evaluator(artifact.kind)(artifact, model=..., runs=..., data_root=...,
                                                        device=..., seed=..., baselines=True, **evaluation)

Distillation and evaluation are each measured with :class:`condense.runtime.Meter` (wall time, peak RSS,
peak CUDA memory). The artifact and a small ``bench-distill.json`` (its measurement) stay in the cell's run
folder, so a cell that differs only in evaluation, or a rerun after an interruption during evaluation,
reuses the artifact instead of distilling again (the record says ``"reused": true`` and carries the original
measurement). A method's own checkpoints live in the same folder, so an interrupted distillation resumes.

Run as ``python -m condense.bench.execute SPEC.json RECORD.json``, this module is the runner's per-cell worker
process: it reads the cell from SPEC, writes the record to RECORD atomically and exits 0, also when the cell
itself failed (the error is in the record).
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import importlib
import importlib.util
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Mapping, Sequence

from condense.bench import results
from condense.bench.suites import PREP_REF, Cell, Prepare, digest

DISTILL_SIDECAR = "bench-distill.json"
PREPARED_MARKER = ".bench-prepared.json"
_TRACEBACK_CHARS = 4000
_TAIL_BYTES = 8192


def load_plugins(specs: Sequence[str]) -> None:
    """Import each plugin (a module name or a ``.py`` file) so it can register methods and evaluators."""
    for spec in specs:
        if spec.endswith(".py"):
            path = Path(spec).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"plugin file {spec!r} not found")
            name = re.sub(r"\W", "_", path.stem)
            if name in sys.modules:
                continue
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            importlib.import_module(spec)


def source_root() -> Path:
    """The folder above the bench's source folder: the source checkout in an editable install (for its commit)."""
    return Path(__file__).resolve().parents[1]


#: what ``torchrun`` puts in a rank's environment: a worker or preparation process is a single process of its own
#: (on the rank's device, which the cell spec names explicitly) and must not try to join the rank's process group
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")


def child_env(data_root: str | None) -> dict[str, str]:
    """Environment for worker and preparation processes: the same interpreter (and so the same installed
    condense), the same data root, none of the launcher's process-group variables."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith("TORCHELASTIC_")}
    if data_root is not None:
        env["CONDENSE_DATA"] = str(data_root)
    return env


def _device_name(device: str) -> str:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def _git_commit() -> str | None:
    """The source tree's commit (``-dirty`` when it has uncommitted changes), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(source_root()), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    """Where a record was measured: library/torch/Python versions, host, device and its name, git commit."""
    import torch

    import condense

    return {
        "device": device, "device_name": _device_name(device), "library_version": condense.__version__,
        "torch_version": torch.__version__, "cuda_version": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "python": platform.python_version(), "host": socket.gethostname(), "git_commit": _git_commit(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def error_info(exc: BaseException, stage: str) -> dict[str, str]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"stage": stage, "type": type(exc).__name__, "message": str(exc), "traceback": tb[-_TRACEBACK_CHARS:]}


def cell_dir(cell: Cell, work_dir: Path, device_type: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cell.method}-{cell.dataset}")
    return Path(work_dir) / "cells" / f"{name}-{cell.distill_key(device_type)}"


# -- preparation ----------------------------------------------------------------------------------------
def _run_forwarding(cmd: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run ``cmd``, copying its output live to our stderr; return its status and the last bytes of output."""
    tail = b""
    with subprocess.Popen(cmd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        try:
            for chunk in iter(lambda: proc.stdout.read1(_TAIL_BYTES), b""):
                sys.stderr.write(chunk.decode(errors="replace"))
                sys.stderr.flush()
                tail = (tail + chunk)[-_TAIL_BYTES:]
            proc.wait()
        except BaseException:
            proc.kill()
            raise
    return proc.returncode, tail.decode(errors="replace")


def run_prepare(step: Prepare, cell: Cell, *, device: str, data_root: str | None, work_dir: Path) -> dict[str, Any]:
    """Run ``condense <argv>`` for ``step`` once per distinct command line; later calls reuse its folder."""
    import torch

    argv = step.resolve(dataset=cell.dataset, seed=cell.seed, device=device, train_per_class=cell.train_per_class)
    folder = Path(work_dir) / "prepare" / f"{step.name}-{digest([list(argv), torch.device(device).type])}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # two ranks (or two runners) needing one step: one runs it
        return _prepare_locked(step, argv, folder, data_root)


def _prepare_locked(step: Prepare, argv: tuple[str, ...], folder: Path, data_root: str | None) -> dict[str, Any]:
    marker = folder / PREPARED_MARKER
    if marker.is_file():
        done = json.loads(marker.read_text())
        return {"folder": str(folder), "wall_s": done["wall_s"], "reused": True, "argv": done["argv"]}
    argv = [a.replace("{out}", str(folder)) for a in argv]
    t0 = time.perf_counter()
    returncode, output = _run_forwarding([sys.executable, "-m", "condense", *argv], env=child_env(data_root))
    wall = time.perf_counter() - t0
    if returncode != 0:
        tail = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()][-5:]
        raise RuntimeError(f"preparation step {step.name!r} (condense {' '.join(argv)}) exited with status "
                           f"{returncode}: {' | '.join(tail) or 'no output'}")
    results.write_atomic(marker, json.dumps({"argv": argv, "wall_s": wall, "finished": _now()}).encode())
    return {"folder": str(folder), "wall_s": wall, "reused": False, "argv": argv}


def resolve_config(config: Mapping[str, Any], prepared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Replace ``"{prep:NAME}"`` values by the folder of preparation step NAME."""
    out = {}
    for key, value in config.items():
        m = PREP_REF.match(value) if isinstance(value, str) else None
        out[key] = prepared[m.group(1)]["folder"] if m else value
    return out


# -- one cell ---------------------------------------------------------------------------------------------
def base_record(cell: Cell, device: str, env: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every record has, before anything ran (``status`` still ``"running"``)."""
    import torch

    from condense import registry

    device_type = torch.device(device).type
    try:
        entry = registry.get(cell.method)
        family, kind = entry.family, entry.produces
    except ValueError:
        family = kind = None
    return {
        "schema": results.SCHEMA, "key": cell.key(device_type), "distill_key": cell.distill_key(device_type),
        "status": "running", **cell.as_dict(), "family": family, "kind": kind, **dict(env), "started": _now(),
        "prepare": {}, "distill": None, "evaluate": None, "artifact": None, "results": None, "compression": None,
        "error": None,
    }


# -- distillation and evaluation ------------------------------------------------------------------------
def _distill(cell: Cell, config: dict, *, device: str, data_root: str | None, run_dir: Path):
    """The cell's artifact and its measurement, reusing a finished distillation in ``run_dir``."""
    from condense import load, registry
    from condense.runtime import Meter

    sidecar = run_dir / DISTILL_SIDECAR
    artifact_path = run_dir / f"{cell.method}.safetensors"
    if sidecar.is_file() and artifact_path.is_file():
        measured = json.loads(sidecar.read_text())
        return load(artifact_path), {**measured, "reused": True}
    registry.get(cell.method).resolve()  # import the method's modules outside the measurement
    with Meter(device) as meter:
        artifact = registry.distill(cell.method, cell.dataset, data_root=data_root, device=device,
                                    seed=cell.seed, train_per_class=cell.train_per_class, out=str(run_dir),
                                    **cell.budget, **config)
    measured = meter.result.as_dict()
    results.write_atomic(sidecar, json.dumps(results.jsonable({**measured, "finished": _now()})).encode())
    return artifact, {**measured, "reused": False}


def _check_result(result: Any) -> dict:
    if not isinstance(result, Mapping) or not isinstance(result.get("results"), Mapping):
        raise TypeError(f"the evaluator returned {type(result).__name__} without a 'results' mapping; see the "
                        "contract in condense/registry.py (EVALUATORS)")
    if "distilled" not in result["results"]:
        raise ValueError(f"the evaluator's results lack the 'distilled' entry (got {sorted(result['results'])})")
    return dict(result)


def execute(cell: Cell, *, device: str, data_root: str | None, work_dir: str | os.PathLike,
            results_dir: str | os.PathLike, env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run ``cell`` on ``device`` (already resolved, e.g. ``"cpu"``/``"cuda"``) and return its record.

    Exceptions from the cell become a record with ``status="error"``; ``KeyboardInterrupt`` propagates.
    """
    import torch

    from condense import registry
    from condense.runtime import Meter

    work_dir = Path(work_dir)
    record = base_record(cell, device, env if env is not None else environment(device))
    stage = "setup"
    try:
        registry.get(cell.method)
        stage = "prepare"
        for step in cell.prepare:
            record["prepare"][step.name] = run_prepare(step, cell, device=device, data_root=data_root,
                                                       work_dir=work_dir)
        config = resolve_config(cell.config, record["prepare"])
        stage = "distill"
        run_dir = cell_dir(cell, work_dir, torch.device(device).type)
        artifact, record["distill"] = _distill(cell, config, device=device, data_root=data_root, run_dir=run_dir)
        path = run_dir / f"{cell.method}.safetensors"
        record["artifact"] = os.path.relpath(path.resolve(), Path(results_dir).resolve())
        record["kind"] = artifact.kind
        record["resolved_config"] = artifact.meta.get("config")
        record["artifact_budget"] = artifact.meta.get("budget")
        record["artifact_bytes"] = artifact.nbytes
        record["artifact_summary"] = artifact.meta.get("extra", {}).get("summary")
        stage = "evaluate"
        evaluate = registry.evaluator(artifact.kind)
        with Meter(device) as meter:
            result = evaluate(artifact, model=cell.model, runs=cell.runs, data_root=data_root, device=device,
                              seed=cell.seed, baselines=True, **cell.evaluation)
        record["evaluate"] = meter.result.as_dict()
        result = results.jsonable(_check_result(result))
        result.pop("table", None)
        record["results"] = result.pop("results")
        record["compression"] = result.pop("compression", None)
        record["eval_timing"] = result.pop("timing", None)
        record["eval_model"] = result.pop("model", cell.model)
        for key in ("kind", "method", "dataset"):
            result.pop(key, None)
        record["eval_extra"] = result
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure of a cell is recorded, and the suite goes on
        record["status"] = "error"
        record["error"] = error_info(exc, stage)
    record["finished"] = _now()
    return results.jsonable(record)


# -- the worker process ---------------------------------------------------------------------------------
def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    # turn SIGTERM into an exception so running preparation subprocesses are killed on the way out
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m condense.bench.execute SPEC.json RECORD.json", file=sys.stderr)
        return 2
    os.dup2(2, 1)  # anything a method prints goes to stderr: the runner's stdout is reserved for --json
    signal.signal(signal.SIGTERM, _terminate)
    spec = json.loads(Path(args[0]).read_text())
    load_plugins(spec.get("plugins", ()))
    if spec.get("quiet"):
        from condense.progress import set_quiet

        set_quiet(True)
    cell = Cell.from_dict(spec["cell"])
    from condense import distributed

    finished = False
    try:
        distributed.init(spec["device"])  # a cell on several ranks: this worker is one of them (torchrun)
        record = execute(cell, device=spec["device"], data_root=spec.get("data_root"), work_dir=spec["work_dir"],
                         results_dir=spec["results_dir"], env=spec.get("env"))
        if distributed.is_main():
            record["ranks"] = distributed.world_size()
            results.write_atomic(args[1], results.encode(record))
        finished = True
    except KeyboardInterrupt:
        return 130
    finally:
        distributed.shutdown(synchronise=finished)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run a bench suite cell by cell into a results file: resumable, shardable, failures recorded.

For every cell of the suite (or of one shard of it) the runner

1. skips it when its key is already in the results file (so an interrupted run resumes where it stopped;
   with ``retry_failed`` a cell recorded as failed runs again);
2. skips it, with one note per method, when the method's module is not installed;
3. runs it (:func:`condense.bench.execute.execute`) and appends its record as one JSON line, also when it failed.

**Isolation.** By default each cell runs in its own worker process (``python -m condense.bench.execute``). That costs
the interpreter start-up (about 3 s on a small CPU, nothing next to a distillation) and buys what a benchmark
needs: peak host and GPU memory measured for that cell alone, no CUDA context, allocator cache or leaked
state carried from one cell into the next, a cell that crashes the interpreter (segfault, a poisoned CUDA
context, the kernel's OOM killer) recorded as a failure while the suite goes on, and a per-cell time limit.
``isolation="inline"`` runs cells in this process instead (tests, debugging).

**Interruption.** Ctrl-C stops the run without recording the running cell; killing the runner (even with
SIGKILL) loses at most that cell, never a finished one: rerunning the same command finishes only the cells
that are missing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from condense import tracking
from condense.bench import results
from condense.bench.execute import base_record, child_env, environment, error_info, execute, load_plugins
from condense.bench.suites import Cell, Suite, expand
from condense.bench.suites import shard as shard_cells
from condense.shard import Shard

ISOLATIONS = ("process", "inline")
#: seconds a worker gets to exit after SIGTERM before it is killed
_GRACE_S = 10.0


class WorkerDied(RuntimeError):
    """A worker process ended without writing a record (killed, crashed, or timed out)."""


@dataclass
class Summary:
    """What a :func:`run_suite` call did."""

    suite: str
    results: str
    device: str
    shard: str | None
    cells: int = 0
    skipped: int = 0
    ran: int = 0
    ok: int = 0
    failed: int = 0
    unavailable: dict[str, int] = field(default_factory=dict)
    short_of_devices: int = 0  # multi-rank cells skipped: fewer GPUs than ranks
    wall_s: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)  # where it ran (device name, torch and CUDA versions)
    lines: list[str] = field(default_factory=list)  # one line per cell run (results.summarise)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def combined(cls, parts: Sequence["Summary"]) -> "Summary":
        """One summary of several ranks' runs of one suite (counts added, the longest wall time)."""
        first = parts[0]
        out = cls(suite=first.suite, results=first.results, device=first.device,
                  shard=f"{len(parts)} ranks", wall_s=max(p.wall_s for p in parts), environment=first.environment)
        for p in parts:
            for key in ("cells", "skipped", "ran", "ok", "failed", "short_of_devices"):
                setattr(out, key, getattr(out, key) + getattr(p, key))
            out.lines += p.lines
            for method, n in p.unavailable.items():
                out.unavailable[method] = out.unavailable.get(method, 0) + n
        return out

    def text(self) -> str:
        env = self.environment
        lines = [f"suite {self.suite} on {self.device}{f' (shard {self.shard})' if self.shard else ''}: "
                 f"{self.cells} cells, {self.ran} run ({self.ok} ok, {self.failed} failed), "
                 f"{self.skipped} already in {self.results}, {self.wall_s:.1f} s"]
        if env:
            cuda = f", CUDA {env['cuda_version']}" if env.get("cuda_version") else ""
            lines.append(f"  {env.get('device_name')}: torch {env.get('torch_version')}{cuda}, "
                         f"condense {env.get('library_version')}")
        for method, n in sorted(self.unavailable.items()):
            lines.append(f"  skipped {n} cell(s) of {method}: its module is not installed yet")
        if self.short_of_devices:
            lines.append(f"  skipped {self.short_of_devices} multi-rank cell(s): fewer GPUs visible than ranks")
        lines += [f"  {line}" for line in self.lines]
        return "\n".join(lines)


def default_work_dir(results_path: str | os.PathLike) -> Path:
    """``runs/smoke.jsonl`` -> ``runs/smoke.runs`` (artifacts, checkpoints and preparation outputs)."""
    path = Path(results_path)
    return path.with_name(path.stem + ".runs")


def _worker_record(cell: Cell, *, device: str, data_root: str | None, work_dir: Path, results_dir: Path,
                   env: dict, plugins: Sequence[str], timeout: float | None) -> dict:
    """Run ``cell`` in a fresh ``python -m condense.bench.execute`` process and return the record it wrote."""
    from condense.progress import is_quiet

    tmp = work_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    key = cell.key(env["device_type"])
    spec_path, record_path = tmp / f"{key}.spec.json", tmp / f"{key}.record.json"
    record_path.unlink(missing_ok=True)
    # a cell on several ranks: each rank takes its own device of the type (cuda:LOCAL_RANK), rank 0 writes the record
    device = env["device"] if cell.ranks == 1 else env["device_type"]
    spec = {"cell": cell.as_dict(), "device": device, "data_root": data_root, "work_dir": str(work_dir),
            "results_dir": str(results_dir), "env": env["record"], "plugins": list(plugins), "quiet": is_quiet()}
    spec_path.write_text(json.dumps(results.jsonable(spec)))
    launch = [] if cell.ranks == 1 else ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                         str(cell.ranks)]
    proc = subprocess.Popen([sys.executable, *launch, "-m", "condense.bench.execute", str(spec_path), str(record_path)],
                            env=child_env(data_root), stdin=subprocess.DEVNULL)
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise WorkerDied(f"the cell ran past the time limit of {timeout:g} s and was stopped") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        spec_path.unlink(missing_ok=True)
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        record_path.unlink()
        return record
    code = proc.returncode
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends this)" if -code == signal.SIGKILL else ""
        raise WorkerDied(f"the worker process was killed by {name}{hint} before it wrote a record")
    raise WorkerDied(f"the worker process exited with status {code} without writing a record")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_suite(
    suite: Suite,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    data_root: str | None = None,
    shard: Shard | None = None,
    isolation: str = "process",
    work_dir: str | os.PathLike | None = None,
    retry_failed: bool = False,
    plugins: Sequence[str] = (),
    timeout: float | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> Summary:
    """Run ``suite`` (or one :class:`~condense.shard.Shard` of it) and append one record per finished cell to ``out``."""
    import torch

    from condense import registry
    from condense.progress import get_logger
    from condense.runtime import resolve_device

    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if timeout is not None and isolation != "process":
        raise ValueError("a per-cell timeout needs isolation='process' (an inline cell cannot be stopped)")
    log = get_logger("condense.bench")
    load_plugins(plugins)
    out = Path(out)
    if out.suffix != ".jsonl":
        raise ValueError(f"the results file must end in .jsonl, got {str(out)!r}")
    work_dir = Path(work_dir) if work_dir is not None else default_work_dir(out)
    work_dir = work_dir.resolve()
    resolved = resolve_device(device)
    device_str, device_type = str(resolved), resolved.type
    env = {"device": device_str, "device_type": device_type, "record": environment(device_str)}

    from condense import distributed

    cells = expand(suite, device_type)
    if shard is not None and distributed.active():
        raise ValueError("--shard splits a suite across separate runs; under torchrun the ranks split it already")
    shard = shard or distributed.my_shard()  # under torchrun: this rank's share of the distillations
    if shard is not None:
        cells = shard_cells(cells, shard, device_type)
    summary = Summary(suite=suite.name, results=str(out), device=device_str,
                      shard=str(shard) if shard else None, cells=len(cells), environment=env["record"])
    done = results.latest(results.read(out))
    t0 = time.perf_counter()
    todo = []
    for cell in cells:
        previous = done.get(cell.key(device_type))
        if previous is not None and not (retry_failed and previous.get("status") != "ok"):
            summary.skipped += 1
            continue
        try:
            available = registry.get(cell.method).available()
        except ValueError:
            available = True  # unknown method: let the cell fail and record why
        if not available:
            summary.unavailable[cell.method] = summary.unavailable.get(cell.method, 0) + 1
            continue
        if cell.ranks > 1 and device_type == "cuda" and torch.cuda.device_count() < cell.ranks:
            summary.short_of_devices += 1
            continue
        todo.append(cell)
    for method, n in sorted(summary.unavailable.items()):
        log.warning("skipping %d cell(s) of %s: module %s is not installed yet", n, method,
                    registry.get(method).module)
    for number, cell in enumerate(todo, 1):
        log.info("[%d/%d] %s ...", number, len(todo), cell.describe())
        started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        if isolation == "inline" and cell.ranks > 1:
            record = base_record(cell, device_str, env["record"])
            record.update(status="error", started=started, error=error_info(ValueError(
                f"this cell runs on {cell.ranks} ranks under torchrun: it needs worker processes (drop --in-process)"),
                "setup"))
        elif isolation == "inline":
            record = execute(cell, device=device_str, data_root=data_root, work_dir=work_dir,
                             results_dir=out.parent, env=env["record"])
        else:
            try:
                record = _worker_record(cell, device=device_str, data_root=data_root, work_dir=work_dir,
                                        results_dir=out.parent, env=env, plugins=plugins, timeout=timeout)
            except WorkerDied as exc:
                record = base_record(cell, device_str, env["record"])
                record.update(status="error", error=error_info(exc, "worker"), started=started)
        record["isolation"] = isolation
        record.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
        results.append(out, record)
        tracking.summary(f"bench/{cell.suite}/{cell.index}-{cell.method}-{cell.dataset}-seed{cell.seed}",
                         {k: record[k] for k in ("results", "distill", "evaluate") if isinstance(record.get(k), dict)})
        summary.ran += 1
        if record["status"] == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
        line = results.summarise(record)
        summary.lines.append(line)
        log.info("[%d/%d] %s", number, len(todo), line)
        if on_record is not None:
            on_record(record)
    summary.wall_s = time.perf_counter() - t0
    return summary

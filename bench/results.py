"""Bench results: one JSON object per finished cell, one line each, in an append-only ``.jsonl`` file.

Writing (:func:`append`) holds an exclusive ``flock`` on the file, first cuts off a torn last line left by an
earlier crash (a line without its final newline), then writes the whole new line with one ``write`` call and
``fsync``s. A process killed mid-write can therefore leave at most one torn line at the end, which
:func:`read` drops with a warning and the next :func:`append` removes; lines are never interleaved.

Reading keeps the last record per cell ``key``, except that a successful record is never replaced by a
failed one (:func:`latest`). :func:`merge` combines several files (e.g. the shards of one suite).
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from condense.artifacts import write_atomic

SCHEMA = 1
_CHUNK = 1 << 16


class ResultsError(ValueError):
    """A results file is unusable (corrupted in the middle, or written by a newer bench)."""


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: tensors/arrays to lists, paths to strings, NaN/inf to ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # torch tensors, NumPy arrays and scalars
        return jsonable(obj.tolist())
    raise TypeError(f"cannot store a {type(obj).__name__} in a results file: {obj!r}")


#: the test metrics of the evaluator contract (condense/registry.py: fractions in [0, 1]), in display order;
#: other per-entry statistics an evaluator adds (validation scores, training times) stay in the record only
TEST_METRICS = ("accuracy", "roc_auc")


def metric_names(entry: Mapping[str, Any] | None) -> list[str]:
    """The test metrics present in one trained-set entry (``{"accuracy": {"mean": ...}, ...}``), in order."""
    entry = entry or {}
    return [m for m in TEST_METRICS if isinstance(entry.get(m), Mapping) and "mean" in entry[m]]


def percent(metric: Mapping[str, Any] | None) -> str:
    """``{"mean": 0.912, "std": 0.004}`` -> ``"91.2±0.4"`` (metrics are fractions; shown in percent)."""
    if not metric or metric.get("mean") is None:
        return "–"
    std = metric.get("std")
    return f"{100 * metric['mean']:.1f}" + (f"±{100 * std:.1f}" if std is not None else "")


def summarise(record: Mapping[str, Any]) -> str:
    """One line about a record: the primary metric of every trained set, compression and time, or the error."""
    from condense.bench.suites import describe

    head = describe(record)
    if record.get("status") != "ok":
        err = record.get("error") or {}
        message = (err.get("message") or "").strip().splitlines()
        return f"{head}: FAILED ({err.get('stage')}) {err.get('type')}: {message[0] if message else ''}"
    res = record.get("results") or {}
    names = metric_names(res.get("distilled"))
    parts = []
    if names:
        parts.append(names[0] + " " + ", ".join(f"{k} {percent(v.get(names[0]))}" for k, v in res.items()))
    ratio = (record.get("compression") or {}).get("samples")
    if ratio:
        parts.append(f"{ratio:.0f}x fewer samples")
    distill = record.get("distill") or {}
    if distill.get("wall_s") is not None:
        parts.append(f"distill {distill['wall_s']:.1f} s")
    speed = (record.get("artifact_summary") or {}).get("it_per_s")
    if speed:
        parts.append(f"{speed:.3g} it/s")
    if distill.get("peak_cuda_mb"):
        parts.append(f"peak GPU {distill['peak_cuda_mb']:.0f} MB")
    return f"{head}: " + "; ".join(parts)


def encode(record: Mapping[str, Any]) -> bytes:
    """One record as a single JSON line (UTF-8, ending in a newline, no NaN)."""
    text = json.dumps(jsonable(record), allow_nan=False, separators=(",", ":"))
    if "\n" in text:  # cannot happen with json.dumps, but a newline would split the record
        raise ValueError("a record must encode to a single line")
    return (text + "\n").encode()


def _torn_tail_start(fh) -> int | None:
    """Offset where a torn last line starts (the byte after the last newline), or None if the end is clean."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return None
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return None
    pos = size
    while pos > 0:
        start = max(0, pos - _CHUNK)
        fh.seek(start)
        chunk = fh.read(pos - start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0


def append(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one line to the results file ``path`` (created if missing), safely (see module doc)."""
    data = encode(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            torn = _torn_tail_start(fh)
            if torn is not None:
                warnings.warn(f"{path}: dropping a torn last line (bytes {torn}+) before appending", stacklevel=2)
                fh.truncate(torn)
            os.write(fh.fileno(), data)
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read(path: str | os.PathLike) -> list[dict]:
    """All records of a results file, in file order; a missing file reads as empty.

    An unreadable *last* line (a write torn by a kill) is dropped with a warning. An unreadable line
    anywhere else, a line that is not a record, or a record from a newer schema raises :class:`ResultsError`.
    """
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise ResultsError(f"results path {str(path)!r} is not a file")
    lines = path.read_bytes().split(b"\n")
    records = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            if number == last:
                warnings.warn(f"{path}: ignoring a torn last line ({len(line)} bytes): {exc}", stacklevel=2)
                continue
            raise ResultsError(f"{path}:{number + 1}: not a JSON line ({exc}); the file is corrupted") from None
        if not isinstance(rec, dict) or "key" not in rec or "schema" not in rec:
            raise ResultsError(f"{path}:{number + 1}: not a bench record (needs 'key' and 'schema')")
        if not isinstance(rec["schema"], int) or rec["schema"] > SCHEMA:
            raise ResultsError(f"{path}:{number + 1}: record schema {rec['schema']!r}; this bench reads up to "
                               f"{SCHEMA}: upgrade condense-kit")
        records.append(rec)
    return records


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, dict]:
    """``key -> record``: the last record of each cell, where a successful one beats any failed one."""
    out: dict[str, dict] = {}
    for rec in records:
        prev = out.get(rec["key"])
        if prev is None or rec.get("status") == "ok" or prev.get("status") != "ok":
            out[rec["key"]] = dict(rec)
    return out


def merge(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """The records of several results files, one per cell (see :func:`latest`), in suite-cell order."""
    records: list[dict] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no results file at {str(path)!r}")
        for rec in read(path):
            rec.setdefault("_source", str(path))
            records.append(rec)
    merged = latest(records).values()
    return sorted(merged, key=lambda r: (str(r.get("suite", "")), r.get("index", 0), r["key"]))


def write(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``records`` as a new results file, atomically."""
    return write_atomic(path, b"".join(encode({k: v for k, v in rec.items() if k != "_source"}) for rec in records))

"""Checkpoint, resume and non-finite-loss guard for every iterative method.

A method hands its whole mutable state to a :class:`Checkpointer` and lets it drive the loop::

    ckpt = Checkpointer(run_dir, every=100, identity=to_dict(config),
                        state={"images": syn, "opt": opt, "gen": gen})
    for it in ckpt.loop(total, desc="datadam"):
        loss = ...; opt.step()
        ckpt.report(loss)          # one host sync per outer step

What it does:

* **resume**: ``loop`` first loads the newest checkpoint in ``run_dir/checkpoints`` (if any) into the state
  objects and continues from the step after it. Everything that decides the future (tensors, optimiser
  and scheduler states, torch/NumPy generators) is part of the state, so a resumed run ends bit-identical
  to an uninterrupted one with the same seed.
* **periodic saves**: every ``every`` steps and at the end, the state is written atomically as a
  safetensors file (tensors + a JSON skeleton of the nesting; nothing is pickled); the newest ``keep``
  files are kept. A checkpoint made with a different ``identity`` (e.g. another config) is refused.
* **non-finite guard**: when a reported loss is NaN/inf, the state is rolled back to the last good
  snapshot (taken at every save, and at the start) and the loop rewinds to that step. Random generators are
  *not* rolled back, so the replay draws fresh randomness instead of diverging identically. After
  ``max_rollbacks`` rollbacks, or at once with ``on_nonfinite="raise"``, :class:`NonFiniteLossError` stops the
  run with a message naming the step and the loss.

Supported state objects: tensors (restored in place, so optimisers that hold them stay valid), anything
with ``state_dict``/``load_state_dict`` (modules, optimisers, schedulers), ``torch.Generator``,
``numpy.random.Generator``, and a :class:`Counter` for plain numbers that change during the run.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

import numpy as np
import torch

from condense import tracking
from condense.artifacts import SCHEMA_VERSION, content_digest, read_file, write_safetensors
from condense.progress import Progress, get_logger

_FILE_RE = re.compile(r"^step-(\d{9})\.safetensors$")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf and rolling back did not help (or rollback was disabled)."""


class CheckpointMismatch(ValueError):
    """A checkpoint in the run folder belongs to a run with another identity (config, seed, data)."""


@dataclass
class Counter:
    """A mutable holder for plain JSON values that are part of the state (e.g. a skip counter)."""

    value: Any = 0


# -- nested state <-> (flat tensors, JSON skeleton) --------------------------------------------------
def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().clone()
        return {"__tensor__": path}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _encode(v, f"{path}.{k}", tensors) for k, v in obj.items()}}
        return {"__items__": [[k, _encode(v, f"{path}.{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {path!r}")


def _decode(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__dict__" in node:
            return {k: _decode(v, tensors) for k, v in node["__dict__"].items()}
        if "__items__" in node:
            return {k: _decode(v, tensors) for k, v in node["__items__"]}
        if "__tuple__" in node:
            return tuple(_decode(v, tensors) for v in node["__tuple__"])
        if "__float__" in node:
            return float(node["__float__"])
    return node


def capture(state: Mapping[str, Any]) -> dict[str, Any]:
    """Snapshot every state object into plain nested data (tensors are cloned to the CPU)."""
    snap: dict[str, Any] = {}
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            snap[name] = {"tensor": obj.detach().cpu().clone()}
        elif isinstance(obj, torch.Generator):
            snap[name] = {"torch_generator": obj.get_state().clone()}
        elif isinstance(obj, np.random.Generator):
            snap[name] = {"numpy_generator": obj.bit_generator.state}
        elif isinstance(obj, Counter):
            snap[name] = {"value": obj.value}
        elif hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
            snap[name] = {"state_dict": _clone(obj.state_dict())}
        else:
            raise TypeError(f"state entry {name!r}: cannot checkpoint a {type(obj).__name__}")
    return snap


def _clone(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, Mapping):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


def restore(state: Mapping[str, Any], snap: Mapping[str, Any], *, generators: bool = True) -> None:
    """Load a :func:`capture` snapshot back into the state objects (tensors in place)."""
    missing = set(state) - set(snap)
    if missing:
        raise CheckpointMismatch(f"checkpoint lacks state entries {sorted(missing)}")
    for name, obj in state.items():
        entry = snap[name]
        if isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(entry["tensor"].to(obj.device))
        elif isinstance(obj, torch.Generator):
            if generators:
                obj.set_state(entry["torch_generator"].to(torch.uint8))
        elif isinstance(obj, np.random.Generator):
            if generators:
                obj.bit_generator.state = entry["numpy_generator"]
        elif isinstance(obj, Counter):
            obj.value = entry["value"]
        else:
            obj.load_state_dict(_clone(entry["state_dict"]))


def checkpoint_files(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(step, path), ...]`` of the checkpoints in ``run_dir/checkpoints``, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _FILE_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def save_snapshot(path: Path, step: int, snap: Mapping[str, Any], identity: Mapping[str, Any]) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(dict(snap), "s", tensors)
    meta = {
        "kind": "Checkpoint",
        "schema_version": SCHEMA_VERSION,
        "step": step,
        "identity": identity,
        "state": skeleton,
        "content_sha256": content_digest(tensors),
    }
    return write_safetensors(path, tensors, meta)


def load_snapshot(path: Path) -> tuple[int, dict[str, Any], Any]:
    tensors, meta = read_file(path)
    if meta.get("kind") != "Checkpoint":
        raise CheckpointMismatch(f"{str(path)!r} is not a checkpoint (kind {meta.get('kind')!r})")
    return int(meta["step"]), _decode(meta["state"], tensors), meta.get("identity")


class Checkpointer:
    """Drive an iterative loop with periodic checkpoints, resume and a non-finite-loss guard (see module doc).

    ``run_dir=None`` keeps snapshots in memory only (rollback still works; nothing is written).
    ``every`` is the save/snapshot period in steps; ``keep`` how many checkpoint files to keep.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        state: Mapping[str, Any],
        *,
        every: int = 100,
        keep: int = 2,
        identity: Mapping[str, Any] | None = None,
        on_nonfinite: Literal["rollback", "raise"] = "rollback",
        max_rollbacks: int = 3,
        resume: bool = True,
    ):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (steps between checkpoints), got {every!r}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}")
        if on_nonfinite not in ("rollback", "raise"):
            raise ValueError(f"on_nonfinite must be 'rollback' or 'raise', got {on_nonfinite!r}")
        if max_rollbacks < 0:
            raise ValueError(f"max_rollbacks must be >= 0, got {max_rollbacks!r}")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.state = dict(state)
        self.every = every
        self.keep = keep
        self.identity = json.loads(json.dumps(dict(identity or {})))
        self.on_nonfinite = on_nonfinite
        self.max_rollbacks = max_rollbacks
        self.resume_enabled = resume
        self.rollbacks = 0
        self.resumed_from: int | None = None
        self._loss: torch.Tensor | float | None = None
        self._postfix: dict[str, Any] = {}
        self._good: tuple[int, dict[str, Any]] | None = None
        self.log = get_logger("condense.checkpoint")

    # -- persistence ------------------------------------------------------------------------------
    def _save(self, step: int, snap: Mapping[str, Any]) -> None:
        from condense import distributed

        if self.run_dir is None or not distributed.is_main():  # ranks share one state; rank 0 writes it
            return
        path = self.run_dir / "checkpoints" / f"step-{step:09d}.safetensors"
        save_snapshot(path, step, snap, self.identity)
        for _, old in checkpoint_files(self.run_dir)[: -self.keep]:
            old.unlink(missing_ok=True)

    def _resume(self) -> int:
        if self.run_dir is None or not self.resume_enabled:
            return 0
        files = checkpoint_files(self.run_dir)
        if not files:
            return 0
        step, path = files[-1]
        saved_step, snap, identity = load_snapshot(path)
        if identity != self.identity:
            diff = sorted(
                k for k in set(identity or {}) | set(self.identity)
                if (identity or {}).get(k) != self.identity.get(k)
            )
            raise CheckpointMismatch(
                f"the checkpoint {str(path)!r} belongs to a different run (differs in {diff}); "
                "use another --out folder or delete its checkpoints/"
            )
        restore(self.state, snap)
        self.resumed_from = saved_step
        self.log.info("resumed from %s (step %d)", path, saved_step)
        return saved_step

    # -- the loop ---------------------------------------------------------------------------------
    def report(self, loss: torch.Tensor | float, **postfix: Any) -> None:
        """Record this step's loss (and extra values for the progress bar, e.g. a learned lr)."""
        self._loss = loss
        self._postfix = postfix

    def loop(self, total: int, desc: str = "") -> Iterator[int]:
        """Yield step indices ``start..total-1``; the body must call :meth:`report` once per step."""
        if not isinstance(total, int) or total < 0:
            raise ValueError(f"total must be a non-negative integer, got {total!r}")
        step = self._resume()
        if step > total:
            raise CheckpointMismatch(f"the run folder holds a checkpoint at step {step}, beyond total={total}")
        self._good = (step, capture(self.state))
        with Progress(total=total, desc=desc, initial=step) as bar:
            while step < total:
                self._loss = None
                yield step
                if self._loss is None:
                    raise RuntimeError("Checkpointer.loop: the loop body must call report(loss) every step")
                loss = self._loss
                finite = bool(torch.isfinite(loss).all()) if isinstance(loss, torch.Tensor) else math.isfinite(loss)
                if not finite:
                    step = self._rollback(step, loss, bar)
                    continue
                step += 1
                bar.update(1, loss=loss, **self._postfix)
                tracking.step(desc or "loop", step, total, loss=loss, images=self.state.get("images"), **self._postfix)
                if step % self.every == 0 or step == total:
                    snap = capture(self.state)
                    self._good = (step, snap)
                    self._save(step, snap)

    def _rollback(self, step: int, loss: Any, bar: Progress) -> int:
        value = float(loss.detach().float().reshape(-1)[0]) if isinstance(loss, torch.Tensor) else float(loss)
        if self.on_nonfinite == "raise" or self.rollbacks >= self.max_rollbacks:
            tried = "" if self.on_nonfinite == "raise" else f" after {self.rollbacks} rollback(s)"
            raise NonFiniteLossError(
                f"loss became {value} at step {step}{tried}; the run diverged. Lower the learning rate(s) or "
                "check the inputs for NaN/inf values"
            )
        good_step, snap = self._good
        restore(self.state, snap, generators=False)
        self.rollbacks += 1
        bar.write(f"non-finite loss ({value}) at step {step}: rolled back to step {good_step} "
                  f"(rollback {self.rollbacks}/{self.max_rollbacks})")
        bar.bar.n = good_step
        bar.bar.refresh()
        return good_step

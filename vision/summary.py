"""The end of an image distillation run, shared by DataDAM and trajectory matching: the :class:`ImageSet` with the
preprocessing that maps it back to pixels, the run's summary (timing, memory, resume and rollback counts) and the
PNG grid in the run folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from condense.artifacts import ImageSet
from condense.checkpoint import Checkpointer
from condense.config import to_dict
from condense.runtime import Meter


def preprocessing(data, zca) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the metadata that map the set's space back to [0, 1] pixels: the ZCA transform, else the
    dataset's mean/std, else nothing (data taken as given)."""
    tensors: dict[str, torch.Tensor] = {}
    if data.space != "given":
        tensors["mean"] = torch.tensor(data.mean, dtype=torch.float32)
        tensors["std"] = torch.tensor(data.std, dtype=torch.float32)
    if zca is not None:
        tensors.update(zca.tensors())
        return tensors, zca.meta()
    if data.space == "given":
        return tensors, {"space": "given"}
    return tensors, {"space": "normalised", "mean": list(data.mean), "std": list(data.std)}


def run_summary(meter: Meter, ckpt: Checkpointer, total: int, /, **fields: Any) -> dict[str, Any]:
    """``fields`` followed by wall time, iterations per second (of this process's iterations), peak memory (of this
    process: rank 0's under ``torchrun``), the number of ranks, and the resume step and rollback count when they
    happened."""
    from condense import distributed

    m = meter.result
    done = total - (ckpt.resumed_from or 0)
    summary = dict(fields)
    summary.update({
        "wall_s": round(m.wall_s, 2), "it_per_s": round(done / m.wall_s, 3) if m.wall_s > 0 and done else None,
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "peak_cuda_mb": None if m.peak_cuda_mb is None else round(m.peak_cuda_mb, 1),
        "ranks": distributed.world_size(),
    })
    if ckpt.resumed_from:
        summary["resumed_from"] = ckpt.resumed_from
    if ckpt.rollbacks:
        summary["rollbacks"] = ckpt.rollbacks
    return summary


def soft_labels(cfg: Any, data, images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, dict[str, Any]]:
    """A teacher's logits for the final images, and how they were made: the teacher is the method's evaluation
    network trained on the real training split in the set's space (:mod:`condense.vision.teacher`; cached, so the
    evaluation's soft labels for random real images come from the same teacher)."""
    from condense.vision.presets import EVAL_PROFILES
    from condense.vision.teacher import TeacherConfig, relabel, train_teacher

    model = EVAL_PROFILES[cfg.eval_profile]["model"]
    teacher, meta = train_teacher(data, TeacherConfig(model=model), device=device)
    return relabel(teacher, images.detach().float()).cpu(), {
        "kind": "teacher logits", "teacher": meta["model"], "teacher_config": meta["config"],
        "teacher_test_accuracy": meta["test_accuracy"]}


def finish(method: str, cfg: Any, data, zca, images: torch.Tensor, labels: torch.Tensor, *, seed: int,
           device: torch.device, summary: Mapping[str, Any], meter: Meter, extra_tensors: Mapping[str, Any] = (),
           extra: Mapping[str, Any] | None = None, run_dir: str | os.PathLike | None = None) -> ImageSet:
    """Build the run's :class:`ImageSet` (and, with ``run_dir``, write ``<run_dir>/<method>.png``)."""
    pre_tensors, pre_meta = preprocessing(data, zca)
    ipc = int(cfg.ipc)
    extra_tensors, extra = dict(extra_tensors), dict(extra or {})
    if getattr(cfg, "soft_labels", False):
        extra_tensors["soft_labels"], extra["soft_labels"] = soft_labels(cfg, data, images, device)
    artifact = ImageSet.create(
        {"images": images.detach().float(), "labels": labels, **extra_tensors, **pre_tensors},
        method=method, config=to_dict(cfg), source=data.source_meta(),
        budget={"ipc": ipc, "images": int(labels.numel()), "iterations": cfg.iterations}, seed=seed,
        device=str(device),
        extra={"summary": dict(summary), "eval_profile": cfg.eval_profile, "preprocessing": pre_meta,
               "classes": list(data.classes), "timing": meter.result.as_dict(), **extra},
    )
    from condense import distributed

    if run_dir is not None and distributed.is_main():
        from condense.vision.plots import save_grid

        save_grid(artifact, Path(run_dir) / f"{method}.png")
    return artifact

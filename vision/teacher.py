"""Teachers for soft labels: a network trained on the real training split, cached, that relabels images.

A soft label is the teacher's logit vector z(x) ∈ R^K for an image x. Soft-label evaluation trains the student on
the set with the temperature-scaled KL divergence to those logits
(:func:`condense.vision.evaluate.soft_label_loss`), the knowledge-distillation recipe recent distillation methods
evaluate with. Where a set stores no soft labels of its own, the teacher relabels its images; random real
images, the other coresets and a set's own images are relabelled by the same teacher, so a comparison holds the
labels fixed.

The teacher is the evaluation network trained by the full-data protocol of :mod:`condense.vision.evaluate`
(minibatch SGD, momentum 0.9, weight decay 5e-4, DSA, one lr decay after half the epochs) for
:attr:`TeacherConfig.epochs` epochs on the whole training split, in the set's input space. It is cached per
dataset, input space and architecture: ``<cache>/teachers/<key>.safetensors`` holds its weights, and its metadata
records what it was trained on and its test accuracy. A later call with the same key loads it instead of training.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from condense.artifacts import SCHEMA_VERSION, read_file, write_safetensors
from condense.config import require
from condense.data import cache_dir
from condense.progress import get_logger

log = get_logger("condense.teacher")
SCHEMA = 1


@dataclass(frozen=True)
class TeacherConfig:
    """How a teacher is trained (the full-data protocol's settings)."""

    model: str = "convnet"
    epochs: int = 30
    batch: int = 256
    lr: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.epochs, int) and self.epochs >= 1, "teacher epochs",
                f"must be a positive integer, got {self.epochs!r}")
        require(isinstance(self.batch, int) and self.batch >= 1, "teacher batch",
                f"must be a positive integer, got {self.batch!r}")
        require(self.lr > 0, "teacher lr", f"must be positive, got {self.lr!r}")


def space_key(data) -> dict[str, Any]:
    """What fixes the input space of ``data`` (an ImageData): its content, and its ZCA transform or mean/std."""
    pre = data.extra.get("preprocessing") or {}
    return {"fingerprint": data.fingerprint, "space": data.space, "zca": pre.get("fingerprint"),
            "mean": list(data.mean), "std": list(data.std), "shape": list(data.x_train.shape[1:])}


def teacher_path(data, config: TeacherConfig) -> Path:
    key = json.dumps({"schema": SCHEMA, "data": space_key(data), "config": asdict(config)}, sort_keys=True)
    return cache_dir() / "teachers" / f"{data.name}-{config.model}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"


def train_teacher(data, config: TeacherConfig = TeacherConfig(), *, device: str | torch.device = "cpu",
                  cache: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The teacher of ``data`` (an ImageData in the set's input space): loaded from the cache, or trained on the
    whole training split and cached. Returns ``(network in eval mode, its metadata)``."""
    from condense.vision.augment import DSA, DSAConfig, strategy_for
    from condense.vision.evaluate import ImageEvalConfig, accuracy, train_net
    from condense.vision.nets import build_net, resolved_name

    dev = torch.device(device)
    if data.x_train.shape[0] == 0:
        raise ValueError("a teacher needs the real training split, and this data has none")
    shape = tuple(data.x_train.shape[1:])
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    net = build_net(config.model, shape[0], data.num_classes, shape[1:], device=dev, generator=gen)
    path = teacher_path(data, config)
    if cache and path.is_file():
        tensors, meta = read_file(path)
        net.load_state_dict({k: v.to(dev) for k, v in tensors.items()})
        return net.eval(), meta
    log.info("training a %s teacher on the %d training images of %s (%d epochs)", config.model,
             int(data.x_train.shape[0]), data.name, config.epochs)
    eval_cfg = ImageEvalConfig(model=config.model, epochs=config.epochs, batch=config.batch)
    dsa = DSA(DSAConfig(strategy=strategy_for(data.name)))
    train_net(net, data.x_train.to(dev), data.y_train.to(dev), eval_cfg, lr=config.lr, epochs=config.epochs,
              batch=config.batch, generator=gen, dsa=dsa)
    net.eval()
    test_acc = accuracy(net, data.x_test.to(dev), data.y_test.to(dev)) if data.x_test.shape[0] else None
    meta = {"kind": "Teacher", "schema_version": SCHEMA_VERSION, "model": resolved_name(config.model, shape[1:]),
            "config": asdict(config), "data": space_key(data), "dataset": data.name, "test_accuracy": test_acc}
    if cache:
        write_safetensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, meta)
    return net, meta


@torch.no_grad()
def relabel(teacher: torch.nn.Module, images, batch: int = 500) -> torch.Tensor:
    """The teacher's logits [N, K] (float32) for ``images`` [N, C, H, W] (a tensor or an image store)."""
    teacher.eval()
    device = next(teacher.parameters()).device
    chunks = [teacher(images[start:start + batch].to(device)).float() for start in range(0, images.shape[0], batch)]
    return torch.cat(chunks) if chunks else torch.zeros(0)

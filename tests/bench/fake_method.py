"""A tiny, deterministic stand-in method for the bench tests (a bench plugin: ``--plugin this_file.py``).

``fakecond`` distils the built-in ``toy`` data set (three Gaussian classes of 2x2 one-channel "images") into
``ipc`` images per class: the class means of a seeded subsample plus seeded noise. Its evaluator classifies
the toy test set by the nearest synthetic image (after a seeded jitter per run), so every number is a real
function of the artifact and the seed, and two runs of one cell give identical records.

Environment switches for interruption tests (they do not change cell keys):

* ``FAKE_INTERRUPT_AT=dataset:ipc:seed`` raises ``KeyboardInterrupt`` in that cell;
* ``FAKE_HANG_AT=dataset:ipc:seed`` writes the file ``$FAKE_HANG_MARKER`` and then sleeps in that cell;
* ``FAKE_CRASH_AT=dataset:ipc:seed`` kills its own process with SIGKILL in that cell;
* ``FAKE_CALLS=path`` appends one line per distillation to ``path`` (to count what actually ran).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import torch

from condense import registry
from condense.artifacts import ImageSet
from condense.config import ConfigError
from condense.data import DatasetNotFound
from condense.method import Method

NAME = "fakecond"
CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 3, 30, 20
SHAPE = (1, 2, 2)
_HANG_S = 600


def toy(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy data: class c is N(centre_c, 0.8²) per pixel, centres fixed; train and test from fixed seeds."""
    g = torch.Generator().manual_seed(1234 if split == "train" else 4321)
    n = TRAIN_PER_CLASS if split == "train" else TEST_PER_CLASS
    centres = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
    y = torch.arange(CLASSES).repeat_interleave(n)
    x = centres[y] + 0.8 * torch.randn(len(y), 4, generator=g)
    return x.view(-1, *SHAPE), y


def _switch(name: str, dataset: str, ipc: int, seed: int) -> bool:
    return os.environ.get(name) == f"{dataset}:{ipc}:{seed}"


@dataclass
class FakeConfig:
    """The stand-in's settings: images per class, the noise added to the class means, and a folder that a
    preparation step made (checked to exist)."""

    ipc: int = 1
    noise: float = 0.1
    prepared: str | None = None


@dataclass
class ToyData:
    name: str
    train_per_class: int | None


class FakeCond(Method):
    name = NAME
    config_class = FakeConfig

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0) -> ToyData:
        if name != "toy":
            raise DatasetNotFound(name, [str(data_root or "<default>")], [f"{name}.npz"])
        return ToyData(name, train_per_class)

    def fit(self, data, *, device="auto", seed=0, run_dir=None) -> ImageSet:
        cfg = self.config
        ipc, noise, prepared = cfg.ipc, cfg.noise, cfg.prepared
        if prepared is not None and not os.path.isdir(prepared):
            raise FileNotFoundError(f"prepared={prepared!r} is not a folder")
        dataset = data.name
        if os.environ.get("FAKE_CALLS"):
            with open(os.environ["FAKE_CALLS"], "a") as fh:
                fh.write(f"{dataset}:{ipc}:{seed}\n")
        if _switch("FAKE_INTERRUPT_AT", dataset, ipc, seed):
            raise KeyboardInterrupt
        if _switch("FAKE_CRASH_AT", dataset, ipc, seed):
            os.kill(os.getpid(), signal.SIGKILL)
        if _switch("FAKE_HANG_AT", dataset, ipc, seed):
            with open(os.environ["FAKE_HANG_MARKER"], "w") as fh:
                fh.write("hanging\n")
            time.sleep(_HANG_S)
        x, y = toy("train")
        g = torch.Generator().manual_seed(seed)
        images, labels = [], []
        for c in range(CLASSES):
            pool = x[y == c]
            if data.train_per_class is not None:
                pool = pool[torch.randperm(len(pool), generator=g)[:data.train_per_class]]
            images.append(pool.mean(0, keepdim=True) + noise * torch.randn(ipc, *SHAPE, generator=g))
            labels.append(torch.full((ipc,), c, dtype=torch.int64))
        return ImageSet.create({"images": torch.cat(images), "labels": torch.cat(labels),
                                "mean": torch.zeros(1), "std": torch.ones(1)},
                               method=NAME, config={"ipc": ipc, "noise": noise, "prepared": prepared},
                               source={"name": dataset}, budget={"ipc": ipc}, seed=seed, device="cpu")


def _accuracy(images: torch.Tensor, labels: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    d = torch.cdist(x.flatten(1), images.flatten(1))
    return float((labels[d.argmin(1)] == y).double().mean())


def _stats(runs: list[float]) -> dict:
    t = torch.tensor(runs, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)), "runs": runs}


def evaluate(artifact, data=None, *, model=None, runs=None, data_root=None, device="auto", seed=0, baselines=False,
             **overrides) -> dict:
    jitter = float(overrides.pop("jitter", 0.3))
    if overrides:
        raise ConfigError(f"unknown evaluation key(s) {sorted(overrides)}; known: jitter")
    runs = runs or 2
    x, y = toy("train")
    xt, yt = toy("test")
    sets = {"distilled": (artifact.images, artifact.labels)}
    if baselines:
        g = torch.Generator().manual_seed(seed)
        ipc = len(artifact.labels) // CLASSES
        pick = torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(TRAIN_PER_CLASS, generator=g)[:ipc]]
                          for c in range(CLASSES)])
        sets["random"] = (x[pick], y[pick])
        sets["full"] = (x, y)
    out = {}
    for name, (images, labels) in sets.items():
        accs = []
        for r in range(runs):
            g = torch.Generator().manual_seed(1000 * seed + r)
            accs.append(_accuracy(images + jitter * torch.randn(images.shape, generator=g), labels, xt, yt))
        out[name] = {"accuracy": _stats(accs)}
    n_syn = len(artifact.labels)
    return {
        "kind": artifact.kind, "method": NAME, "dataset": "toy", "model": model or "nearest-image",
        "results": out,
        "compression": {"samples": len(y) / n_syn, "bytes": x.numel() * 4 / artifact.nbytes,
                        "distilled_samples": n_syn, "full_samples": len(y), "distilled_bytes": artifact.nbytes,
                        "full_bytes": x.numel() * 4},
        "timing": {"runs": runs}, "table": "fake evaluation",
    }


ENTRY = registry.MethodEntry(name=NAME, target=f"{__name__}:FakeCond", family="vision", produces="ImageSet",
                             summary="toy stand-in for the bench tests", paper="-", default_dataset="toy")


def install() -> None:
    """Register ``fakecond`` and make it the ``ImageSet`` evaluator (tests undo this with monkeypatch)."""
    registry.register(ENTRY, replace=True)
    registry.EVALUATORS["ImageSet"] = f"{__name__}:evaluate"


install()

"""Expert trajectories for trajectory matching: train networks on the real data, record θ after every epoch.

MTT (Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR 2022, ``buffer.py``)
with the smooth-expert options of AST (Shen et al., arXiv 2310.10541, ``buffer.py``).

For expert e (its own seed, derived from the run seed and e, so a buffer does not depend on how it was split
across processes):

1. draw a ConvNet θ_0 (instance norm; depth by resolution) from a seeded generator and record it;
2. train T = ``epochs`` epochs on the training set, already in the model space (mean/std normalised or
   ZCA-whitened once): shuffled minibatches of 256, cross-entropy, per-sample DSA on every batch;
3. record θ_e after every epoch, giving a float32 trajectory [T+1, P] in the parameter order of
   ``net.named_parameters()``.

Optimiser profiles (:data:`OPTIMIZERS`): ``sgd`` (MTT: lr 0.01, no momentum, no weight decay, optional ×0.1
decay) and ``sgd_momentum`` (AST: lr 0.003, momentum 0.9, weight decay 1e-3, ×0.6 always). The decay is
applied after epoch index T//2+1 (0-based, as the references' ``if e in lr_schedule``) by **rebuilding** the
optimiser, which resets the momentum buffer exactly as the references do.

AST smoothing options (each independent):

* ``loss_clipping`` (AST ``loss_decay``): in epoch e the cross-entropy is scaled by
  :math:`c_e = \\min(0.5 + 0.05\\,e,\\ 1)`, i.e. 0.5, 0.55, …, 0.95 for e = 0…9, then 1;
* ``grad_penalty`` λ (AST uses 2): a second forward on the **un-augmented** batch x gives
  :math:`G = \\partial(\\sum_{n,k} \\mathrm{logits}_{n,k})/\\partial x` (with ``create_graph``) and
  :math:`GP = \\lambda\\,\\mathrm{mean}_{n,h,w}\\big(\\|G[n,:,h,w]\\|_2 - 1\\big)^2` (norm over channels, per pixel);
  the batch loss is :math:`c_e\\,CE(\\mathrm{aug}(x)) + GP` (a double backward per step).

**Storage** (never pickles): a folder holding ``buffer.json`` (the manifest: architecture, parameter names,
shapes and order, dataset fingerprint, preprocessing with the ZCA fingerprint, optimiser profile,
augmentation, seeds) and one safetensors shard per expert, ``expert-00007.safetensors``, with the tensor
``trajectory`` [T+1, P] and the same identity in its metadata; ZCA buffers also hold ``zca.safetensors``.
Each shard is written atomically, so generation **resumes expert by expert**: rerunning the command skips
the experts already on disk. Generation can be **split by expert index** (``indices``, :func:`shard_indices`
for ``--shard i/n`` (1-based, :mod:`condense.shard`)/``--experts-range a:b``, or the ``RANK``/``WORLD_SIZE``
variables that ``torchrun`` sets);
shares written into one folder need nothing more, shares written elsewhere are combined by
:func:`merge_buffers`. :class:`ExpertBuffer` refuses to serve a student with another architecture, parameter
layout or preprocessing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from condense import distributed, tracking
from condense.artifacts import SCHEMA_VERSION, ArtifactError, read_file, write_atomic, write_safetensors
from condense.config import build_config, from_dict, require, to_dict
from condense.progress import Progress, get_logger
from condense.runtime import Meter, resolve_device
from condense.shard import Shard
from condense.vision.augment import DSA, DSAConfig, strategy_for
from condense.vision.nets import build_net, net_name
from condense.vision.presets import EXPERT_PRESETS
from condense.vision.summary import preprocessing

MANIFEST = "buffer.json"
ZCA_FILE = "zca.safetensors"
SHARD_PATTERN = "expert-{:05d}.safetensors"
TRAJECTORY_KEY = "trajectory"
#: loss clipping (AST ``loss_decay``): c_e = min(CLIP_START + CLIP_STEP·e, 1)
CLIP_START, CLIP_STEP = 0.5, 0.05
#: batch size of the test pass that records each expert's final accuracy
TEST_BATCH = 1000
#: domain separator of the per-expert seeds
_SEED_TAG = 0x4D5454

log = get_logger("condense.experts")


@dataclass(frozen=True)
class OptimizerProfile:
    """SGD settings of an expert optimiser profile."""

    lr: float
    momentum: float
    weight_decay: float
    decay: float  # lr factor applied after epoch T//2+1
    decay_default: bool  # whether the decay is on unless ``lr_decay`` says otherwise


#: expert optimiser profiles: MTT's plain SGD and AST's SGD with momentum
OPTIMIZERS: dict[str, OptimizerProfile] = {
    "sgd": OptimizerProfile(lr=0.01, momentum=0.0, weight_decay=0.0, decay=0.1, decay_default=False),
    "sgd_momentum": OptimizerProfile(lr=0.003, momentum=0.9, weight_decay=1e-3, decay=0.6, decay_default=True),
}


@dataclass
class ExpertConfig:
    """How expert trajectories are trained; defaults are MTT's ``buffer.py``."""

    experts: int = 100
    epochs: int = 50  # T
    model: str = "convnet"  # depth by resolution
    optimizer: Literal["sgd", "sgd_momentum"] = "sgd"
    lr: float | None = None  # None: the profile's (0.01 sgd, 0.003 sgd_momentum)
    momentum: float | None = None  # None: the profile's
    weight_decay: float | None = None  # None: the profile's
    lr_decay: bool | None = None  # None: the profile's (off for sgd, on for sgd_momentum)
    batch: int = 256
    loss_clipping: bool = False
    grad_penalty: float = 0.0  # λ_gp; 0 = off (AST: 2)
    dsa: bool = True
    dsa_strategy: str | None = None  # None: by dataset (no flip for digit datasets)
    align_corners: bool = True  # MTT's copy of DSA
    zca: bool = False
    zca_eps: float = 0.1

    def __post_init__(self) -> None:
        for key in ("experts", "epochs", "batch"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, key,
                    f"must be a positive integer, got {value!r}")
        require(self.lr is None or self.lr > 0, "lr", f"must be positive, got {self.lr!r}")
        require(self.momentum is None or 0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum!r}")
        require(self.weight_decay is None or self.weight_decay >= 0, "weight_decay",
                f"must be >= 0, got {self.weight_decay!r}")
        require(self.grad_penalty >= 0, "grad_penalty", f"must be >= 0 (0 turns it off), got {self.grad_penalty!r}")
        require(self.zca_eps > 0, "zca_eps", f"must be positive, got {self.zca_eps!r}")
        DSAConfig(strategy=self.dsa_strategy or "none")  # validates the strategy's names

    def optimizer_settings(self) -> OptimizerProfile:
        """The profile with this config's explicit values filled in."""
        p = OPTIMIZERS[self.optimizer]
        return OptimizerProfile(
            lr=p.lr if self.lr is None else self.lr,
            momentum=p.momentum if self.momentum is None else self.momentum,
            weight_decay=p.weight_decay if self.weight_decay is None else self.weight_decay,
            decay=p.decay,
            decay_default=p.decay_default if self.lr_decay is None else self.lr_decay,
        )


# -- the flat parameter vector --------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of a network's parameters, in order: the layout of a flat vector θ ∈ R^P."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, module: torch.nn.Module) -> "ParamLayout":
        named = list(module.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "ParamLayout":
        return cls(tuple(meta["names"]), tuple(tuple(int(d) for d in s) for s in meta["shapes"]))

    def meta(self) -> dict[str, Any]:
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes], "count": self.size}

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def size(self) -> int:
        """P, the length of the flat vector."""
        return sum(self.numels)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: view}`` of a flat vector (differentiable; what ``functional_call`` takes)."""
        if flat.dim() != 1 or flat.shape[0] != self.size:
            raise ValueError(f"expected a flat parameter vector of {self.size} values, got shape {list(flat.shape)}")
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(flat, self.numels), self.shapes)}

    def flatten(self, module: torch.nn.Module) -> torch.Tensor:
        """The module's parameters as one detached flat vector (in this layout's order and their dtype)."""
        params = dict(module.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def mask(self, ndim: int, device: torch.device | str | None = None) -> torch.Tensor:
        """A boolean [P] mask of the entries that belong to ``ndim``-dimensional tensors (4: conv kernels)."""
        parts = [torch.full((n,), len(s) == ndim, dtype=torch.bool, device=device) for n, s in zip(self.numels, self.shapes)]
        return torch.cat(parts)

    def segment_ids(self, device: torch.device | str | None = None) -> torch.Tensor:
        """[P] int64: which parameter tensor each entry belongs to."""
        return torch.repeat_interleave(torch.arange(len(self.names), device=device),
                                       torch.tensor(self.numels, device=device))


# -- AST smoothing terms ----------------------------------------------------------------------------------
def loss_scale(epoch: int, enabled: bool = True) -> float:
    """AST's loss clipping c_e = min(0.5 + 0.05·e, 1) for 0-based epoch e (1 when disabled)."""
    if not enabled:
        return 1.0
    return min(CLIP_START + CLIP_STEP * epoch, 1.0)


def gradient_penalty(model, x: torch.Tensor, weight: float) -> torch.Tensor:
    """λ·mean_{n,h,w}(‖G[n,:,h,w]‖₂ − 1)² with G = ∂(Σ logits)/∂x, kept differentiable (AST's penalty).

    ``model`` is any callable mapping a batch [N, C, H, W] to logits; ``x`` is the un-augmented batch.
    """
    x = x.detach().requires_grad_(True)
    out = model(x).sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    return weight * (torch.linalg.vector_norm(grad, dim=1) - 1.0).pow(2).mean()


# -- training one expert ------------------------------------------------------------------------------
def expert_seed(seed: int, index: int) -> int:
    """The seed of expert ``index``: independent of which process trains it."""
    ss = np.random.SeedSequence([int(seed), int(index), _SEED_TAG])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


@torch.no_grad()
def _accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, x.shape[0], TEST_BATCH):
        correct += (net(x[start:start + TEST_BATCH]).argmax(1) == y[start:start + TEST_BATCH]).sum()
    return float(correct) / max(int(y.shape[0]), 1)


def train_expert(x: torch.Tensor, y: torch.Tensor, num_classes: int, config: ExpertConfig, *, seed: int,
                 strategy: str, x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                 bar: Progress | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Train one expert (module docstring) and return its trajectory [T+1, P] and a small record.

    Everything random comes from one generator seeded with ``seed`` on ``x``'s device.
    """
    dev = x.device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    net = build_net(config.model, x.shape[1], num_classes, tuple(x.shape[2:]), device=dev, generator=gen)
    net.train()
    layout = ParamLayout.of(net)
    opt_cfg = config.optimizer_settings()
    dsa = DSA(DSAConfig(strategy=strategy, align_corners=config.align_corners)) if config.dsa else None

    def optimiser(lr: float) -> torch.optim.SGD:
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=opt_cfg.momentum, weight_decay=opt_cfg.weight_decay)

    lr = opt_cfg.lr
    opt = optimiser(lr)
    decay_epoch = config.epochs // 2 + 1
    trajectory = torch.empty(config.epochs + 1, layout.size, device=dev)
    trajectory[0] = layout.flatten(net)
    n = x.shape[0]
    train_acc = []
    for ep in range(config.epochs):
        scale = loss_scale(ep, config.loss_clipping)
        order = torch.randperm(n, generator=gen, device=dev)
        correct = torch.zeros((), dtype=torch.long, device=dev)
        for start in range(0, n, config.batch):
            idx = order[start:start + config.batch]
            xb, yb = x[idx], y[idx]
            logits = net(dsa(xb, gen) if dsa is not None else xb)
            loss = scale * F.cross_entropy(logits, yb)
            if config.grad_penalty > 0:
                loss = loss + gradient_penalty(net, xb, config.grad_penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (logits.detach().argmax(1) == yb).sum()
        trajectory[ep + 1] = layout.flatten(net)
        train_acc.append(correct)
        if opt_cfg.decay_default and ep == decay_epoch:
            lr *= opt_cfg.decay
            opt = optimiser(lr)  # rebuilt, as the references do: the momentum buffer starts again from zero
        if bar is not None:
            bar.update(1)
    record = {"seed": int(seed), "train_acc": [float(c) / n for c in train_acc]}
    if x_test is not None and y_test is not None:
        record["test_acc"] = _accuracy(net, x_test, y_test)
    return trajectory.cpu(), record


# -- buffers on disk ---------------------------------------------------------------------------------
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def shard_indices(experts: int, *, shard: Shard | None = None,
                  experts_range: tuple[int, int] | None = None) -> list[int]:
    """The expert indices one process trains.

    ``shard``: the experts e of :class:`condense.shard.Shard` i/n (e mod n = i − 1), for separate runs;
    ``experts_range=(a, b)``: a ≤ e < b (under ``torchrun``, this rank's share of them); neither: this rank's share
    of all experts under ``torchrun`` (``RANK``/``WORLD_SIZE``), else all experts.
    """
    if shard is not None and experts_range is not None:
        raise ValueError("give either shard or experts_range, not both")
    if shard is not None and Shard.from_env() is not None:
        raise ValueError("--shard splits the experts across separate runs; under torchrun the ranks split them already")
    if experts_range is not None:
        a, b = experts_range
        if not (0 <= a < b <= experts):
            raise ValueError(f"experts_range must satisfy 0 <= a < b <= experts={experts}, got {a}:{b}")
        on_ranks = Shard.from_env()
        return list(range(a, b)) if on_ranks is None else on_ranks.take(range(a, b))
    shard = shard or Shard.from_env()
    return shard.take(range(experts)) if shard is not None else list(range(experts))


def _preprocess(data, config: ExpertConfig, folder: Path):
    """The data in the experts' model space and the preprocessing record (ZCA reused from the folder)."""
    if not config.zca:
        return data, preprocessing(data, None)[1], None
    from condense.vision.zca import ZCA, whiten

    zca_path = folder / ZCA_FILE
    zca = None
    if zca_path.is_file():
        tensors, meta = read_file(zca_path)
        zca = ZCA.from_tensors(tensors, tuple(data.x_train.shape[1:]), eps=meta.get("eps", config.zca_eps))
    data, zca = whiten(data, zca, eps=config.zca_eps)
    return data, zca.meta(), zca


class ExpertBuffer:
    """A folder of expert trajectories (see the module docstring); open with :meth:`open`.

    ``trajectory(i)`` reads expert i ([T+1, P], verified against its SHA-256); ``states(i, epochs)`` the rows
    of some epochs only. With ``preload`` every trajectory is read once and kept in host memory.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], indices: list[int]):
        self.folder = folder
        self.manifest = manifest
        self.indices = indices
        self.layout = ParamLayout.from_meta(manifest["params"])
        self.config = from_dict(ExpertConfig, manifest["config"])
        self._cache: dict[int, torch.Tensor] = {}

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, *, preload: bool = False) -> "ExpertBuffer":
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no expert buffer at {str(folder)!r} (missing {MANIFEST}); create one with "
                                    "`condense buffer --dataset NAME --experts N --epochs E --out DIR`")
        manifest = json.loads(path.read_text())
        if manifest.get("kind") != "ExpertBuffer":
            raise ArtifactError(f"{str(path)!r} is not an expert-buffer manifest")
        if manifest.get("schema_version", 0) > SCHEMA_VERSION:
            raise ArtifactError(f"{str(path)!r} was written by a newer condense (schema {manifest['schema_version']})")
        indices = sorted(i for i in range(manifest["experts"]) if (folder / SHARD_PATTERN.format(i)).is_file())
        if not indices:
            raise FileNotFoundError(f"the expert buffer {str(folder)!r} holds no expert shards yet")
        if len(indices) < manifest["experts"]:
            log.warning("expert buffer %s: %d of %d experts present; using those", folder, len(indices),
                        manifest["experts"])
        buf = cls(folder, manifest, indices)
        return buf.preload() if preload else buf

    def preload(self) -> "ExpertBuffer":
        """Read (and verify) every trajectory once and keep it in host memory."""
        for i in self.indices:
            self._cache[i] = self.trajectory(i)
        return self

    # -- properties ---------------------------------------------------------------------------------
    @property
    def num_experts(self) -> int:
        return len(self.indices)

    @property
    def epochs(self) -> int:
        """T: a trajectory holds T+1 states."""
        return int(self.manifest["epochs"])

    @property
    def architecture(self) -> str:
        return self.manifest["architecture"]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.manifest["preprocessing"]

    @property
    def nbytes(self) -> int:
        return self.num_experts * (self.epochs + 1) * self.layout.size * 4

    def zca(self):
        """The ZCA transform the experts were trained in (None for a mean/std-normalised buffer)."""
        if self.preprocessing.get("space") != "zca":
            return None
        from condense.vision.zca import ZCA

        tensors, meta = read_file(self.folder / ZCA_FILE)
        shape = tuple(self.manifest["image_shape"])
        zca = ZCA.from_tensors(tensors, shape, eps=meta.get("eps", self.config.zca_eps))
        if zca.fingerprint() != self.preprocessing.get("fingerprint"):
            raise ArtifactError(f"{str(self.folder / ZCA_FILE)!r} does not hold the transform the experts were trained in "
                                f"(fingerprint {zca.fingerprint()} vs {self.preprocessing.get('fingerprint')})")
        return zca

    def describe(self) -> str:
        pre = self.preprocessing.get("space")
        return (f"{self.num_experts} experts x {self.epochs} epochs of {self.architecture} "
                f"({self.layout.size:,} parameters) on {self.manifest['dataset'].get('name')}, preprocessing {pre}")

    # -- reading ------------------------------------------------------------------------------------
    def _path(self, index: int) -> Path:
        if index not in self.indices:
            raise IndexError(f"expert {index} is not in the buffer {str(self.folder)!r} (present: {self.indices})")
        return self.folder / SHARD_PATTERN.format(index)

    def _check_shard(self, meta: Mapping[str, Any], path: Path) -> None:
        if meta.get("identity") != self.manifest["identity"]:
            raise ArtifactError(f"{str(path)!r} belongs to another buffer (identity {meta.get('identity')} vs "
                                f"{self.manifest['identity']})")

    def trajectory(self, index: int) -> torch.Tensor:
        """Expert ``index``'s trajectory [T+1, P] (CPU float32)."""
        if index in self._cache:
            return self._cache[index]
        path = self._path(index)
        tensors, meta = read_file(path)
        self._check_shard(meta, path)
        traj = tensors[TRAJECTORY_KEY]
        want = (self.epochs + 1, self.layout.size)
        if tuple(traj.shape) != want:
            raise ArtifactError(f"{str(path)!r} holds a trajectory of shape {list(traj.shape)}, expected {list(want)}")
        return traj

    def states(self, index: int, epochs: Sequence[int]) -> torch.Tensor:
        """Rows ``epochs`` of expert ``index``'s trajectory, [len(epochs), P] (reads only those rows)."""
        rows = [int(e) for e in epochs]
        if any(not 0 <= e <= self.epochs for e in rows):
            raise IndexError(f"epochs {rows} outside 0..{self.epochs}")
        if index in self._cache:
            return self._cache[index][rows]
        from safetensors import safe_open

        path = self._path(index)
        with safe_open(str(path), framework="pt") as fh:
            self._check_shard(json.loads(fh.metadata()["condense"]), path)
            sl = fh.get_slice(TRAJECTORY_KEY)
            return torch.stack([sl[e] for e in rows])

    def tensor(self) -> torch.Tensor:
        """All trajectories stacked, [E, T+1, P] (loads everything)."""
        return torch.stack([self.trajectory(i) for i in self.indices])

    # -- compatibility --------------------------------------------------------------------------------
    def check_student(self, architecture: str, layout: ParamLayout, preprocessing: Mapping[str, Any]) -> None:
        """Refuse a student whose architecture, parameter layout or preprocessing differs from the experts'."""
        ours = f"{self.architecture} ({self.layout.size:,} parameters)"
        theirs = f"{architecture} ({layout.size:,} parameters)"
        if architecture != self.architecture or layout != self.layout:
            detail = ""
            if layout.size == self.layout.size and layout != self.layout:
                detail = " (same parameter count, different names, shapes or order)"
            raise ValueError(f"the expert buffer {str(self.folder)!r} was trained with {ours}, but the student is "
                             f"{theirs}{detail}; use a buffer made with the student's model, or set model to match")
        mine, other = self.preprocessing, dict(preprocessing)
        if mine.get("space") != other.get("space") or (
                mine.get("space") == "zca" and mine.get("fingerprint") != other.get("fingerprint")) or (
                mine.get("space") == "normalised" and not (np.allclose(mine.get("mean"), other.get("mean"))
                                                           and np.allclose(mine.get("std"), other.get("std")))):
            raise ValueError(f"the expert buffer {str(self.folder)!r} was trained in preprocessing {_pre(mine)}, but the "
                             f"distillation uses {_pre(other)}; experts and distillation must share preprocessing "
                             "(set zca accordingly, or build a matching buffer)")


def _pre(p: Mapping[str, Any]) -> str:
    if p.get("space") == "zca":
        return f"zca (fingerprint {p.get('fingerprint')})"
    return f"normalised (mean {p.get('mean')}, std {p.get('std')})"


def _manifest(data, config: ExpertConfig, net: torch.nn.Module, preprocessing: Mapping[str, Any], strategy: str,
              seed: int) -> dict[str, Any]:
    opt = config.optimizer_settings()
    body = {
        "kind": "ExpertBuffer",
        "schema_version": SCHEMA_VERSION,
        "epochs": config.epochs,
        "architecture": net_name(net),
        "channels": int(data.x_train.shape[1]),
        "num_classes": data.num_classes,
        "image_shape": list(data.x_train.shape[1:]),
        "params": ParamLayout.of(net).meta(),
        "config": {k: v for k, v in to_dict(config).items() if k != "experts"},
        "optimizer": {"profile": config.optimizer, "lr": opt.lr, "momentum": opt.momentum,
                      "weight_decay": opt.weight_decay, "lr_decay": opt.decay if opt.decay_default else None,
                      "decay_after_epoch": config.epochs // 2 + 1 if opt.decay_default else None},
        "augmentation": {"dsa": strategy if config.dsa else "off", "align_corners": config.align_corners},
        "dataset": data.source_meta(),
        "preprocessing": dict(preprocessing),
        "seed": int(seed),
        "seeds": "expert e uses expert_seed(seed, e)",
    }
    body["identity"] = _digest(body)
    body["experts"] = config.experts
    body["config"]["experts"] = config.experts
    return body


def _same_identity(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("identity") == b.get("identity")


def generate_buffer(data, config: ExpertConfig | None = None, out: str | os.PathLike = "buffer", *, seed: int = 0,
                    device: str | torch.device = "auto", indices: Iterable[int] | None = None) -> ExpertBuffer:
    """Train the experts ``indices`` (default: all, or this process's share under ``torchrun``) into ``out``.

    ``data`` is a :class:`condense.vision.data.ImageData` (mean/std normalised; whitened here when ``config.zca``).
    Experts already in ``out`` are skipped, so an interrupted run resumes; a folder holding another buffer
    (different data, model, settings or seed) is refused. Raising ``experts`` later extends a buffer.
    """
    config = config or ExpertConfig()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    todo = shard_indices(config.experts) if indices is None else sorted(set(int(i) for i in indices))
    bad = [i for i in todo if not 0 <= i < config.experts]
    if bad:
        raise ValueError(f"expert indices {bad} outside 0..{config.experts - 1} (experts={config.experts})")

    strategy = config.dsa_strategy or strategy_for(data.name)
    if distributed.is_main():  # rank 0 writes the manifest (and the ZCA transform); the others then read them
        space_data, manifest = _write_manifest(data, config, folder, strategy, seed)
    distributed.barrier()
    if not distributed.is_main():
        space_data, _, _ = _preprocess(data, config, folder)
        manifest = json.loads((folder / MANIFEST).read_text())

    pending = []
    for i in todo:
        shard = folder / SHARD_PATTERN.format(i)
        if shard.is_file():
            try:
                _, meta = read_file(shard)
            except ArtifactError:
                log.warning("expert %d: %s is unreadable; training it again", i, shard)
            else:
                if meta.get("identity") != manifest["identity"]:
                    raise ValueError(f"{str(shard)!r} belongs to another buffer; use another --out folder")
                continue
        pending.append(i)
    if len(pending) < len(todo):
        log.info("expert buffer %s: %d of %d experts already done", folder, len(todo) - len(pending), len(todo))

    x = space_data.x_train.to(dev)
    y = space_data.y_train.to(dev)
    xt, yt = space_data.x_test.to(dev), space_data.y_test.to(dev)
    with Progress(total=len(pending) * config.epochs, desc="experts", unit="epoch") as bar:
        for i in pending:
            with Meter(dev) as meter:
                traj, record = train_expert(x, y, data.num_classes, config, seed=expert_seed(seed, i),
                                            strategy=strategy, x_test=xt, y_test=yt, bar=bar)
            meta = {"kind": "Expert", "schema_version": SCHEMA_VERSION, "identity": manifest["identity"], "index": i,
                    "device": str(dev), "wall_s": round(meter.result.wall_s, 2), **record}
            write_safetensors(folder / SHARD_PATTERN.format(i), {TRAJECTORY_KEY: traj}, meta)
            bar.write(f"expert {i}: final test accuracy {100 * record.get('test_acc', float('nan')):.2f}%")
            tracking.summary(f"experts/{i}", {k: v for k, v in record.items() if k != "train_acc"} | meta)
    distributed.barrier()  # every rank's experts are on disk before anyone opens the buffer
    return ExpertBuffer.open(folder)


def _write_manifest(data, config: ExpertConfig, folder: Path, strategy: str, seed: int):
    """The data in the experts' space, and the manifest written to ``folder`` (refusing another buffer's folder)."""
    space_data, preprocessing, zca = _preprocess(data, config, folder)
    probe = build_net(config.model, data.channels, data.num_classes, data.image_size, device="meta")
    manifest = _manifest(data, config, probe, preprocessing, strategy, seed)
    path = folder / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if not _same_identity(old, manifest):
            diff = sorted(k for k in manifest if k not in ("identity", "experts", "config") and old.get(k) != manifest[k])
            cfg_diff = sorted(k for k in manifest["config"] if k != "experts"
                              and (old.get("config") or {}).get(k) != manifest["config"][k])
            raise ValueError(f"{str(folder)!r} already holds another expert buffer (differs in "
                             f"{sorted(set(diff + cfg_diff))}); "
                             "use another --out folder")
        manifest["experts"] = manifest["config"]["experts"] = max(old.get("experts", 0), config.experts)
    if zca is not None and not (folder / ZCA_FILE).is_file():
        write_safetensors(folder / ZCA_FILE, zca.tensors(), {"kind": "ZCA", "schema_version": SCHEMA_VERSION, **zca.meta()})
    _write_json(path, manifest)
    return space_data, manifest


def merge_buffers(sources: Sequence[str | os.PathLike], out: str | os.PathLike) -> ExpertBuffer:
    """Combine shares of one buffer (folders made with the same data, settings and seed) into ``out``.

    Shards are hard-linked where possible, else copied. An expert present in several shares must be the
    same bytes; shares of different buffers are refused.
    """
    if not sources:
        raise ValueError("merge_buffers needs at least one source folder")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    named = []
    for src in sources:
        p = Path(src) / MANIFEST
        if not p.is_file():
            raise FileNotFoundError(f"{str(src)!r} is not an expert buffer (missing {MANIFEST})")
        named.append((str(src), json.loads(p.read_text())))
    target = folder / MANIFEST
    if target.is_file():
        named.append((str(folder), json.loads(target.read_text())))
    first_name, first = named[0]
    for name, m in named[1:]:
        if not _same_identity(first, m):
            raise ValueError(f"{name!r} holds another buffer than {first_name!r} (identity {m.get('identity')} "
                             f"vs {first.get('identity')}): different data, model, preprocessing, settings or seed")
    merged = dict(first)
    merged["experts"] = max(m["experts"] for _, m in named)
    merged["config"] = {**first["config"], "experts": merged["experts"]}
    for src in sources:
        src = Path(src)
        zca = src / ZCA_FILE
        if zca.is_file() and not (folder / ZCA_FILE).is_file():
            shutil.copy2(zca, folder / ZCA_FILE)
        for shard in sorted(src.glob("expert-*.safetensors")):
            dest = folder / shard.name
            if dest.exists():
                if dest.samefile(shard):
                    continue
                if _file_digest(dest) != _file_digest(shard):
                    raise ValueError(f"{shard.name} differs between {str(src)!r} and {str(folder)!r}")
                continue
            try:
                os.link(shard, dest)
            except OSError:
                shutil.copy2(shard, dest)
    _write_json(target, merged)
    return ExpertBuffer.open(folder)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def buffer_config(overrides: Mapping[str, Any] | None = None, *, preset: str = "mtt") -> ExpertConfig:
    """An :class:`ExpertConfig` from an expert preset (``mtt`` or ``ast``) plus overrides."""
    return build_config(ExpertConfig, EXPERT_PRESETS, chain=[preset], overrides=overrides, what="expert preset")


__all__ = [
    "ExpertConfig", "ExpertBuffer", "ParamLayout", "OPTIMIZERS", "generate_buffer", "merge_buffers",
    "shard_indices", "train_expert", "gradient_penalty", "loss_scale", "expert_seed", "buffer_config",
]

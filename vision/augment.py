"""Differentiable Siamese augmentation (DSA), vectorised over samples and groups.

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021; parameters of the
reference ``ParamDiffAug``. Six families act on an N×C×H×W batch, with u ~ U(0, 1):

* **color** — brightness, saturation, contrast, all three in that order:
  x ← x + (u₁ − ½)·1.0;  x ← (x − mean_C x)·(2.0·u₂) + mean_C x;  x ← (x − mean_CHW x)·(u₃ + 0.5) + mean_CHW x
* **crop** — integer translation t ~ U{−s..s} per axis, s = ⌊0.125·H + ½⌋: out[i, j] = x[i + t₁, j + t₂],
  zero outside the image;
* **cutout** — zero a c×c square, c = ⌊0.5·H + ½⌋, top-left o − ⌊c/2⌋ with o ~ U{0..H − (c mod 2)}, clipped;
* **flip** — horizontal flip with probability 0.5;
* **scale** — affine [[s_x, 0, 0], [0, s_y, 0]], s ~ U(1/1.2, 1.2), bilinear sampling, zero padding;
* **rotate** — affine [[cos φ, −sin φ, 0], [sin φ, cos φ, 0]], φ = (u − ½)·2·15°.

**Mode S** (the only mode of the references' distillation and evaluation): each sample gets *one* family
drawn uniformly from the strategy. Draws are organised in *groups*: every sample of a group shares the
group's family and parameters.

* per-sample mode (:meth:`DSA.__call__`; evaluation, expert training, MTT's inner loop): one family per call,
  parameters drawn per sample;
* Siamese mode (:meth:`DSA.siamese`): one draw shared by every sample of several batches (a real and a
  synthetic batch receive the identical transform);
* per-group Siamese mode (:meth:`DSA.draw` + :meth:`DSA.apply` with a group index per sample): DataDAM
  augments all classes in one call, each class with its own family and parameters, shared by that class's
  real and synthetic images.

Every family is computed for the whole batch and kept where a sample's family says so (``torch.where``), so
there is no Python loop over samples and no host synchronisation; gradients flow to the input through the
selected family. All randomness comes from the ``torch.Generator`` passed in (on the batch's device).
``align_corners`` of the affine grid is a config field: False in the DC/DSA/DM and DataDAM references,
True in MTT's copy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

FAMILIES: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
#: digit datasets must not be mirrored (a flipped 2 or 5 is another glyph)
NO_FLIP_STRATEGY = "color_crop_cutout_scale_rotate"
NO_FLIP_DATASETS = frozenset({"mnist", "fashion-mnist", "svhn", "digits"})


def strategy_for(dataset: str) -> str:
    """The distillation/evaluation strategy of a dataset: without ``flip`` for digit datasets."""
    return NO_FLIP_STRATEGY if str(dataset).lower() in NO_FLIP_DATASETS else DEFAULT_STRATEGY


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``"color_crop"`` -> ``("color", "crop")``; ``"none"`` or ``""`` -> ``()``."""
    if not isinstance(strategy, str):
        raise TypeError(f"strategy must be a string like {DEFAULT_STRATEGY!r}, got {strategy!r}")
    text = strategy.strip().lower()
    if text in ("", "none"):
        return ()
    parts = tuple(text.split("_"))
    unknown = [p for p in parts if p not in FAMILIES]
    if unknown:
        raise ValueError(f"strategy {strategy!r}: unknown augmentation(s) {unknown}; known: {list(FAMILIES)}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"strategy {strategy!r} names an augmentation twice")
    return parts


@dataclass
class DSAConfig:
    """DSA strategy and parameters; defaults are the reference ``ParamDiffAug``."""

    strategy: str = DEFAULT_STRATEGY
    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0  # degrees
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    align_corners: bool = False

    def __post_init__(self) -> None:
        parse_strategy(self.strategy)
        checks = (
            ("prob_flip", 0.0 <= self.prob_flip <= 1.0, "a probability in [0, 1]"),
            ("ratio_scale", self.ratio_scale >= 1.0, ">= 1"),
            ("ratio_rotate", self.ratio_rotate >= 0.0, ">= 0 (degrees)"),
            ("ratio_crop_pad", 0.0 <= self.ratio_crop_pad < 1.0, "in [0, 1)"),
            ("ratio_cutout", 0.0 < self.ratio_cutout <= 1.0, "in (0, 1]"),
            ("brightness", self.brightness >= 0.0, ">= 0"),
            ("saturation", self.saturation >= 0.0, ">= 0"),
            ("contrast", self.contrast >= 0.0, ">= 0"),
        )
        for key, ok, expected in checks:
            if not ok:
                raise ValueError(f"DSAConfig.{key} must be {expected}, got {getattr(self, key)!r}")


class DSAParams(NamedTuple):
    """One row of augmentation parameters per group (tensors on the generator's device)."""

    family: torch.Tensor  # [G] int64 index into DSA.families
    color: torch.Tensor  # [G, 3] u for brightness, saturation, contrast
    shift: torch.Tensor  # [G, 2] int64 crop translation (rows, columns)
    cutout: torch.Tensor  # [G, 2] int64 cutout centre o (rows, columns)
    flip: torch.Tensor  # [G] bool
    scale: torch.Tensor  # [G, 2] (s_x, s_y)
    angle: torch.Tensor  # [G] radians

    def take(self, index: torch.Tensor) -> "DSAParams":
        """The parameters of each sample, given its group index."""
        return DSAParams(*(t.index_select(0, index) for t in self))


def _radius(ratio: float, size: int) -> int:
    return int(size * ratio + 0.5)


class DSA:
    """Differentiable Siamese augmentation in mode S (see the module docstring)."""

    def __init__(self, config: DSAConfig | None = None):
        self.config = config or DSAConfig()
        self.families = parse_strategy(self.config.strategy)

    def __repr__(self) -> str:
        return f"DSA(strategy={self.config.strategy!r}, align_corners={self.config.align_corners})"

    @property
    def enabled(self) -> bool:
        return bool(self.families)

    # -- drawing ------------------------------------------------------------------------------------
    def draw(self, groups: int, image_size: Sequence[int], generator: torch.Generator, *,
             shared_family: bool = False) -> DSAParams:
        """Draw ``groups`` independent parameter sets (each with its own family unless ``shared_family``)."""
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        cfg = self.config
        h, w = int(image_size[0]), int(image_size[1])
        dev = generator.device
        g = generator

        def randint(low: int, high: int) -> torch.Tensor:  # inclusive low, exclusive high
            return torch.randint(low, high, (groups,), generator=g, device=dev)

        n_fam = max(len(self.families), 1)
        family = torch.randint(n_fam, (1 if shared_family else groups,), generator=g, device=dev).expand(groups)
        color = torch.rand(groups, 3, generator=g, device=dev)
        sh, sw = _radius(cfg.ratio_crop_pad, h), _radius(cfg.ratio_crop_pad, w)
        shift = torch.stack([randint(-sh, sh + 1), randint(-sw, sw + 1)], 1)
        ch, cw = _radius(cfg.ratio_cutout, h), _radius(cfg.ratio_cutout, w)
        cutout = torch.stack([randint(0, h + 1 - ch % 2), randint(0, w + 1 - cw % 2)], 1)
        flip = torch.rand(groups, generator=g, device=dev) < cfg.prob_flip
        low = 1.0 / cfg.ratio_scale
        scale = torch.rand(groups, 2, generator=g, device=dev) * (cfg.ratio_scale - low) + low
        angle = (torch.rand(groups, generator=g, device=dev) - 0.5) * 2.0 * math.radians(cfg.ratio_rotate)
        return DSAParams(family.contiguous(), color, shift, cutout, flip, scale, angle)

    # -- applying -----------------------------------------------------------------------------------
    def apply(self, x: torch.Tensor, params: DSAParams, group: torch.Tensor | None = None) -> torch.Tensor:
        """Augment ``x`` with ``params``: sample n uses row ``group[n]`` (row n, or row 0 if there is one)."""
        if not self.families:
            return x
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"DSA expects an image batch [N, C, H, W], got {getattr(x, 'shape', type(x))}")
        n = x.shape[0]
        rows = params.family.shape[0]
        if group is None:
            if rows == n:
                p = params
            elif rows == 1:
                p = params.take(torch.zeros(n, dtype=torch.long, device=params.family.device))
            else:
                raise ValueError(f"params hold {rows} groups for a batch of {n}; pass a group index per sample")
        else:
            if group.shape != (n,):
                raise ValueError(f"group must hold one index per sample ({n}), got shape {tuple(group.shape)}")
            p = params.take(group)
        out = x
        for k, name in enumerate(self.families):
            chosen = (p.family == k).view(n, 1, 1, 1)
            out = torch.where(chosen, _OPS[name](x, p, self.config), out)
        return out

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-sample mode: one family for the call, parameters drawn independently per sample."""
        if not self.families:
            return x
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"DSA expects an image batch [N, C, H, W], got {getattr(x, 'shape', type(x))}")
        params = self.draw(x.shape[0], x.shape[2:], generator, shared_family=True)
        return self.apply(x, params)

    def siamese(self, batches: Sequence[torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Siamese mode: one draw (family and parameters) shared by every sample of every batch."""
        if not batches:
            raise ValueError("siamese needs at least one batch")
        sizes = {tuple(b.shape[2:]) for b in batches}
        if len(sizes) != 1:
            raise ValueError(f"siamese batches must share their image size, got {sorted(sizes)}")
        params = self.draw(1, batches[0].shape[2:], generator)
        return tuple(self.apply(b, params) for b in batches)


# -- the six families (every sample computed; the caller keeps the chosen ones) ---------------------------
def _color(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    u = p.color.to(x.dtype).view(-1, 3, 1, 1, 1)
    x = x + (u[:, 0] - 0.5) * cfg.brightness
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (u[:, 1] * cfg.saturation) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (u[:, 2] + cfg.contrast) + m


def _crop(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device) + p.shift[:, :1]  # [N, H] source row of each output row
    cols = torch.arange(w, device=x.device) + p.shift[:, 1:]
    inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    out = x.gather(2, rows.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
    return out.masked_fill(~inside, 0.0)


def _cutout(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = _radius(cfg.ratio_cutout, h), _radius(cfg.ratio_cutout, w)
    top = p.cutout[:, :1] - ch // 2
    left = p.cutout[:, 1:] - cw // 2
    r = torch.arange(h, device=x.device)
    q = torch.arange(w, device=x.device)
    hole = ((r >= top) & (r < top + ch)).view(n, 1, h, 1) & ((q >= left) & (q < left + cw)).view(n, 1, 1, w)
    return x.masked_fill(hole, 0.0)


def _flip(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    return torch.where(p.flip.view(-1, 1, 1, 1), x.flip(3), x)


def _affine(x: torch.Tensor, theta: torch.Tensor, cfg: DSAConfig) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=cfg.align_corners)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=cfg.align_corners)


def _scale(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    sx, sy = p.scale[:, 0], p.scale[:, 1]
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
    return _affine(x, theta, cfg)


def _rotate(x: torch.Tensor, p: DSAParams, cfg: DSAConfig) -> torch.Tensor:
    cos, sin = torch.cos(p.angle), torch.sin(p.angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta, cfg)


_OPS: dict[str, Callable[[torch.Tensor, DSAParams, DSAConfig], torch.Tensor]] = {
    "color": _color,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
    "scale": _scale,
    "rotate": _rotate,
}

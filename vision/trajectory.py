"""Trajectory matching: MTT, with the AST improvements as independent options.

MTT: Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR 2022. AST: Shen, Yang,
Lam, "Efficient Dataset Distillation through Alignment with Smooth and High-Quality Expert Trajectories",
arXiv 2310.10541 (formulas read from its code).

Synthetic images S (IPC per class, class-major, fixed hard labels y) and a learned step size α are trained so
that N student updates on S, started from an expert's state, land where the expert was M epochs later.
With f(x; θ) the student ConvNet as a pure function of the flat parameter vector θ
(``torch.func.functional_call`` on views of θ; no module is mutated), each iteration:

1. takes the next expert of a shuffled cycle (or one at random) and a start epoch t ~ U{0, …, T⁺−1};
   θ̂_0 = θ*_t, optionally with AST's relative weight perturbation (below);
2. unrolls N steps: minibatch B_i is the next chunk of a random permutation of S (``batch_syn``, default all),
   x = DSA_per_sample(S[B_i]) and

   .. math::
       \\ell_i = \\beta_t\\,\\mathrm{CE}(f(x;\\hat\\theta_i), y_{B_i}),\\quad g_i = \\nabla_\\theta \\ell_i(\\hat\\theta_i),\\quad
       b_i = \\mu\\,b_{i-1} + g_i\\ (b_0 = g_0),\\quad \\hat\\theta_{i+1} = \\hat\\theta_i - \\alpha\\,b_i

   (MTT: μ = 0 and β_t = 1, i.e. plain SGD);
3. matches the expert:

   .. math::
       L = \\frac{\\|\\hat\\theta_N - \\theta^*_{t+M}\\|^2}{\\|\\hat\\theta_0 - \\theta^*_{t+M}\\|^2}
           + \\sum_{j=1}^{M-1} w_j\\,
             \\frac{\\|\\hat\\theta_{s_j} - \\theta^*_{t+j}\\|^2}{\\|\\hat\\theta_0 - \\theta^*_{t+j}\\|^2}

   (sums over all P parameters; the second sum only with intermediate matching);
4. back-propagates L through all N unrolled updates (second order) to S and α and steps both with SGD
   (momentum 0.5; learning rates ``lr_img`` and ``lr_lr``).

The output is S and α after the last iteration (evaluation trains on S with lr = α; nothing is selected by
test accuracy). α is never clamped: ``on_nonpositive_lr`` raises or warns when it reaches ≤ 0.

**AST options** (all off in the MTT presets; the ``ast`` preset turns them on):

* ``init="kmeans"``: the final state θ*_T of a seeded random expert gives the logits of all training
  images; per class, seeded k-means (``kmeans_n_init`` = 10 restarts) on the logits, and the real image
  nearest each centre (the next nearest unused one if taken). k = IPC, one image per centre, by default;
  ``kmeans_clusters=10`` is AST's later variant: k = min(10, IPC) centres with ⌊IPC/k⌋ images each and the
  remainder to the largest clusters. Always exactly IPC distinct images, for every IPC ≥ 1.
* ``balance_inner_loss``: with h = ⌊T⁺/2⌋, β_t = log₅(t − h + 8) if t ≥ h, else 1/log₅(h − t + 8).
* ``intermediate_matching``: s_j = ⌊N/M⌋·j for j = 1…M−1; w_j = 1 (``"sum"``) or j/M (``"linear"``).
* ``weight_perturbation`` α_wp: for every 4-D tensor W of θ*_t, d ~ N(0, I), d ← d/‖d‖_F,
  W ← W + α_wp·(d ⊙ W) (so ‖(W'−W) ⊘ W‖_F = α_wp); biases, norms and the classifier are untouched.
* ``inner_momentum`` μ (AST's code always uses 0.9).
* ``truncate_backprop_steps`` k (AST ``ignore_graph``): only the last k inner gradients keep their
  second-order graph; earlier g_i are treated as constants (α still sees them to first order). This is an
  **approximation** of the meta-gradient, offered only to save memory and time.

**Memory.** The unrolled graph grows with N × ``batch_syn`` activations. ``inner_checkpoint=True`` computes
the *exact* same meta-gradient with one step's activations alive at a time: a forward pass stores only θ̂_i
(and b_i when μ > 0) and each step's augmentation draw; a reverse sweep rebuilds one step at a time and
propagates the adjoints

.. math::
    \\bar b_i = -\\alpha\\,\\bar\\theta_{i+1} + \\mu\\,\\bar b_{i+1},\\quad
    \\bar\\theta_i = \\bar\\theta_{i+1} + H_i\\,\\bar b_i + \\partial_{\\theta_i} L,\\quad
    \\bar S \\mathrel{+}= (\\partial g_i/\\partial S)^\\top \\bar b_i,\\quad
    \\bar\\alpha \\mathrel{-}= \\langle \\bar\\theta_{i+1}, b_i \\rangle

(H_i ā is one Hessian-vector product through the rebuilt step). It costs about one extra first-order pass.

**Divergence.** A non-finite L or meta-gradient skips the update; ``max_nonfinite`` consecutive ones roll back
to the last snapshot (:class:`condense.checkpoint.Checkpointer`), and after ``max_rollbacks`` rollbacks the
run stops with an error naming ``lr_img`` and ``lr_lr``. A zero denominator (an expert that did not move)
raises at once.

Deliberate differences from the references: one seeded device generator drives every draw (init, minibatches,
DSA, perturbation) and a CPU generator the expert/start-epoch sampling, so a seed reproduces a run and a
resumed run equals an uninterrupted one bit for bit; ZCA is applied once (with the buffer's transform);
CIFAR-100 uses its own normalisation; periodic evaluation never selects the output.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call

from condense import distributed
from condense.artifacts import ImageSet
from condense.checkpoint import Checkpointer, Counter, NonFiniteLossError
from condense.config import require, to_dict
from condense.method import Method
from condense.progress import get_logger
from condense.runtime import Meter, resolve_device
from condense.runtime import generator as make_generator
from condense.vision.augment import DSA, DSAConfig, DSAParams, strategy_for
from condense.vision.coreset import KMEANS_N_INIT, kmeans, random_real
from condense.vision.experts import ExpertBuffer, ExpertConfig, ParamLayout, generate_buffer
from condense.vision.nets import build_net, net_name
from condense.vision.presets import EVAL_PROFILES, MTT_DATASET_ALIASES, MTT_PRESETS
from condense.vision.summary import finish, preprocessing, run_summary

#: AST's balance factor: logarithm base and offset (β_t = log₅(|t − h| + 8) or its inverse)
BALANCE_BASE, BALANCE_OFFSET = 5.0, 8
#: buffers up to this size are read once into host memory (``buffer_preload=None``)
PRELOAD_LIMIT_BYTES = 8 * 2**30
#: images per forward when computing logits for the k-means initialisation
LOGIT_BATCH = 1024

log = get_logger("condense.trajectory")


@dataclass
class TrajectoryConfig:
    """MTT/AST settings; defaults are MTT's ``distill.py``; presets fill in per dataset and IPC."""

    ipc: int = 10
    iterations: int = 5000
    syn_steps: int = 20  # N
    expert_epochs: int = 3  # M
    max_start_epoch: int = 25  # T⁺: t ~ U{0..T⁺−1}
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    syn_lr_init: float = 0.01  # α at the start (MTT's lr_teacher)
    momentum_img: float = 0.5
    momentum_lr: float = 0.5
    batch_syn: int | None = None  # None: all of S every inner step
    init: Literal["real", "noise", "kmeans"] = "real"
    kmeans_clusters: int | None = None  # None: k = IPC; 10: AST's later variant
    kmeans_n_init: int = KMEANS_N_INIT
    expert_sampling: Literal["cycle", "uniform"] = "cycle"
    balance_inner_loss: bool = False
    intermediate_matching: Literal["off", "sum", "linear"] = "off"
    weight_perturbation: float = 0.0  # α_wp; 0 = off (AST: 1)
    inner_momentum: float = 0.0  # μ (AST: 0.9)
    truncate_backprop_steps: int | None = None  # approximation: second order only for the last k steps
    inner_checkpoint: bool = False  # exact per-step recomputation (constant activation memory in N)
    model: str = "convnet"  # instance norm, depth by resolution
    dsa: bool = True
    dsa_strategy: str | None = None  # None: by dataset (no flip for digit datasets)
    align_corners: bool = True  # MTT's copy of DSA
    zca: bool = False
    zca_eps: float = 0.1
    buffer_preload: bool | None = None  # None: preload buffers up to PRELOAD_LIMIT_BYTES
    checkpoint_every: int = 100
    on_nonfinite: Literal["rollback", "raise"] = "rollback"
    max_nonfinite: int = 3  # consecutive non-finite iterations before a rollback (or the error)
    max_rollbacks: int = 3
    on_nonpositive_lr: Literal["raise", "warn"] = "raise"
    eval_profile: str = "mtt"
    soft_labels: bool = False  # also store a teacher's logits for the final images (condense.vision.teacher)
    expert: ExpertConfig = field(default_factory=ExpertConfig)  # used when no buffer is given

    def __post_init__(self) -> None:
        for key in ("ipc", "syn_steps", "expert_epochs", "max_start_epoch", "checkpoint_every", "max_nonfinite",
                    "kmeans_n_init"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, key,
                    f"must be a positive integer, got {value!r}")
        require(isinstance(self.iterations, int) and self.iterations >= 0, "iterations",
                f"must be a non-negative integer, got {self.iterations!r}")
        require(self.max_rollbacks >= 0, "max_rollbacks", f"must be >= 0, got {self.max_rollbacks!r}")
        require(self.lr_img > 0, "lr_img", f"must be positive, got {self.lr_img!r}")
        require(self.lr_lr >= 0, "lr_lr", f"must be >= 0 (0 keeps the step size fixed), got {self.lr_lr!r}")
        require(self.syn_lr_init > 0 and math.isfinite(self.syn_lr_init), "syn_lr_init",
                f"must be positive, got {self.syn_lr_init!r}")
        for key in ("momentum_img", "momentum_lr", "inner_momentum"):
            value = getattr(self, key)
            require(0 <= value < 1, key, f"must be in [0, 1), got {value!r}")
        require(self.batch_syn is None or self.batch_syn >= 1, "batch_syn", f"must be >= 1 or None, got {self.batch_syn!r}")
        require(self.kmeans_clusters is None or self.kmeans_clusters >= 1, "kmeans_clusters",
                f"must be >= 1 or None, got {self.kmeans_clusters!r}")
        require(self.weight_perturbation >= 0, "weight_perturbation", f"must be >= 0, got {self.weight_perturbation!r}")
        require(self.truncate_backprop_steps is None or self.truncate_backprop_steps >= 1, "truncate_backprop_steps",
                f"must be >= 1 or None, got {self.truncate_backprop_steps!r}")
        require(self.intermediate_matching == "off" or self.syn_steps >= self.expert_epochs, "intermediate_matching",
                f"needs syn_steps >= expert_epochs (got N={self.syn_steps} < M={self.expert_epochs}, so the match "
                "positions ⌊N/M⌋·j would all be 0)")
        require(self.zca_eps > 0, "zca_eps", f"must be positive, got {self.zca_eps!r}")
        require(self.eval_profile in EVAL_PROFILES, "eval_profile",
                f"unknown evaluation profile {self.eval_profile!r}; known: {sorted(EVAL_PROFILES)}")
        DSAConfig(strategy=self.dsa_strategy or "none")

    @property
    def ast_options(self) -> list[str]:
        """The AST options this config turns on (for summaries)."""
        on = []
        if self.init == "kmeans":
            on.append("kmeans-init")
        if self.balance_inner_loss:
            on.append("balance")
        if self.intermediate_matching != "off":
            on.append(f"intermediate-{self.intermediate_matching}")
        if self.weight_perturbation > 0:
            on.append(f"perturbation-{self.weight_perturbation:g}")
        if self.inner_momentum > 0:
            on.append(f"inner-momentum-{self.inner_momentum:g}")
        if self.truncate_backprop_steps is not None:
            on.append(f"truncate-{self.truncate_backprop_steps}")
        return on


# -- presets ----------------------------------------------------------------------------------------------
def dataset_preset(dataset: str, ipc: int, *, ast: bool = False) -> str | None:
    """The preset row for ``dataset`` at ``ipc``: the exact row, else the largest tabled IPC below, else the
    smallest; with ``ast`` the AST recipe of that row if there is one. ``None`` for a dataset without rows."""
    name = MTT_DATASET_ALIASES.get(str(dataset).lower(), str(dataset).lower())
    prefix = f"mtt-ast-{name}-ipc" if ast else f"mtt-{name}-ipc"
    rows = sorted(int(k[len(prefix):]) for k in MTT_PRESETS if k.startswith(prefix) and k[len(prefix):].isdigit())
    if not rows:
        return None
    below = [k for k in rows if k <= ipc]
    return f"{prefix}{below[-1] if below else rows[0]}"


# -- the pieces, one formula each ----------------------------------------------------------------------
def balance_factor(start_epoch: int, max_start_epoch: int) -> float:
    """AST's β_t: log₅(t − h + 8) if t ≥ h, else 1/log₅(h − t + 8), with h = ⌊T⁺/2⌋."""
    h = max_start_epoch // 2
    if start_epoch >= h:
        return math.log(start_epoch - h + BALANCE_OFFSET, BALANCE_BASE)
    return 1.0 / math.log(h - start_epoch + BALANCE_OFFSET, BALANCE_BASE)


def intermediate_positions(syn_steps: int, expert_epochs: int) -> list[int]:
    """The inner steps s_j = ⌊N/M⌋·j, j = 1…M−1, at which θ̂ is matched to θ*_{t+j}."""
    if syn_steps < expert_epochs:
        raise ValueError(f"intermediate matching needs syn_steps >= expert_epochs, got N={syn_steps} < M={expert_epochs}")
    stride = syn_steps // expert_epochs
    return [stride * j for j in range(1, expert_epochs)]


def intermediate_weights(expert_epochs: int, mode: str) -> list[float]:
    """w_j = 1 (``"sum"``) or j/M (``"linear"``) for j = 1…M−1."""
    if mode == "sum":
        return [1.0] * (expert_epochs - 1)
    if mode == "linear":
        return [j / expert_epochs for j in range(1, expert_epochs)]
    raise ValueError(f"intermediate_matching must be 'sum' or 'linear' here, got {mode!r}")


class WeightPerturbation:
    """AST's relative perturbation of every 4-D tensor: W ← W + α_wp·(d/‖d‖_F ⊙ W), d ~ N(0, I)."""

    def __init__(self, layout: ParamLayout, strength: float, device: torch.device | str):
        self.strength = float(strength)
        self.mask = layout.mask(4, device)
        ids = layout.segment_ids(device)[self.mask]
        # renumber the 4-D tensors 0..m-1
        self.segments = torch.unique(ids, return_inverse=True)[1]
        self.count = int(self.segments.max()) + 1 if self.segments.numel() else 0

    def __call__(self, theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.count == 0 or self.strength == 0:
            return theta
        w = theta[self.mask]
        d = torch.randn(w.shape, generator=generator, device=generator.device, dtype=theta.dtype).to(theta.device)
        sq = torch.zeros(self.count, dtype=theta.dtype, device=theta.device).index_add_(0, self.segments, d * d)
        d = d / sq.sqrt()[self.segments]
        out = theta.clone()
        out[self.mask] = w + self.strength * d * w
        return out


class FunctionalNet:
    """f(x; θ) for a flat θ: ``functional_call`` of ``net`` on views of θ (the module is never mutated).

    Buffers (BatchNorm running statistics, not used by the default instance-norm ConvNet) are passed as
    private copies, so the module's own stay untouched; train mode normalises with batch statistics.
    """

    def __init__(self, net: torch.nn.Module, layout: ParamLayout | None = None):
        self.net = net.train()
        self.layout = layout or ParamLayout.of(net)
        self.buffers = {n: b.detach().clone() for n, b in net.named_buffers()}

    def __call__(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, (self.layout.unflatten(theta), self.buffers), (x,))


@dataclass
class Segment:
    """What one iteration matches: the start θ̂_0, the target θ*_{t+M}, intermediate targets, β_t."""

    start: torch.Tensor
    target: torch.Tensor
    intermediate: tuple[tuple[int, torch.Tensor, float], ...] = ()  # (inner step s_j, θ*_{t+j}, w_j)
    balance: float = 1.0

    def denominators(self) -> torch.Tensor:
        """‖θ̂_0 − θ*‖² for the final target and each intermediate target (must be > 0)."""
        targets = [self.target] + [t for _, t, _ in self.intermediate]
        return torch.stack([(self.start - t).pow(2).sum() for t in targets])


@dataclass
class InnerPlan:
    """The inner loop's randomness, drawn once per iteration: minibatch indices and DSA draws per step."""

    batches: list[torch.Tensor]
    augment: list[DSAParams | None]
    dsa: DSA | None = None
    momentum: float = 0.0
    keep_graph_from: int = 0  # steps i >= this keep their second-order graph (truncation)
    totals: list[int] | None = None  # under torchrun: each step's whole minibatch size (batches hold this rank's part)

    def total(self, i: int) -> int:
        """The size of step i's whole minibatch (the inner loss is its mean)."""
        return self.batches[i].shape[0] if self.totals is None else self.totals[i]

    def shard(self, positions: slice) -> "InnerPlan":
        """This rank's part of every minibatch: the samples at ``positions`` (:func:`condense.distributed.positions`)
        with their DSA parameters (every rank drew the same plan from the shared generator)."""
        return InnerPlan([b[positions] for b in self.batches],
                         [None if a is None else DSAParams(*(t[positions] for t in a)) for a in self.augment],
                         self.dsa, self.momentum, self.keep_graph_from, [b.shape[0] for b in self.batches])

    @property
    def steps(self) -> int:
        return len(self.batches)

    def keeps_graph(self, i: int) -> bool:
        return i >= self.keep_graph_from

    def inputs(self, i: int, batch: torch.Tensor) -> torch.Tensor:
        """The augmented inputs of step i from its minibatch ``batch`` = S[B_i]."""
        params = self.augment[i]
        return batch if params is None or self.dsa is None else self.dsa.apply(batch, params)

    @classmethod
    def draw(cls, n_images: int, steps: int, batch_syn: int | None, image_size: Sequence[int],
             generator: torch.Generator, *, dsa: DSA | None = None, momentum: float = 0.0,
             truncate: int | None = None, device: torch.device | str | None = None) -> "InnerPlan":
        """Chunks of fresh random permutations of S (a short last chunk is used as is) and per-sample DSA."""
        size = n_images if batch_syn is None else min(batch_syn, n_images)
        batches: list[torch.Tensor] = []
        while len(batches) < steps:
            perm = torch.randperm(n_images, generator=generator, device=generator.device).to(device or generator.device)
            batches.extend(torch.split(perm, size))
        batches = batches[:steps]
        augment = [dsa.draw(b.shape[0], image_size, generator, shared_family=True)
                   if dsa is not None and dsa.enabled else None for b in batches]
        keep_from = 0 if truncate is None else max(steps - truncate, 0)
        return cls(batches, augment, dsa if dsa is not None and dsa.enabled else None, momentum, keep_from)


def _inner_loss(student: FunctionalNet, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, balance: float,
                total: int) -> torch.Tensor:
    """β_t times the cross-entropy summed over ``x`` and divided by the whole minibatch size ``total`` (the mean
    when ``x`` is the whole minibatch; one rank's share of it under ``torchrun``)."""
    loss = F.cross_entropy(student(x, theta), y, reduction="sum") / total
    return loss * balance if balance != 1.0 else loss


def _step_gradient(loss: torch.Tensor, theta: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """∇_θ of the inner loss, summed over ``torchrun`` ranks (differentiably when the graph is kept)."""
    (g,) = torch.autograd.grad(loss, theta, create_graph=create_graph)
    if not distributed.active():
        return g
    return distributed.differentiable_sum(g) if create_graph else distributed.all_reduce_sum(g.detach())


def unroll(student: FunctionalNet, segment: Segment, images: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor,
           plan: InnerPlan) -> list[torch.Tensor]:
    """θ̂_0 … θ̂_N of the inner loop, differentiable w.r.t. ``images`` and ``alpha`` (module docstring)."""
    theta = segment.start.detach().requires_grad_(True)
    states = [theta]
    b = None
    for i, idx in enumerate(plan.batches):
        keep = plan.keeps_graph(i)
        src = images if keep else images.detach()
        loss = _inner_loss(student, theta, plan.inputs(i, src[idx]), labels[idx], segment.balance, plan.total(i))
        g = _step_gradient(loss, theta, keep)
        b = g if b is None or plan.momentum == 0 else plan.momentum * b + g
        theta = theta - alpha * b
        states.append(theta)
    return states


def segment_loss(states: Sequence[torch.Tensor], segment: Segment) -> torch.Tensor:
    """L = ‖θ̂_N − θ*_{t+M}‖²/‖θ̂_0 − θ*_{t+M}‖² + Σ_j w_j ‖θ̂_{s_j} − θ*_{t+j}‖²/‖θ̂_0 − θ*_{t+j}‖²."""
    den = segment.denominators()
    loss = (states[-1] - segment.target).pow(2).sum() / den[0]
    for k, (step, target, weight) in enumerate(segment.intermediate):
        loss = loss + weight * (states[step] - target).pow(2).sum() / den[k + 1]
    return loss


def meta_gradient(student: FunctionalNet, segment: Segment, images: torch.Tensor, labels: torch.Tensor,
                  alpha: torch.Tensor, plan: InnerPlan, *, checkpoint: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L, ∂L/∂S, ∂L/∂α)`` of one iteration; ``checkpoint`` rebuilds one step at a time (same values).

    Under ``torchrun`` give every rank the same plan: each rank unrolls its share of every minibatch
    (:meth:`InnerPlan.shard`), the inner gradients are summed across ranks, and the returned meta-gradient is the
    whole one on every rank."""
    if distributed.active() and plan.totals is None:
        plan = plan.shard(distributed.positions())
    if checkpoint:
        return _checkpointed_meta_gradient(student, segment, images, labels, alpha, plan)
    images = images if images.requires_grad else images.detach().requires_grad_(True)
    alpha = alpha if alpha.requires_grad else alpha.detach().requires_grad_(True)
    loss = segment_loss(unroll(student, segment, images, labels, alpha, plan), segment)
    # every rank holds the same L; the all-reduce in each inner step sums its ranks' gradients on the way back,
    # so each rank differentiates L / world size and the shares are summed
    d_images, d_alpha = torch.autograd.grad(loss / distributed.world_size(), (images, alpha))
    return loss.detach(), distributed.all_reduce_sum(d_images), distributed.all_reduce_sum(d_alpha)


def _checkpointed_meta_gradient(student: FunctionalNet, segment: Segment, images: torch.Tensor, labels: torch.Tensor,
                                alpha: torch.Tensor, plan: InnerPlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The exact meta-gradient by per-step recomputation (the adjoint recursion of the module docstring)."""
    mu = plan.momentum
    a = alpha.detach()
    s = images.detach()

    def step_gradient(i: int, theta: torch.Tensor, create_graph: bool, batch: torch.Tensor):
        """This rank's share of ∇_θ ℓ_i (all of it in a single process)."""
        idx = plan.batches[i]
        with torch.enable_grad():
            loss = _inner_loss(student, theta, plan.inputs(i, batch), labels[idx], segment.balance, plan.total(i))
            (g,) = torch.autograd.grad(loss, theta, create_graph=create_graph)
        return g

    # forward sweep: only θ̂_i (and b_i with momentum) are kept
    thetas = [segment.start.detach()]
    moments: list[torch.Tensor] = []
    b = None
    for i, idx in enumerate(plan.batches):
        g = distributed.all_reduce_sum(step_gradient(i, thetas[-1].detach().requires_grad_(True), False, s[idx]))
        b = g if b is None or mu == 0 else mu * b + g
        if mu != 0:
            moments.append(b)
        thetas.append(thetas[-1] - a * b)

    # the loss and its direct adjoints ∂L/∂θ̂_j at the matched states
    den = segment.denominators()
    loss = (thetas[-1] - segment.target).pow(2).sum() / den[0]
    direct: dict[int, torch.Tensor] = {}
    for k, (step, target, weight) in enumerate(segment.intermediate):
        diff = thetas[step] - target
        loss = loss + weight * diff.pow(2).sum() / den[k + 1]
        direct[step] = direct.get(step, 0) + (2 * weight / den[k + 1]) * diff
    adj_theta = (2 / den[0]) * (thetas[-1] - segment.target)

    # reverse sweep
    d_images = torch.zeros_like(s)
    d_alpha = torch.zeros((), dtype=a.dtype, device=a.device)
    adj_b = None
    for i in reversed(range(plan.steps)):
        idx = plan.batches[i]
        adj_g = -a * adj_theta if adj_b is None else -a * adj_theta + mu * adj_b
        if plan.keeps_graph(i):
            theta = thetas[i].detach().requires_grad_(True)
            batch = s[idx].requires_grad_(True)
            g = step_gradient(i, theta, True, batch)
            h_theta, h_batch = torch.autograd.grad(g, (theta, batch), grad_outputs=adj_g)
            b_i = moments[i] if mu != 0 else distributed.all_reduce_sum(g.detach())
            d_images.index_add_(0, idx, h_batch)
            next_adj = adj_theta + distributed.all_reduce_sum(h_theta)  # H_i ā summed over the ranks' shares
        else:
            b_i = moments[i] if mu != 0 else distributed.all_reduce_sum(
                step_gradient(i, thetas[i].detach().requires_grad_(True), False, s[idx]))
            next_adj = adj_theta
        d_alpha = d_alpha - (adj_theta * b_i).sum()
        adj_b = adj_g
        adj_theta = next_adj + direct[i] if i in direct else next_adj
    return loss, distributed.all_reduce_sum(d_images), d_alpha.reshape(alpha.shape)


# -- initialisation ------------------------------------------------------------------------------------
@torch.no_grad()
def logits_of(student: FunctionalNet, theta: torch.Tensor, x: torch.Tensor, batch: int = LOGIT_BATCH) -> torch.Tensor:
    """f(x; θ) for a whole set, in batches."""
    return torch.cat([student(x[i:i + batch], theta) for i in range(0, x.shape[0], batch)])


def representative_init(student: FunctionalNet, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ipc: int,
                        num_classes: int, generator: torch.Generator, *, clusters: int | None = None,
                        n_init: int = KMEANS_N_INIT) -> torch.Tensor:
    """AST's k-means initialisation: indices (class-major) of IPC distinct real images per class chosen by
    k-means on the logits f(x; θ) (see the module docstring and :func:`condense.vision.coreset.kmeans`)."""
    return kmeans(logits_of(student, theta, x), y, ipc, num_classes=num_classes, generator=generator,
                  clusters=clusters, n_init=n_init)


# -- the method ------------------------------------------------------------------------------------------
class TrajectoryMatching(Method):
    """``TrajectoryMatching(config).fit(data, buffer=...) -> ImageSet`` (see the module docstring).

    ``data``: an :class:`~condense.vision.data.ImageData`, a pair ``(images, labels)`` taken as given, or a
    ``torch.utils.data.Dataset`` (:func:`condense.vision.data.as_image_data`). ``buffer``: an
    :class:`~condense.vision.experts.ExpertBuffer` or its folder; ``None`` trains one first with the config's
    ``expert`` settings, into ``run_dir/buffer`` (or a cache folder named by the data, settings and seed), and
    reuses it when it is already there.
    """

    name = "mtt"
    config_class = TrajectoryConfig
    presets = MTT_PRESETS
    inputs = ("buffer",)

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0, image_size=None, stream=None):
        from condense.vision.data import load_images

        return load_images(name, data_root=data_root, train_per_class=train_per_class, seed=seed,
                           image_size=image_size, stream=stream)

    @classmethod
    def preset_chain(cls, dataset, hint, preset):
        """The dataset's MTT row at the run's IPC; with ``preset="mtt-ast"`` the AST switch and the AST recipe of
        that row (where AST published one); else the named preset."""
        chain = []
        if dataset is not None:
            row = dataset_preset(dataset, hint.ipc)
            chain += [row] if row else []
        if preset == "mtt-ast":
            chain.append(preset)
            recipe = dataset_preset(dataset, hint.ipc, ast=True) if dataset is not None else None
            chain += [recipe] if recipe else []
        elif preset is not None:
            chain.append(preset)
        return chain

    def _open(self, buffer) -> ExpertBuffer:
        if isinstance(buffer, ExpertBuffer):
            return buffer
        if not isinstance(buffer, (str, os.PathLike)):
            raise TypeError(f"buffer must be an ExpertBuffer or a buffer folder, got {type(buffer).__name__}")
        opened = ExpertBuffer.open(buffer)
        preload = self.config.buffer_preload
        if preload is None:
            preload = opened.nbytes <= PRELOAD_LIMIT_BYTES
        return opened.preload() if preload else opened

    def _automatic_buffer(self, data, *, device, seed: int, run_dir) -> Path:
        """Train (or resume) the buffer the config's ``expert`` settings describe; returns its folder."""
        cfg = self.config
        expert = replace(cfg.expert, model=cfg.model, zca=cfg.zca, zca_eps=cfg.zca_eps,
                         align_corners=cfg.align_corners, dsa_strategy=cfg.dsa_strategy)
        folder = default_buffer_dir(data, expert, seed, run_dir)
        log.info("no buffer given: training %d experts x %d epochs into %s", expert.experts, expert.epochs, folder)
        generate_buffer(data, expert, folder, seed=seed, device=device)
        return folder

    def _initial_images(self, student: FunctionalNet, buffer: ExpertBuffer, x, y, k, gen, sampler) -> torch.Tensor:
        cfg = self.config
        if cfg.init == "noise":
            return torch.randn(k * cfg.ipc, *x.shape[1:], generator=gen, device=gen.device).to(x.device)
        if cfg.init == "kmeans":
            pick = buffer.indices[int(torch.randint(buffer.num_experts, (1,), generator=sampler))]
            theta = buffer.states(pick, [buffer.epochs])[0].to(x.device)
            idx = representative_init(student, theta, x, y, cfg.ipc, k, gen, clusters=cfg.kmeans_clusters,
                                      n_init=cfg.kmeans_n_init)
            return x[idx]
        return x[random_real(y, cfg.ipc, num_classes=k, generator=gen)]

    def fit(self, data, *, device: str | torch.device = "auto", seed: int = 0,
            run_dir: str | os.PathLike | None = None, buffer: ExpertBuffer | str | os.PathLike | None = None
            ) -> ImageSet:
        """Distil ``data`` by matching the experts of ``buffer`` (see the class docstring). ``run_dir`` holds
        checkpoints (resumed automatically; raising ``iterations`` continues a finished run exactly) and the PNG
        grid."""
        from condense.vision.data import as_image_data
        from condense.vision.zca import whiten

        data = as_image_data(data)
        if buffer is None:
            buffer = self._automatic_buffer(data, device=device, seed=seed, run_dir=run_dir)
        buffer = self._open(buffer)
        # the dataset first: another dataset also differs in architecture input or preprocessing, and its name
        # is the message that tells the user what is wrong
        src = buffer.manifest.get("dataset") or {}
        if src.get("name") != data.name:
            raise ValueError(f"the expert buffer {str(buffer.folder)!r} was trained on {src.get('name')!r}, "
                             f"not on {data.name!r}")
        if src.get("fingerprint") != data.fingerprint:
            log.warning("the expert buffer was trained on another version or subsample of %s (fingerprint %s, "
                        "distillation data %s)", data.name, src.get("fingerprint"), data.fingerprint)
        wanted, trained = self.config.expert, buffer.config
        if _smooth(wanted) and not _smooth(trained):
            log.warning("the config asks for AST's smooth experts (expert.optimizer/loss_clipping/grad_penalty), but "
                        "the buffer's experts were trained without them; only the distillation-side options apply")
        cfg = replace(self.config, expert=trained)  # record the experts actually matched
        zca = None
        if cfg.zca:
            zca = buffer.zca()
            if zca is None:
                raise ValueError(f"zca=true, but the expert buffer {str(buffer.folder)!r} was trained without ZCA; "
                                 "experts and distillation must share preprocessing (set zca=false or build a ZCA buffer)")
            data, zca = whiten(data, zca)
        dev = resolve_device(device)
        k, shape = data.num_classes, tuple(data.x_train.shape[1:])
        net = build_net(cfg.model, shape[0], k, shape[1:], device=dev, generator=make_generator(seed, dev))
        student = FunctionalNet(net)
        buffer.check_student(net_name(net), student.layout, preprocessing(data, zca)[1])
        t_max = buffer.epochs
        if cfg.max_start_epoch - 1 + cfg.expert_epochs > t_max:
            raise ValueError(f"max_start_epoch={cfg.max_start_epoch} and expert_epochs={cfg.expert_epochs} need "
                             f"trajectories of at least {cfg.max_start_epoch - 1 + cfg.expert_epochs} epochs "
                             f"(T⁺ − 1 + M ≤ T), but the buffer's have {t_max}; lower them or use a longer buffer")
        counts = torch.bincount(data.y_train, minlength=k)
        if cfg.init in ("real", "kmeans") and int(counts.min()) < cfg.ipc:
            c = int(counts.argmin())
            raise ValueError(f"ipc={cfg.ipc} is larger than class {c}, which has {int(counts[c])} images "
                             f"(init={cfg.init!r} needs IPC distinct real images per class)")

        gen = make_generator(seed, dev)
        sampler = torch.Generator().manual_seed(int(seed))  # expert and start-epoch draws, on the host
        x = data.x_train.to(dev, torch.float32)
        y = data.y_train.to(dev)
        syn = self._initial_images(student, buffer, x, y, k, gen, sampler).detach().clone().requires_grad_(True)
        syn_labels = torch.arange(k, device=dev).repeat_interleave(cfg.ipc)
        syn_lr = torch.tensor(float(cfg.syn_lr_init), device=dev).requires_grad_(True)
        opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
        opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum_lr)

        strategy = cfg.dsa_strategy or strategy_for(data.name)
        dsa = DSA(DSAConfig(strategy=strategy, align_corners=cfg.align_corners)) if cfg.dsa else None
        perturb = WeightPerturbation(student.layout, cfg.weight_perturbation, dev)
        m = cfg.expert_epochs
        positions = intermediate_positions(cfg.syn_steps, m) if cfg.intermediate_matching != "off" else []
        weights = intermediate_weights(m, cfg.intermediate_matching) if positions else []

        order = torch.randperm(buffer.num_experts, generator=sampler)
        cursor, consecutive, skipped = Counter(0), Counter(0), Counter(0)
        state = {"images": syn, "syn_lr": syn_lr, "opt_img": opt_img, "opt_lr": opt_lr, "gen": gen,
                 "sampler": sampler, "order": order, "cursor": cursor, "consecutive": consecutive, "skipped": skipped}
        identity = {"config": {key: v for key, v in to_dict(cfg).items() if key != "iterations"},
                    "data": data.fingerprint, "buffer": buffer.manifest["identity"], "experts": buffer.indices,
                    "seed": seed, "device": dev.type, "num_classes": k}
        ckpt = Checkpointer(run_dir, state, every=cfg.checkpoint_every, identity=identity,
                            on_nonfinite=cfg.on_nonfinite, max_rollbacks=cfg.max_rollbacks)
        loss = last_good = torch.zeros((), device=dev)  # what the bar shows until a finite loss exists
        warned_lr = False
        desc = "mtt+ast" if cfg.ast_options else "mtt"
        with Meter(dev) as meter:
            try:
                for it in ckpt.loop(cfg.iterations, desc=desc):
                    expert, start = self._draw_expert(buffer, order, cursor, sampler)
                    rows = [start + j for j in range(m + 1)]
                    traj = buffer.states(expert, rows).to(dev, torch.float32)
                    segment = Segment(
                        start=perturb(traj[0], gen) if cfg.weight_perturbation > 0 else traj[0],
                        target=traj[m],
                        intermediate=tuple((s, traj[j], w) for j, (s, w) in enumerate(zip(positions, weights), 1)),
                        balance=balance_factor(start, cfg.max_start_epoch) if cfg.balance_inner_loss else 1.0,
                    )
                    plan = InnerPlan.draw(syn.shape[0], cfg.syn_steps, cfg.batch_syn, shape[1:], gen, dsa=dsa,
                                          momentum=cfg.inner_momentum, truncate=cfg.truncate_backprop_steps, device=dev)
                    loss, d_img, d_lr = meta_gradient(student, segment, syn, syn_labels, syn_lr, plan,
                                                      checkpoint=cfg.inner_checkpoint)
                    zero_den, finite = torch.stack([
                        (segment.denominators() <= 0).any(),
                        torch.isfinite(loss) & torch.isfinite(d_img).all() & torch.isfinite(d_lr).all(),
                    ]).tolist()
                    if zero_den:
                        raise ValueError(f"expert {expert} did not move between epochs {rows[0]} and "
                                         f"{rows[-1]} (‖θ̂_0 − θ*‖² = 0): a degenerate or corrupted buffer")
                    if not finite:
                        skipped.value += 1
                        consecutive.value += 1
                        if consecutive.value >= cfg.max_nonfinite:
                            ckpt.report(loss)  # non-finite: roll back (or raise)
                        else:
                            ckpt.report(last_good, lr=syn_lr.detach(), skipped=skipped.value)
                        continue
                    consecutive.value = 0
                    syn.grad, syn_lr.grad = d_img, d_lr
                    opt_img.step()
                    opt_lr.step()
                    if bool(syn_lr.detach() <= 0):
                        warned_lr = self._nonpositive_lr(float(syn_lr.detach()), it, warned_lr)
                    last_good = loss
                    ckpt.report(loss, lr=syn_lr.detach())
            except NonFiniteLossError as exc:
                raise NonFiniteLossError(
                    f"MTT diverged: {cfg.max_nonfinite} consecutive iterations gave a non-finite loss or "
                    f"meta-gradient, and {ckpt.rollbacks} rollback(s) did not help. Lower lr_img (now {cfg.lr_img:g}) "
                    f"or lr_lr (now {cfg.lr_lr:g}), or start from a smaller syn_lr_init ({cfg.syn_lr_init:g}). "
                    f"[{exc}]") from exc

        done = cfg.iterations - (ckpt.resumed_from or 0)
        summary = run_summary(
            meter, ckpt, cfg.iterations, images=f"{k * cfg.ipc} x {list(shape)}", ipc=cfg.ipc,
            iterations=cfg.iterations, model=net_name(net), syn_steps=cfg.syn_steps, expert_epochs=m,
            max_start_epoch=cfg.max_start_epoch, ast_options=cfg.ast_options or "off",
            syn_lr=float(syn_lr.detach()), final_loss=float(last_good) if done else None,
            skipped_iterations=skipped.value, rollbacks=ckpt.rollbacks, buffer=buffer.describe(),
            dsa=strategy if dsa else "off")
        buffer_record = {"folder": str(buffer.folder), "identity": buffer.manifest["identity"],
                         "experts": buffer.indices, "epochs": buffer.epochs, "architecture": buffer.architecture,
                         "config": buffer.manifest["config"], "optimizer": buffer.manifest["optimizer"]}
        return finish("mtt", cfg, data, zca, syn, syn_labels, seed=seed, device=dev, summary=summary, meter=meter,
                      extra_tensors={"syn_lr": syn_lr.detach().float().reshape(())}, extra={"buffer": buffer_record},
                      run_dir=run_dir)

    def _draw_expert(self, buffer: ExpertBuffer, order: torch.Tensor, cursor: Counter,
                     sampler: torch.Generator) -> tuple[int, int]:
        """The next expert (shuffled cycle, or uniform) and a start epoch t ~ U{0..T⁺−1}, from the host sampler."""
        n = buffer.num_experts
        if self.config.expert_sampling == "uniform":
            pos = int(torch.randint(n, (1,), generator=sampler))
        else:
            if cursor.value >= n:
                order.copy_(torch.randperm(n, generator=sampler))
                cursor.value = 0
            pos = int(order[cursor.value])
            cursor.value += 1
        start = int(torch.randint(self.config.max_start_epoch, (1,), generator=sampler))
        return buffer.indices[pos], start

    def _nonpositive_lr(self, value: float, it: int, warned: bool) -> bool:
        cfg = self.config
        message = (f"the learned step size syn_lr became {value:.3g} (<= 0) at iteration {it}: the inner loop now "
                   f"ascends. Lower lr_lr (now {cfg.lr_lr:g}) or syn_lr_init")
        if cfg.on_nonpositive_lr == "raise":
            raise ValueError(message + ", or set on_nonpositive_lr=warn to go on")
        if not warned:
            log.warning(message)
        return True


def _smooth(expert: ExpertConfig) -> bool:
    """Whether expert settings use any of AST's smoothing options."""
    return expert.optimizer == "sgd_momentum" or expert.loss_clipping or expert.grad_penalty > 0


# -- the automatic buffer's folder -----------------------------------------------------------------------
def default_buffer_dir(data, expert: ExpertConfig, seed: int, out: str | os.PathLike | None) -> Path:
    """Where an automatic buffer goes: ``OUT/buffer``, else a cache folder named by data, settings and seed."""
    if out is not None:
        return Path(out) / "buffer"
    from condense.data import cache_dir

    key = hashlib.sha256(json.dumps([data.fingerprint, to_dict(expert), seed], sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "buffers" / f"{data.name}-{key}"

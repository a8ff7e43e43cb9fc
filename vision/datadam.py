"""DataDAM: dataset distillation by matching spatial attention maps and class-mean embeddings.

Sajedi et al., "DataDAM: Efficient Dataset Distillation with Attention Matching", ICCV 2023; library
defaults are the settings the official code ran.

Synthetic images S (IPC per class, fixed hard labels, class-major) are learned by SGD (momentum 0.5). Each
iteration draws a **fresh randomly initialised, frozen ConvNet** φ (BatchNorm, train mode) from the seeded
generator, a real batch R_c of n_r = min(batch_real, n_c) distinct images per class, and **one Siamese DSA
draw per class** shared by R_c and S_c. All classes go through φ in one batched forward for the real images
(no gradient) and one for the synthetic images (with gradient), so BatchNorm sees the all-class batches (the
real forward is never chunked: chunks would change the BN statistics).

With f^l(x) the post-ReLU, pre-pooling output of block l and e(x) the embedding (the classifier input):

.. math::
    A^l(x) = \\mathrm{vec}\\Big(\\sum_{ch} |f^l_{ch}(x)|^p\\Big),\\qquad
    a^l(x) = \\frac{A^l(x)}{\\max(\\|A^l(x)\\|_2,\\ 10^{-12})}

.. math::
    L_{SAM} = \\sum_{l=1}^{D-1} \\sum_c \\Big\\| \\operatorname{mean}_{x \\in R_c} a^l(x)
              - \\operatorname{mean}_{s \\in S_c} a^l(s) \\Big\\|_2^2,\\qquad
    L_{MMD} = \\sum_c \\Big\\| \\operatorname{mean}_{x \\in R_c} e(x) - \\operatorname{mean}_{s \\in S_c} e(s) \\Big\\|_2^2

.. math::
    L = w_{sam} L_{SAM} + w_{sam}\\,\\lambda\\, L_{MMD},\\qquad w_{sam} = 100,\\ \\lambda = 0.01,\\ p = 1

The last block's activation is not attention-matched; L_MMD is a linear-kernel MMD (a match of class-mean
embeddings). Losses are sums over classes. Class means are segment means over per-class counts, so classes
with fewer than ``batch_real`` images are fine. The pixels are not clipped, and the output is S after the
last iteration. Attention maps and norms are computed in fp32.

Differences from the reference code, on purpose: the ZCA transform is applied once (S starts
from whitened real images); one seeded generator drives every draw (network, real batch, DSA), so a seed
reproduces S bit for bit on a device; nothing leaves the device inside the loop; ``init="tensor"`` replaces
the ``smart`` init; ``zca`` is a typed boolean; the real batch's batch-norm statistics are pooled in float64
from per-image sums (:func:`batch_statistics`), so ``torchrun`` ranks that split the real batch give the
single-process set.

**Memory.** Both forwards hold every class at once, so activations grow with K·(batch_real + IPC): at 100
classes of 64×64 images that is tens of GB. The loss is a sum of per-class terms, and with an encoder without
batch norm (instance norm: ``encoder="convnet"``) each class's term depends only on its own images, so
``class_chunk=m`` runs the real forward and the synthetic forward/backward m classes at a time, accumulating the
images' gradient: the same loss and gradient to float rounding, with memory for m classes
(:func:`chunked_loss_backward`). With batch norm the classes share the batch statistics, and chunking is refused.

The paper's variant (p = 4, instance-norm encoder, 8000 iterations, StepLR evaluation) is preset
``datadam-paper``; every field stays individually configurable.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F

from condense import distributed
from condense.artifacts import ImageSet
from condense.checkpoint import Checkpointer
from condense.config import require, to_dict
from condense.method import Method
from condense.progress import get_logger
from condense.runtime import Meter, resolve_device
from condense.runtime import generator as make_generator
from condense.vision.augment import DSA, DSAConfig, strategy_for
from condense.vision.coreset import kmeans, random_real
from condense.vision.nets import Features, build_net, default_init_, net_name, parse_net_name
from condense.vision.presets import DATADAM_PRESETS, EVAL_PROFILES
from condense.vision.summary import finish, run_summary

#: L2 normalisation floor of an attention map (an all-zero map normalises to zero, never NaN)
ATTENTION_EPS = 1e-12
#: (largest IPC, lr_img): the authors' learning rate of the images, 1 up to IPC 50 and 10 above
LR_IMG_BY_IPC: tuple[tuple[int | None, float], ...] = ((50, 1.0), (None, 10.0))

log = get_logger("condense.datadam")


@dataclass
class DataDAMConfig:
    """DataDAM settings; defaults are the official code's."""

    ipc: int = 10
    iterations: int = 20000
    lr_img: float | None = None  # None: 1 for IPC <= 50, 10 above (LR_IMG_BY_IPC)
    momentum_img: float = 0.5
    batch_real: int = 64  # real images per class and iteration
    init: Literal["real", "noise", "kmeans", "tensor"] = "real"
    init_path: str | None = None  # ImageSet file for init="tensor" (or pass init_images to fit)
    init_allow_repeat: bool = False  # IPC > class size with init="real": repeat images plus noise
    repeat_noise: float = 0.01  # std of the noise added to repeated images
    encoder: str = "convnet-bn"  # fresh random network each iteration; depth by resolution
    class_chunk: int | None = None  # classes per forward/backward (None: all at once); needs a batch-norm-free encoder
    attention_power: float = 1.0  # p
    w_sam: float = 100.0
    task_balance: float = 0.01  # λ: w_mmd = w_sam · λ
    dsa: bool = True
    dsa_strategy: str | None = None  # None: by dataset (no flip for digit datasets)
    align_corners: bool = False
    zca: bool = False
    zca_eps: float = 0.1
    channels_last: bool = True  # memory layout only: faster convolutions (mkldnn on CPU, tensor cores on GPU)
    checkpoint_every: int = 500
    on_nonfinite: Literal["rollback", "raise"] = "rollback"
    max_rollbacks: int = 3
    eval_profile: str = "datadam"
    soft_labels: bool = False  # also store a teacher's logits for the final images (condense.vision.teacher)

    def __post_init__(self) -> None:
        for key in ("ipc", "batch_real", "checkpoint_every"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, key, f"must be a positive integer, got {value!r}")
        require(self.class_chunk is None or (isinstance(self.class_chunk, int) and self.class_chunk >= 1),
                "class_chunk", f"must be a positive integer or None, got {self.class_chunk!r}")
        require(isinstance(self.iterations, int) and self.iterations >= 0, "iterations",
                f"must be a non-negative integer, got {self.iterations!r}")
        require(self.lr_img is None or self.lr_img > 0, "lr_img", f"must be positive, got {self.lr_img!r}")
        require(0 <= self.momentum_img < 1, "momentum_img", f"must be in [0, 1), got {self.momentum_img!r}")
        require(self.attention_power > 0, "attention_power", f"must be positive, got {self.attention_power!r}")
        require(self.w_sam >= 0 and self.task_balance >= 0, "w_sam/task_balance", "must be non-negative")
        require(self.repeat_noise >= 0, "repeat_noise", f"must be >= 0, got {self.repeat_noise!r}")
        require(self.zca_eps > 0, "zca_eps", f"must be positive, got {self.zca_eps!r}")
        require(self.eval_profile in EVAL_PROFILES, "eval_profile",
                f"unknown evaluation profile {self.eval_profile!r}; known: {sorted(EVAL_PROFILES)}")
        DSAConfig(strategy=self.dsa_strategy or "none")  # validates the strategy's names

    @property
    def w_mmd(self) -> float:
        """The MMD coefficient w_sam·λ (1 for the defaults)."""
        return self.w_sam * self.task_balance

    def resolved_lr_img(self) -> float:
        if self.lr_img is not None:
            return self.lr_img
        return next(lr for limit, lr in LR_IMG_BY_IPC if limit is None or self.ipc <= limit)


# -- the loss, term by term ----------------------------------------------------------------------------
def attention_map(feature: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """a(x) = vec(Σ_ch |f_ch(x)|^p) / max(‖·‖₂, 1e−12) for a batch [N, C, H, W] -> [N, H·W] (fp32)."""
    a = feature.float().abs()
    if power != 1:
        a = a.pow(power)
    a = a.sum(1).flatten(1)
    return F.normalize(a, p=2.0, dim=1, eps=ATTENTION_EPS)


def averaging_matrix(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """M [K, N] with M[c, n] = 1/n_c if row n belongs to class c, else 0: ``M @ values`` are the class means.

    A matrix product rather than a scatter: the segment means are exact, and fast on every device.
    """
    onehot = F.one_hot(classes, num_classes).T.float()
    return onehot / onehot.sum(1, keepdim=True).clamp_min(1)


def mean_matching(real_mean: torch.Tensor, syn: torch.Tensor, syn_avg: torch.Tensor) -> torch.Tensor:
    """Σ_c ‖mean_{R_c} real − mean_{S_c} syn‖²₂ (the distance both SAM and MMD use), given the real class means
    [K, D] and the synthetic rows' averaging matrix."""
    return (real_mean - syn_avg @ syn).pow(2).sum()


@dataclass
class Batch:
    """Class bookkeeping of one iteration: class of each real/synthetic row and the averaging matrices."""

    real_cls: torch.Tensor
    syn_cls: torch.Tensor
    real_avg: torch.Tensor  # [K, n_real]
    syn_avg: torch.Tensor  # [K, n_syn]

    @classmethod
    def of(cls, real_cls: torch.Tensor, syn_cls: torch.Tensor, num_classes: int) -> "Batch":
        return cls(real_cls, syn_cls, averaging_matrix(real_cls, num_classes), averaging_matrix(syn_cls, num_classes))


def sam_maps(feats: Features, power: float) -> list[torch.Tensor]:
    """Attention maps a^l of the SAM layers: blocks 1..D−1 (the last block is not attention-matched)."""
    return [attention_map(f, power) for f in feats.blocks[:-1]]


def real_class_means(real_feats: Features, real_cls: torch.Tensor, batch: Batch, power: float) -> list[torch.Tensor]:
    """Per-class means of the real attention maps (one per SAM layer) and of the embeddings, [K, ·] each.

    The class sums are accumulated in float64 and summed over ``torchrun`` ranks when each rank holds a share
    (``real_cls``: the class of each of this rank's rows), so the float32 means do not depend on how the real
    batch was split; ``batch.real_avg`` gives the per-class counts of the whole batch."""
    parts = sam_maps(real_feats, power) + [real_feats.embedding.float()]
    widths = [p.shape[1] for p in parts]
    sums = torch.zeros(batch.real_avg.shape[0], sum(widths), dtype=torch.float64, device=real_cls.device)
    sums.index_add_(0, real_cls, torch.cat(parts, 1).double())
    counts = batch.real_avg.count_nonzero(1).clamp_min(1)
    return list((distributed.all_reduce_sum(sums) / counts[:, None]).float().split(widths, 1))


def datadam_loss(real_feats: Features, syn_feats: Features, batch: Batch, cfg: DataDAMConfig,
                 real_cls: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L, L_SAM, L_MMD)`` from the features of the real batch (or this rank's share of it, with its classes
    ``real_cls``) and of the synthetic batch (module docstring)."""
    means = real_class_means(real_feats, batch.real_cls if real_cls is None else real_cls, batch, cfg.attention_power)
    return loss_from_means(means, syn_feats, batch, cfg)


def loss_from_means(means: list[torch.Tensor], syn_feats: Features, batch: Batch, cfg: DataDAMConfig
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L, L_SAM, L_MMD)`` from the real class means of :func:`real_class_means` and the synthetic features."""
    sam = torch.zeros((), device=syn_feats.embedding.device)
    for real_mean, as_ in zip(means[:-1], sam_maps(syn_feats, cfg.attention_power)):
        sam = sam + mean_matching(real_mean, as_, batch.syn_avg)
    mmd = mean_matching(means[-1], syn_feats.embedding.float(), batch.syn_avg)
    return cfg.w_sam * sam + cfg.w_mmd * mmd, sam, mmd


def matching_loss(net: torch.nn.Module, real: torch.Tensor, syn: torch.Tensor, batch: Batch, cfg: DataDAMConfig,
                  dsa: DSA | None = None, generator: torch.Generator | None = None,
                  real_cls: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One iteration's loss: per-class Siamese DSA, one forward for the real images (no gradient) and one for
    all synthetic images (with gradient), then :func:`datadam_loss`.

    Under ``torchrun`` ``real`` is this rank's share of the real batch (classes ``real_cls``; default: the whole
    batch, ``batch.real_cls``): the real forward's batch-norm statistics (:func:`batch_statistics`) and the class
    sums are taken over every rank's share, every rank computes the same loss against the whole synthetic set
    (whose forward, PyTorch's own batch norm included, is the same on every rank), and the result is the
    single-process one to float rounding."""
    real_cls = batch.real_cls if real_cls is None else real_cls
    if dsa is not None and dsa.enabled:
        params = dsa.draw(batch.real_avg.shape[0], real.shape[2:], generator)
        real = dsa.apply(real, params, real_cls)
        syn = dsa.apply(syn, params, batch.syn_cls)
    if cfg.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
        syn = syn.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), batch_statistics(net):
        _, real_feats = net(real, return_features=True)
    _, syn_feats = net(syn, return_features=True)  # every rank holds the whole synthetic set
    return datadam_loss(real_feats, syn_feats, batch, cfg, real_cls)


@dataclass
class ClassChunk:
    """The rows of one class chunk [lo, hi): this rank's real rows, the whole batch's class bookkeeping for those
    classes (classes renumbered from 0), and the synthetic rows (class-major, so a slice)."""

    real_rows: torch.Tensor  # positions in this rank's real share
    real_cls: torch.Tensor  # their classes, renumbered
    batch: Batch
    syn: slice
    real_groups: torch.Tensor  # global class of each real row (its DSA parameters)
    syn_groups: torch.Tensor  # global class of each synthetic row

    @classmethod
    def split(cls, all_real_cls: torch.Tensor, my_real_cls: torch.Tensor, syn_cls: torch.Tensor, num_classes: int,
              chunk: int) -> list["ClassChunk"]:
        """The chunks of ``chunk`` classes, built once before the loop (their index tensors stay on the device)."""
        chunks = []
        ipc = syn_cls.shape[0] // num_classes
        for lo in range(0, num_classes, chunk):
            hi = min(lo + chunk, num_classes)
            rows = ((my_real_cls >= lo) & (my_real_cls < hi)).nonzero().flatten()
            whole = all_real_cls[(all_real_cls >= lo) & (all_real_cls < hi)] - lo
            syn = slice(lo * ipc, hi * ipc)
            batch = Batch.of(whole, syn_cls[syn] - lo, hi - lo)
            chunks.append(cls(rows, my_real_cls[rows] - lo, batch, syn, my_real_cls[rows], syn_cls[syn]))
        return chunks


def chunked_loss_backward(net: torch.nn.Module, x, drawn: torch.Tensor, syn: torch.Tensor, chunks: list[ClassChunk],
                          cfg: DataDAMConfig, dsa: DSA | None = None, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The loss of :func:`matching_loss` computed class chunk by class chunk, each chunk's
    :math:`L_c = w_{sam} L_{SAM,c} + w_{mmd} L_{MMD,c}` back-propagated into ``syn.grad`` as it is made
    (:math:`\nabla_S L = \sum_c \nabla_S L_c`). One DSA draw per class for the whole iteration, as unchunked.
    Only valid for an encoder without batch norm (each image's features then depend on that image alone).
    The real images of a chunk are read from ``x`` (a tensor or an :class:`~condense.vision.store.ImageStore`) at
    the drawn indices ``drawn`` when the chunk runs, so a streamed set never holds the whole real batch.
    Returns the detached ``(L, L_SAM, L_MMD)``."""
    num_classes = sum(c.batch.real_avg.shape[0] for c in chunks)
    params = dsa.draw(num_classes, syn.shape[2:], generator) if dsa is not None and dsa.enabled else None
    total = torch.zeros(3, device=syn.device)
    for chunk in chunks:
        r, s = x[drawn[chunk.real_rows]], syn[chunk.syn]
        if params is not None:
            r = dsa.apply(r, params, chunk.real_groups)
            s = dsa.apply(s, params, chunk.syn_groups)
        if cfg.channels_last:
            r = r.contiguous(memory_format=torch.channels_last)
            s = s.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            _, real_feats = net(r, return_features=True)
            means = real_class_means(real_feats, chunk.real_cls, chunk.batch, cfg.attention_power)
        del r, real_feats  # the chunk's real activations go before the synthetic forward
        _, syn_feats = net(s, return_features=True)
        loss, sam, mmd = loss_from_means(means, syn_feats, chunk.batch, cfg)
        loss.backward()
        total += torch.stack([loss.detach(), sam.detach(), mmd.detach()])
        del s, syn_feats, loss  # and the synthetic graph before the next chunk
    return total[0], total[1], total[2]


#: images per block when squaring activations on the CPU: a block's squares stay in cache (8 x 128 x 32 x 32 floats
#: = 4 MB) instead of a second copy of the activations going through memory
SQUARE_BLOCK = 8


def square_sums(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{h,w} x_{nchw}^2` for each image and channel, ``[N, C]`` in ``x``'s dtype. On the CPU the squares
    are made block by block in one reused buffer (:data:`SQUARE_BLOCK` images); elsewhere in one kernel. Each
    image's value does not depend on the other images of the batch."""
    if x.device.type != "cpu":
        return x.square().sum((2, 3))
    buf = torch.empty_like(x[:SQUARE_BLOCK])
    return torch.cat([torch.mul(c, c, out=buf[: c.shape[0]]).sum((2, 3)) for c in x.split(SQUARE_BLOCK)])


@contextmanager
def batch_statistics(net: torch.nn.Module) -> Iterator[None]:
    r"""While the block runs, every ``BatchNorm2d`` of ``net`` normalises with the mean and (biased) variance of the
    batch that every ``torchrun`` rank holds a share of, as training-mode batch norm does on the whole batch.

    Each image's per-channel sum :math:`s_i` and sum of squares :math:`q_i` over its :math:`P` pixels are taken in
    the activations' dtype and pooled over images and ranks in float64, :math:`\mu = \frac{1}{nP}\sum_i s_i`,
    :math:`\sigma^2 = \frac{1}{nP}\sum_i q_i - \mu^2`, so the statistics do not depend on how the batch was split.
    One all-reduce of ``2C + 1`` values per layer crosses the ranks; the normalisation itself is PyTorch's
    batch-norm kernel with those statistics."""

    def forward(module: torch.nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        sums = x.sum((2, 3)).double().sum(0)
        squares = square_sums(x).double().sum(0)
        count = sums.new_tensor([x.shape[0] * x.shape[2] * x.shape[3]])
        total = distributed.all_reduce_sum(torch.cat([sums, squares, count]))
        c = x.shape[1]
        mean = total[:c] / total[-1]
        var = (total[c:2 * c] / total[-1] - mean.square()).clamp_min(0)  # >= 0 up to rounding
        return F.batch_norm(x, mean.to(x.dtype), var.to(x.dtype), module.weight, module.bias, training=False,
                            eps=module.eps)

    patched = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in patched:
        m.forward = forward.__get__(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


class RealSampler:
    """Draws n_c' = min(batch_real, n_c) distinct random real images of every class, class-major.

    One sort of (label + uniform key) puts each class's images in random order, class by class; the first
    n_c' positions of every class segment are the batch. No class loop, no host synchronisation.
    """

    def __init__(self, labels: torch.Tensor, num_classes: int, batch_real: int):
        counts = torch.bincount(labels, minlength=num_classes)
        self.counts = counts.clamp(max=batch_real)
        starts = torch.cumsum(counts, 0) - counts
        first = torch.cumsum(self.counts, 0) - self.counts
        within = torch.arange(int(self.counts.sum()), device=labels.device) - first.repeat_interleave(self.counts)
        self.take = starts.repeat_interleave(self.counts) + within
        self.classes = torch.arange(num_classes, device=labels.device).repeat_interleave(self.counts)
        self._key = labels.double()

    def draw(self, generator: torch.Generator) -> torch.Tensor:
        keys = torch.rand(self._key.shape[0], generator=generator, device=generator.device, dtype=torch.float64)
        return torch.argsort(self._key + keys.to(self._key.device))[self.take]


# -- the method ------------------------------------------------------------------------------------
class DataDAM(Method):
    """``DataDAM(config).fit(data) -> ImageSet`` (see the module docstring).

    ``data``: an :class:`~condense.vision.data.ImageData`, a pair ``(images [N, C, H, W], labels [N])`` taken as
    given, or a ``torch.utils.data.Dataset`` of ``(image, label)`` (:func:`condense.vision.data.as_image_data`).
    Inputs: ``init_images`` (with ``init="tensor"``), ``num_classes`` (when the labels do not show every class).
    """

    name = "datadam"
    config_class = DataDAMConfig
    presets = DATADAM_PRESETS
    inputs = ("init_images", "num_classes")

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0, image_size=None, stream=None):
        from condense.vision.data import load_images

        return load_images(name, data_root=data_root, train_per_class=train_per_class, seed=seed,
                           image_size=image_size, stream=stream)

    # -- inputs -------------------------------------------------------------------------------------
    def _check(self, data) -> torch.Tensor:
        """The per-class counts, after the checks DataDAM needs beyond valid images and labels."""
        cfg = self.config
        k = data.num_classes
        counts = torch.bincount(data.y_train, minlength=k)
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"class {empty[0]} has no training images (DataDAM needs a real batch for every class)")
        if cfg.init in ("real", "kmeans") and not (cfg.init == "real" and cfg.init_allow_repeat):
            short = (counts < cfg.ipc).nonzero().flatten().tolist()
            if short:
                c = short[0]
                raise ValueError(f"ipc={cfg.ipc} is larger than class {c}, which has {int(counts[c])} images; lower "
                                 "ipc" + (", or set init_allow_repeat=true" if cfg.init == "real" else ""))
        if k * cfg.ipc == 1 and self._encoder_norm() == "batch":
            raise ValueError("ipc=1 with a single class gives a synthetic batch of one image, which BatchNorm cannot "
                             "normalise; use ipc >= 2 or an instance-norm encoder")
        return counts

    def _encoder_norm(self) -> str | None:
        from condense.vision.nets import registered

        return None if registered(self.config.encoder) else parse_net_name(self.config.encoder).norm

    def _initial_images(self, x, y, k, counts, gen, init_images) -> torch.Tensor:
        cfg = self.config
        ipc = cfg.ipc
        if cfg.init == "tensor":
            if init_images is None:
                if cfg.init_path is None:
                    raise ValueError('init="tensor" needs init_images (Python) or init_path (an ImageSet file)')
                init_images = ImageSet.load(cfg.init_path).images
            want = (k * ipc, *x.shape[1:])
            if not isinstance(init_images, torch.Tensor) or tuple(init_images.shape) != want:
                raise ValueError(f"init_images must be a tensor of shape {list(want)} (class-major, ipc={ipc}), got "
                                 f"{list(getattr(init_images, 'shape', [])) or type(init_images).__name__}")
            if not bool(torch.isfinite(init_images).all()):
                raise ValueError("init_images hold NaN or inf values")
            return init_images.to(x.device, torch.float32)
        if init_images is not None:
            raise ValueError(f'init_images is only used with init="tensor", but init={cfg.init!r}')
        if cfg.init == "noise":
            return torch.randn(k * ipc, *x.shape[1:], generator=gen, device=gen.device).to(x.device)
        if cfg.init == "kmeans":
            return x[kmeans(x, y, ipc, num_classes=k, generator=gen)]
        if int(counts.min()) >= ipc:
            return x[random_real(y, ipc, num_classes=k, generator=gen)]
        # init_allow_repeat: cycle through a class's images and perturb the repeats, so that identical copies
        # (which would receive identical gradients) separate
        picks, repeat = [], []
        for c in range(k):
            idx = (y == c).nonzero().flatten()
            order = idx[torch.randperm(idx.numel(), generator=gen, device=gen.device).to(idx.device)]
            picks.append(order.repeat((ipc + idx.numel() - 1) // idx.numel())[:ipc])
            repeat.append(torch.arange(ipc, device=x.device) >= idx.numel())
        log.warning("init_allow_repeat: classes smaller than ipc=%d repeat images (with noise std %g)",
                    ipc, cfg.repeat_noise)
        images = x[torch.cat(picks)]
        noise = torch.randn(images.shape, generator=gen, device=gen.device).to(x.device) * cfg.repeat_noise
        return images + noise * torch.cat(repeat).view(-1, 1, 1, 1)

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, data, *, device: str | torch.device = "auto", seed: int = 0,
            run_dir: str | os.PathLike | None = None, init_images: torch.Tensor | None = None,
            num_classes: int | None = None) -> ImageSet:
        """Distil ``data`` into an :class:`ImageSet`.

        ``run_dir`` holds checkpoints (resumed automatically; extending ``iterations`` continues a finished
        run exactly) and the PNG grid of the result.
        """
        from condense.vision.data import as_image_data

        cfg = self.config
        data = as_image_data(data, num_classes=num_classes)
        zca = None
        if cfg.zca:
            from condense.vision.zca import whiten

            if data.space == "given":
                raise ValueError("zca=True needs the images' pixel space; load the data with "
                                 "condense.vision.data.from_arrays (or a catalogue name) instead of raw tensors")
            data, zca = whiten(data, eps=cfg.zca_eps)
        counts = self._check(data)
        k = data.num_classes
        dev = resolve_device(device)
        gen = make_generator(seed, dev)
        x = data.x_train.to(dev, torch.float32)
        y = data.y_train.to(dev)
        counts = counts.to(dev)
        ipc = cfg.ipc
        shape = tuple(x.shape[1:])

        syn = self._initial_images(x, y, k, counts, gen, init_images).detach().clone().requires_grad_(True)
        syn_labels = torch.arange(k, device=dev).repeat_interleave(ipc)
        lr_img = cfg.resolved_lr_img()
        opt = torch.optim.SGD([syn], lr=lr_img, momentum=cfg.momentum_img, weight_decay=0.0)

        net = build_net(cfg.encoder, shape[0], k, shape[1:], device=dev, generator=gen)
        if not callable(getattr(net, "features", None)):
            raise TypeError(f"encoder {cfg.encoder!r} must return its features (net(x, return_features=True) -> "
                            "(logits, Features(blocks, embedding))): subclass condense.vision.nets.Net")
        net.requires_grad_(False)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.train()  # BN normalises with the statistics of the batch it is given
        strategy = cfg.dsa_strategy or strategy_for(data.name)
        dsa = DSA(DSAConfig(strategy=strategy, align_corners=cfg.align_corners)) if cfg.dsa else None

        sampler = RealSampler(y, k, cfg.batch_real)
        batch = Batch.of(sampler.classes, syn_labels, k)
        mine = distributed.positions()  # this rank's rows of the class-major real batch (all of them in one process)
        real_cls = sampler.classes[mine]
        chunks = None
        if cfg.class_chunk is not None and cfg.class_chunk < k:
            if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules()):
                raise ValueError(f"class_chunk={cfg.class_chunk} needs an encoder without batch norm (batch-norm "
                                 f"statistics couple the classes), but {cfg.encoder!r} has it; use an instance-norm "
                                 "encoder such as encoder=convnet, or class_chunk=None")
            chunks = ClassChunk.split(sampler.classes, real_cls, syn_labels, k, cfg.class_chunk)

        identity = {"config": {key: v for key, v in to_dict(cfg).items() if key != "iterations"},
                    "data": data.fingerprint, "seed": seed, "device": dev.type, "num_classes": k}
        ckpt = Checkpointer(run_dir, {"images": syn, "opt": opt, "gen": gen}, every=cfg.checkpoint_every,
                            identity=identity, on_nonfinite=cfg.on_nonfinite, max_rollbacks=cfg.max_rollbacks)
        loss = sam = mmd = torch.zeros((), device=dev)
        with Meter(dev) as meter:
            for _ in ckpt.loop(cfg.iterations, desc="datadam"):
                default_init_(net, gen)
                # under torchrun this rank's share of the real batch (every rank draws the same indices)
                drawn = sampler.draw(gen)[mine]
                opt.zero_grad(set_to_none=True)
                if chunks is None:
                    loss, sam, mmd = matching_loss(net, x[drawn], syn, batch, cfg, dsa, gen, real_cls)
                    loss.backward()
                else:
                    loss, sam, mmd = chunked_loss_backward(net, x, drawn, syn, chunks, cfg, dsa, gen)
                opt.step()
                ckpt.report(loss)

        done = cfg.iterations - (ckpt.resumed_from or 0)
        summary = run_summary(
            meter, ckpt, cfg.iterations, images=f"{k * ipc} x {list(shape)}", ipc=ipc, iterations=cfg.iterations,
            encoder=net_name(net), lr_img=lr_img, dsa=strategy if dsa else "off",
            **{f"final_{name}": float(v.detach()) if done else None
               for name, v in (("loss", loss), ("sam", sam), ("mmd", mmd))})
        return finish("datadam", cfg, data, zca, syn, syn_labels, seed=seed, device=dev, summary=summary,
                      meter=meter, run_dir=run_dir)

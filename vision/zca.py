"""ZCA whitening of images (the kornia ZCA used by MTT, AST and DataDAM; see docs/protocols.md).

Fit on N training images flattened to D = C·H·W values in **[0, 1] pixel space**:

.. math::
    \\mu = \\tfrac1N \\sum_n x_n,\\qquad
    \\Sigma = \\tfrac{1}{N-1}(X-\\mu)^\\top (X-\\mu) = U\\,\\mathrm{diag}(s)\\,U^\\top,\\qquad
    W = U\\,\\mathrm{diag}\\big((s+\\epsilon)^{-1/2}\\big)U^\\top,\\qquad \\epsilon = 0.1

and whiten with :math:`\\tilde x = (x-\\mu)W`; the inverse is
:math:`x = \\tilde x\\,U\\,\\mathrm{diag}\\big((s+\\epsilon)^{1/2}\\big)U^\\top + \\mu`.
The covariance and its eigendecomposition are computed in float64; the stored matrices are float32.

The library always fits on [0, 1] pixels (MTT/AST do; DataDAM's code fits after mean/std normalisation) and
records that. A whitened space replaces the mean/std-normalised one: model inputs are ``transform(pixels)``.
The transform travels with an :class:`~condense.artifacts.ImageSet` as the tensors ``zca_mean`` [D],
``zca_matrix`` [D, D] and ``zca_inverse`` [D, D] (:meth:`ZCA.tensors`, :meth:`ZCA.from_tensors`), so test
images can be whitened with the *training* transform at evaluation time. Whitening must happen exactly once:
:func:`whiten` refuses data that is already whitened.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import torch

ZCA_EPS = 0.1
TENSOR_NAMES = ("zca_mean", "zca_matrix", "zca_inverse")
#: rows per chunk when accumulating the covariance (bounds the float64 working memory)
COV_CHUNK = 8192
#: a streamed dataset's transform is fitted on at most this many training images, drawn with this seed
STREAM_FIT_IMAGES = 20000
STREAM_FIT_SEED = 0


@dataclass
class ZCA:
    """A fitted ZCA transform for images of shape ``shape`` = (C, H, W)."""

    mean: torch.Tensor  # [D]
    matrix: torch.Tensor  # [D, D], W
    inverse_matrix: torch.Tensor  # [D, D], W^-1
    shape: tuple[int, int, int]
    eps: float = ZCA_EPS

    @classmethod
    def fit(cls, pixels: torch.Tensor, eps: float = ZCA_EPS) -> "ZCA":
        """Fit on images ``pixels`` [N, C, H, W] in [0, 1] (float64 covariance and eigendecomposition)."""
        if not isinstance(pixels, torch.Tensor) or pixels.dim() != 4:
            raise ValueError(f"ZCA.fit expects images [N, C, H, W], got {getattr(pixels, 'shape', type(pixels))}")
        n = pixels.shape[0]
        if n < 2:
            raise ValueError(f"ZCA.fit needs at least 2 images to estimate a covariance, got {n}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        if not bool(torch.isfinite(pixels).all()):
            raise ValueError("ZCA.fit: the images hold NaN or inf values")
        flat = pixels.reshape(n, -1)
        mu = flat.sum(0, dtype=torch.float64) / n
        cov = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64, device=flat.device)
        for start in range(0, n, COV_CHUNK):
            xc = flat[start:start + COV_CHUNK].double() - mu
            cov.addmm_(xc.T, xc)
        cov /= n - 1
        s, u = torch.linalg.eigh(cov)
        # s may hold tiny negative rounding errors; s + eps stays positive for eps = 0.1
        w = (u * (s + eps).rsqrt()) @ u.T
        w_inv = (u * (s + eps).sqrt()) @ u.T
        return cls(mu.float(), w.float(), w_inv.float(), tuple(int(d) for d in pixels.shape[1:]), float(eps))

    def _check(self, x: torch.Tensor, what: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"{what}: expected images [N, {', '.join(map(str, self.shape))}], "
                             f"got {getattr(x, 'shape', type(x))}")

    def transform(self, pixels: torch.Tensor) -> torch.Tensor:
        """Whiten [0, 1] images: ``(x − μ)·W``."""
        self._check(pixels, "ZCA.transform")
        flat = pixels.reshape(pixels.shape[0], -1)
        out = (flat - self.mean.to(flat)) @ self.matrix.to(flat)
        return out.reshape(pixels.shape)

    def inverse(self, whitened: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] pixel space: ``x̃·W⁻¹ + μ``."""
        self._check(whitened, "ZCA.inverse")
        flat = whitened.reshape(whitened.shape[0], -1)
        out = flat @ self.inverse_matrix.to(flat) + self.mean.to(flat)
        return out.reshape(whitened.shape)

    def to(self, device: str | torch.device) -> "ZCA":
        return dataclasses.replace(self, mean=self.mean.to(device), matrix=self.matrix.to(device),
                                   inverse_matrix=self.inverse_matrix.to(device))

    # -- serialisation ---------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors an :class:`ImageSet` stores (``zca_mean``, ``zca_matrix``, ``zca_inverse``)."""
        return {"zca_mean": self.mean, "zca_matrix": self.matrix, "zca_inverse": self.inverse_matrix}

    def meta(self) -> dict[str, Any]:
        """What metadata records about the transform."""
        return {"space": "zca", "fitted_on": "pixels01", "eps": self.eps, "shape": list(self.shape),
                "fingerprint": self.fingerprint()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], shape: tuple[int, int, int],
                     eps: float = ZCA_EPS) -> "ZCA | None":
        """Rebuild from an artifact's tensors; ``None`` when it holds none, an error when it holds some."""
        present = [k for k in TENSOR_NAMES if k in tensors]
        if not present:
            return None
        if len(present) != len(TENSOR_NAMES):
            missing = sorted(set(TENSOR_NAMES) - set(present))
            raise ValueError(f"incomplete ZCA transform: has {present}, lacks {missing}")
        d = shape[0] * shape[1] * shape[2]
        mean, w, w_inv = (tensors[k] for k in TENSOR_NAMES)
        if mean.shape != (d,) or w.shape != (d, d) or w_inv.shape != (d, d):
            raise ValueError(f"ZCA tensors do not match images of shape {shape}: mean {list(mean.shape)}, "
                             f"matrix {list(w.shape)}, inverse {list(w_inv.shape)}")
        return cls(mean.float(), w.float(), w_inv.float(), tuple(shape), float(eps))

    def fingerprint(self) -> str:
        """A short hash of the transform (experts and distillation must share it)."""
        h = hashlib.sha256()
        for t in (self.mean, self.matrix):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def whiten(data, zca: ZCA | None = None, eps: float = ZCA_EPS):
    """Whiten an :class:`~condense.vision.data.ImageData` once: returns ``(whitened data, transform)``.

    The transform is fitted on the training split's [0, 1] pixels unless one is given; both splits go
    through it. The result's ``extra["preprocessing"]`` records the transform; its ``mean``/``std`` still
    describe the dataset but no longer invert the model space (use :meth:`ZCA.inverse`).

    A streamed dataset (:class:`~condense.vision.store.ImageStore` splits) is fitted on a seeded random
    subsample of at most :data:`STREAM_FIT_IMAGES` training images (all of them when there are fewer; the
    count used is recorded as ``fit_images``), and its batches are whitened as they are read.
    """
    if data.extra.get("preprocessing", {}).get("space") == "zca":
        raise ValueError(f"dataset {data.name!r} is already ZCA-whitened; whitening must be applied exactly once")
    if data.streaming:
        record = {}
        if zca is None:
            n = len(data.x_train)
            rows = torch.randperm(n, generator=torch.Generator().manual_seed(STREAM_FIT_SEED))[:STREAM_FIT_IMAGES]
            zca = ZCA.fit(data.x_train.to("cpu").pixels(rows.sort().values), eps)
            record = {"fit_images": int(rows.numel())}
        extra = {**data.extra, "preprocessing": {**zca.meta(), **record}}
        return dataclasses.replace(data, x_train=data.x_train.with_zca(zca), x_test=data.x_test.with_zca(zca),
                                   extra=extra), zca
    pixels_train = data.to_pixels(data.x_train)
    if zca is None:
        zca = ZCA.fit(pixels_train, eps)
    zca = zca.to(data.x_train.device)
    extra = {**data.extra, "preprocessing": zca.meta()}
    return dataclasses.replace(data, x_train=zca.transform(pixels_train),
                               x_test=zca.transform(data.to_pixels(data.x_test)), extra=extra), zca

"""DD-Ranking's robust scores of a distilled image set: the label-robust score (LRS) and the
augmentation-robust score (ARS).

Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset Distillation" (2025, arXiv:2505.13300), and the
``ddranking`` package. Soft labels (a teacher's logits) and strong augmentation raise the accuracy of *any* small
set of images, real or distilled; the two scores keep only what the distilled images add over random real ones.

All accuracies are fractions in [0, 1], measured with the same network, epochs and seed for every set of a run r
(so the differences below are paired). With λ ∈ [0, 1] (0.5 by default, as in DD-Ranking):

.. math::
    \\mathrm{HLR} = A^{\\mathrm{hard}}_{\\mathrm{full}} - A^{\\mathrm{hard}}_{\\mathrm{syn}},\\qquad
    \\mathrm{IOR} = A^{\\mathrm{soft}}_{\\mathrm{syn}} - A^{\\mathrm{soft}}_{\\mathrm{rdm}},\\qquad
    \\alpha = \\lambda\\,\\mathrm{IOR} - (1-\\lambda)\\,\\mathrm{HLR}

.. math::
    \\beta = \\lambda\\,\\big(A^{\\mathrm{aug}}_{\\mathrm{syn}} - A^{\\mathrm{aug}}_{\\mathrm{rdm}}\\big)
           + (1-\\lambda)\\,\\big(A^{\\mathrm{no\\,aug}}_{\\mathrm{syn}} - A^{\\mathrm{no\\,aug}}_{\\mathrm{rdm}}\\big)

.. math::
    \\mathrm{LRS} = s(\\alpha),\\qquad \\mathrm{ARS} = s(\\beta),\\qquad
    s(t) = \\frac{e^{t} - e^{-1}}{e - e^{-1}}

* **HLR** (hard-label recovery): how far below full-data training the distilled set stays with hard labels and
  no augmentation; **IOR** (improvement over random): how much the distilled set beats as many random real images
  when both are trained with the same soft labels and augmentation.
* s maps [−1, 1] monotonically onto [0, 1]: 0 when the set is worthless against both references (α = −1),
  s(0) ≈ 0.269 when its gain over random exactly offsets its gap to full data, 1 at the ideal α = 1.
* In ARS both sets use the same labels (the set's own kind: soft when it carries soft labels); "aug" is the
  evaluation's augmentation (DSA), "no aug" trains on the images as they are.

Scores are computed per run and reported as mean ± population std over the runs, as DD-Ranking does. Where this
library's protocol differs from the ``ddranking`` package: the learning rate is the evaluation protocol's (the
set's learned lr or the profile's default) instead of a grid search, the soft-label loss is the temperature-scaled
KL divergence of :func:`condense.vision.evaluate.soft_label_loss`, and accuracies are the final epoch's, never a
maximum over epochs.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

#: DD-Ranking's default weight λ of both scores
DEFAULT_LAMBDA = 0.5


def squash(t: float | np.ndarray) -> float | np.ndarray:
    """s(t) = (e^t − e^{−1}) / (e − e^{−1}) (module docstring)."""
    return (np.exp(t) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def _check(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what}: no runs")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{what}: accuracies must be fractions in [0, 1], got {arr.tolist()}")
    return arr


def _paired(named: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    arrays = {name: _check(values, name) for name, values in named.items()}
    sizes = {name: a.size for name, a in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the scores pair runs, so every accuracy needs the same number of runs, got {sizes}")
    return arrays


def _stats(values: np.ndarray) -> dict[str, Any]:
    return {"mean": float(values.mean()), "std": float(values.std()), "runs": values.tolist()}


def label_robust_score(full_hard: Sequence[float], syn_hard: Sequence[float], syn_soft: Sequence[float],
                       random_soft: Sequence[float], lam: float = DEFAULT_LAMBDA) -> dict[str, Any]:
    """LRS with its parts, from per-run accuracies (fractions): ``{"lrs", "hlr", "ior"}``, each
    ``{"mean", "std", "runs"}`` (LRS as a fraction; multiply by 100 for the percentage DD-Ranking prints)."""
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    a = _paired({"full_hard": full_hard, "syn_hard": syn_hard, "syn_soft": syn_soft, "random_soft": random_soft})
    hlr = a["full_hard"] - a["syn_hard"]
    ior = a["syn_soft"] - a["random_soft"]
    lrs = squash(lam * ior - (1 - lam) * hlr)
    return {"lrs": _stats(lrs), "hlr": _stats(hlr), "ior": _stats(ior), "lambda": lam}


def augmentation_robust_score(syn_aug: Sequence[float], random_aug: Sequence[float], syn_plain: Sequence[float],
                              random_plain: Sequence[float], lam: float = DEFAULT_LAMBDA) -> dict[str, Any]:
    """ARS with its parts, from per-run accuracies (fractions) with and without augmentation:
    ``{"ars", "with_aug", "without_aug"}``, each ``{"mean", "std", "runs"}``."""
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    a = _paired({"syn_aug": syn_aug, "random_aug": random_aug, "syn_plain": syn_plain, "random_plain": random_plain})
    with_aug = a["syn_aug"] - a["random_aug"]
    without = a["syn_plain"] - a["random_plain"]
    ars = squash(lam * with_aug + (1 - lam) * without)
    return {"ars": _stats(ars), "with_aug": _stats(with_aug), "without_aug": _stats(without), "lambda": lam}

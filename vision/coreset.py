"""Coreset selection: pick ``ipc`` real images per class (baselines and initialisations).

Every selector returns indices into the given set, **class-major** (the ``ipc`` images of class 0, then
class 1, ...), always ``ipc`` *distinct* images per class, and works on raw images (flattened) or on any
embedding (e.g. an expert's logits for AST's representative initialisation). A class with fewer than ``ipc``
images raises an error naming ``ipc`` and the class.

* **random** — ``ipc`` distinct images per class, uniformly at random (one seeded sort, no class loop).
* **herding** (Welling, ICML 2009; the coreset baseline of the condensation papers) — greedy: with class mean
  μ and the already chosen set S_{t−1}, pick
  :math:`x_t = \\arg\\min_{x \\notin S_{t-1}} \\| \\mu - \\tfrac1t (\\textstyle\\sum_{s \\in S_{t-1}} f(s) + f(x)) \\|_2`.
* **kmeans** — seeded k-means (k-means++ seeding, Lloyd iterations, ``n_init`` = 10 restarts keeping the
  lowest inertia; sklearn's tolerance rule) on each class, then for each centre the nearest real image.
  A centre whose nearest image is already taken gets the next nearest unused one. Default k = ``ipc`` with
  one image per centre (any ipc ≥ 1); ``clusters=k`` uses k = min(k, ipc) centres with ⌊ipc/k⌋ images each
  and one more for each of the (ipc mod k) largest clusters (AST's later reference). Fewer distinct
  feature vectors than centres only logs a warning: the selection is still ``ipc`` distinct images.
"""
from __future__ import annotations

from typing import Callable

import torch

from condense.progress import get_logger

KMEANS_N_INIT = 10
KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4  # relative to the mean per-feature variance, as in scikit-learn

log = get_logger("condense.coreset")


def _check(labels: torch.Tensor, ipc: int, num_classes: int | None) -> tuple[int, torch.Tensor]:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"labels must be a 1-D integer tensor, got {getattr(labels, 'dtype', type(labels))} "
                        f"{list(getattr(labels, 'shape', []))}")
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise ValueError(f"ipc must be a positive integer (images per class), got {ipc!r}")
    if labels.numel() == 0:
        raise ValueError("labels is empty: there are no images to select from")
    lo, hi = int(labels.min()), int(labels.max())
    k = hi + 1 if num_classes is None else num_classes
    if lo < 0 or hi >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}] (num_classes={k}), got range [{lo}, {hi}]")
    counts = torch.bincount(labels, minlength=k)
    short = (counts < ipc).nonzero().flatten().tolist()
    if short:
        c = short[0]
        raise ValueError(f"ipc={ipc} is larger than class {c}, which has {int(counts[c])} images"
                         + (f" (and {len(short) - 1} more classes are short)" if len(short) > 1 else ""))
    return k, counts


def _check_features(features, labels: torch.Tensor) -> None:
    from condense.vision.store import ImageStore

    if not isinstance(features, (torch.Tensor, ImageStore)) or features.dim() < 2 \
            or features.shape[0] != labels.shape[0]:
        raise ValueError(f"features must be [N, ...] with N = {labels.shape[0]} (one row per label), "
                         f"got {list(getattr(features, 'shape', []))}")


def _class_rows(features, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of ``features`` flattened to [n, d] float: one class at a time, so features held in an
    :class:`~condense.vision.store.ImageStore` are read a class at a time rather than all at once."""
    rows = features[idx.to(features.device)]
    return rows.reshape(rows.shape[0], -1).float().to(idx.device)


def random_real(labels: torch.Tensor, ipc: int, *, num_classes: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``ipc`` distinct random images per class, class-major."""
    k, counts = _check(labels, ipc, num_classes)
    dev = labels.device
    keys = torch.rand(labels.shape[0], generator=generator, dtype=torch.float64,
                      device=generator.device if generator is not None else dev).to(dev)
    order = torch.argsort(labels.double() + keys)  # class-major, random order within a class
    starts = torch.cumsum(counts, 0) - counts
    take = starts.repeat_interleave(ipc) + torch.arange(ipc, device=dev).repeat(k)
    return order[take]


def herding(features: torch.Tensor, labels: torch.Tensor, ipc: int, *, num_classes: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Greedy herding on ``features`` (see the module docstring), class-major. Deterministic."""
    k, _ = _check(labels, ipc, num_classes)
    _check_features(features, labels)
    picks = []
    for c in range(k):
        idx = (labels == c).nonzero().flatten()
        f = _class_rows(features, idx)
        mu = f.mean(0)
        total = torch.zeros_like(mu)
        taken = torch.zeros(f.shape[0], dtype=torch.bool, device=f.device)
        for t in range(1, ipc + 1):
            dist = ((mu - (total + f) / t) ** 2).sum(1).masked_fill(taken, float("inf"))
            i = dist.argmin()
            total = total + f[i]
            taken[i] = True
            picks.append(idx[i])
    return torch.stack(picks)


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b).pow(2)


def _kmeans_pp(x: torch.Tensor, k: int, restarts: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding for ``restarts`` independent runs at once: centres [restarts, k, d]."""
    n = x.shape[0]
    pick = torch.randint(n, (restarts,), generator=generator, device=generator.device).to(x.device)
    centres = [x[pick]]
    d2 = _sq_dist(x, centres[0]).T  # [restarts, n]
    for _ in range(1, k):
        # where all points coincide with a centre, draw uniformly instead of from a zero distribution
        weights = torch.where(d2.sum(1, keepdim=True) > 0, d2, torch.ones_like(d2))
        pick = torch.multinomial(weights.to(generator.device), 1, generator=generator).flatten().to(x.device)
        centres.append(x[pick])
        d2 = torch.minimum(d2, ((x[None] - centres[-1][:, None]) ** 2).sum(2))
    return torch.stack(centres, 1)


def kmeans_centres(x: torch.Tensor, k: int, generator: torch.Generator, *, n_init: int = KMEANS_N_INIT,
                   max_iter: int = KMEANS_MAX_ITER, tol: float = KMEANS_TOL) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means of the rows of ``x``: ``(centres [k, d], cluster sizes [k])`` of the best restart.

    The ``n_init`` restarts run side by side; each stops moving once its centres shift (squared) by at most
    ``tol`` times the mean per-feature variance.
    """
    threshold = tol * float(x.var(0, unbiased=False).mean()) if x.shape[0] > 1 else 0.0
    centres = _kmeans_pp(x, k, n_init, generator)
    xs = x[None].expand(n_init, *x.shape)
    done = torch.zeros(n_init, dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        assign = torch.cdist(xs, centres).argmin(2)  # [R, n]
        sums = torch.zeros_like(centres).scatter_add_(1, assign[..., None].expand_as(xs), xs)
        sizes = torch.zeros(n_init, k, device=x.device).scatter_add_(1, assign, torch.ones_like(assign, dtype=x.dtype))
        new = torch.where(sizes[..., None] > 0, sums / sizes.clamp_min(1)[..., None], centres)
        moved = ((new - centres) ** 2).sum((1, 2))
        centres = torch.where(done[:, None, None], centres, new)
        done |= moved <= threshold
        if bool(done.all()):
            break
    d2 = torch.cdist(xs, centres).pow(2)
    best = int(d2.min(2).values.sum(1).argmin())
    return centres[best], torch.bincount(d2[best].argmin(1), minlength=k)


def nearest_unused(x: torch.Tensor, centres: torch.Tensor, quota: list[int]) -> torch.Tensor:
    """For centre j in order, the ``quota[j]`` nearest rows of ``x`` not taken by an earlier centre."""
    d2 = _sq_dist(centres, x)
    taken = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    picks = []
    for j, m in enumerate(quota):
        if m == 0:
            continue
        idx = d2[j].masked_fill(taken, float("inf")).topk(m, largest=False).indices
        taken[idx] = True
        picks.append(idx)
    return torch.cat(picks)


def kmeans(features: torch.Tensor, labels: torch.Tensor, ipc: int, *, num_classes: int | None = None,
           generator: torch.Generator | None = None, clusters: int | None = None,
           n_init: int = KMEANS_N_INIT) -> torch.Tensor:
    """k-means selection (see the module docstring), class-major."""
    k, _ = _check(labels, ipc, num_classes)
    if clusters is not None and (not isinstance(clusters, int) or clusters < 1):
        raise ValueError(f"clusters must be a positive integer or None, got {clusters!r}")
    if not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    g = generator if generator is not None else torch.Generator(device=labels.device).manual_seed(0)
    _check_features(features, labels)
    n_centres = ipc if clusters is None else min(clusters, ipc)
    picks = []
    for c in range(k):
        idx = (labels == c).nonzero().flatten()
        x = _class_rows(features, idx)
        distinct = torch.unique(x, dim=0).shape[0]
        if distinct < n_centres:
            log.warning("class %d has %d distinct feature vectors for %d k-means centres; "
                        "picking distinct images regardless", c, distinct, n_centres)
        centres, sizes = kmeans_centres(x, n_centres, g, n_init=n_init)
        base, extra = divmod(ipc, n_centres)
        quota = [base] * n_centres
        for j in torch.argsort(sizes, descending=True, stable=True)[:extra].tolist():
            quota[j] += 1
        picks.append(idx[nearest_unused(x, centres, quota)])
    return torch.cat(picks)


SELECTORS: dict[str, Callable[..., torch.Tensor]] = {
    "random": lambda features, labels, ipc, **kw: random_real(labels, ipc, **kw),
    "herding": herding,
    "kmeans": kmeans,
}


def select(method: str, features: torch.Tensor, labels: torch.Tensor, ipc: int, *,
           num_classes: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``ipc`` images per class chosen by ``method`` (``random``, ``herding`` or ``kmeans``)."""
    if method not in SELECTORS:
        raise ValueError(f"unknown coreset method {method!r}; known: {', '.join(SELECTORS)}")
    return SELECTORS[method](features, labels, ipc, num_classes=num_classes, generator=generator)

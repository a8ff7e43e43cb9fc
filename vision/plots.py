"""PNG grids of image sets (synthetic or real), in viewable [0, 1] pixel space.

Images are brought back from the model space with the set's stored preprocessing (the ZCA inverse when the
set carries one, else ``x·std + mean``), laid out one class per row (IPC = 1: ten images per row), enlarged
to at least :data:`MIN_TILE` pixels by nearest-neighbour repetition, and clipped to [0, 1] *for display
only* (the stored images are never changed).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

MIN_TILE = 32  # tiles are enlarged to at least this many pixels per side
MAX_COLUMNS = 10  # at most this many images per class are shown
PAD = 2  # pixels between tiles


def image_grid(pixels: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """A [rows·H', cols·W'(, 3)] array in [0, 1]: one class per row (or rows of ten when every class has one)."""
    if not isinstance(pixels, torch.Tensor) or pixels.dim() != 4 or pixels.shape[1] not in (1, 3):
        raise ValueError(f"pixels must be [N, 1 or 3, H, W], got {list(getattr(pixels, 'shape', []))}")
    if labels.shape != (pixels.shape[0],):
        raise ValueError(f"labels must be [N={pixels.shape[0]}], got {list(labels.shape)}")
    x = pixels.detach().cpu().float().clamp(0, 1)
    factor = max(1, math.ceil(MIN_TILE / min(x.shape[2:])))
    x = x.repeat_interleave(factor, 2).repeat_interleave(factor, 3)
    classes = torch.unique(labels.cpu())
    per_class = [x[labels.cpu() == c][:MAX_COLUMNS] for c in classes]
    if max(len(t) for t in per_class) == 1:
        flat = torch.cat(per_class)
        per_class = [flat[i:i + MAX_COLUMNS] for i in range(0, len(flat), MAX_COLUMNS)]
    cols = max(len(t) for t in per_class)
    c, h, w = x.shape[1:]
    grid = np.ones((len(per_class) * (h + PAD) + PAD, cols * (w + PAD) + PAD, c), dtype=np.float32)
    for r, row in enumerate(per_class):
        for j, img in enumerate(row):
            top, left = PAD + r * (h + PAD), PAD + j * (w + PAD)
            grid[top:top + h, left:left + w] = img.permute(1, 2, 0).numpy()
    return grid[..., 0] if c == 1 else grid


def save_grid(artifact, path: str | os.PathLike) -> Path:
    """Write a PNG grid of an :class:`ImageSet`'s images to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import image as mpimg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(artifact.to_pixels(), artifact.labels)
    if grid.ndim == 2:
        mpimg.imsave(path, grid, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        mpimg.imsave(path, grid)
    return path

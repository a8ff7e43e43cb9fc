"""PNG grids: layout and the written file (mapping back to pixels is ImageSet.to_pixels, tested with the artifacts)."""
from __future__ import annotations

import torch

from condense.artifacts import ImageSet
from condense.vision.plots import PAD, image_grid, save_grid


def test_grid_layout_and_png(tmp_path):
    # 3 classes x 2 images of 8x8 -> tiles enlarged 4x to 32 px, one class per row
    x = torch.linspace(-1, 2, 6 * 64).view(6, 1, 8, 8)
    y = torch.arange(3).repeat_interleave(2)
    grid = image_grid(x, y)
    assert grid.shape == (3 * (32 + PAD) + PAD, 2 * (32 + PAD) + PAD)
    assert grid.min() >= 0 and grid.max() <= 1  # clipped for display
    # IPC 1 with 12 classes: rows of ten
    grid = image_grid(torch.rand(12, 3, 32, 32), torch.arange(12))
    assert grid.shape == (2 * (32 + PAD) + PAD, 10 * (32 + PAD) + PAD, 3)
    art = ImageSet.create({"images": x, "labels": y}, method="t")
    path = save_grid(art, tmp_path / "run" / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""PNG grids: de-normalisation with the stored preprocessing, layout, and the written file."""
from __future__ import annotations

import torch

from condense.artifacts import ImageSet
from condense.vision.plots import PAD, image_grid, imageset_pixels, save_grid
from condense.vision.zca import ZCA


def test_pixels_undo_mean_std_and_zca():
    pix = torch.rand(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])
    labels = torch.tensor([0, 0, 1, 1])
    art = ImageSet.create({"images": (pix - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1), "labels": labels,
                           "mean": mean, "std": std}, method="t")
    torch.testing.assert_close(imageset_pixels(art), pix)
    zca = ZCA.fit(pix)
    art = ImageSet.create({"images": zca.transform(pix), "labels": labels, "mean": mean, "std": std,
                           **zca.tensors()}, method="t")
    torch.testing.assert_close(imageset_pixels(art), pix, atol=1e-5, rtol=0)


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

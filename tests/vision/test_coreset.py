"""Coreset selection: distinct in-class picks at any IPC, herding by hand, k-means on separated clusters."""
from __future__ import annotations

import logging

import pytest
import torch

from condense.vision.coreset import herding, kmeans, random_real, select


def blobs(per_class=30, classes=3, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(per_class * classes, dim, generator=g)
    y = torch.arange(classes).repeat(per_class)  # interleaved labels
    return x, y


def check(idx, y, ipc, classes):
    assert idx.shape == (ipc * classes,)
    assert torch.equal(y[idx], torch.arange(classes).repeat_interleave(ipc))  # class-major
    assert len(set(idx.tolist())) == idx.numel()  # distinct


@pytest.mark.parametrize("method", ["random", "herding", "kmeans"])
@pytest.mark.parametrize("ipc", [1, 3, 10, 15])
def test_distinct_class_major_and_seeded(method, ipc):
    x, y = blobs()
    a = select(method, x, y, ipc, generator=torch.Generator().manual_seed(0))
    check(a, y, ipc, 3)
    b = select(method, x, y, ipc, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.parametrize("ipc", [1, 3, 10, 15])
def test_kmeans_cluster_option(ipc):
    x, y = blobs()
    check(kmeans(x, y, ipc, generator=torch.Generator().manual_seed(0), clusters=10), y, ipc, 3)


def test_herding_by_hand():
    # class 0 features 0, 1, 2, 10 (mean 3.25): t=1 picks 2 (|2−3.25|); t=2 picks 1 ((2+1)/2 = 1.5 is nearest)
    f = torch.tensor([0.0, 1.0, 2.0, 10.0, 5.0, 6.0])[:, None]
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    assert herding(f, y, 2).tolist() == [2, 1, 4, 5]


def test_kmeans_picks_one_image_per_separated_cluster():
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    x = (centres[:, None] + torch.randn(4, 12, 2, generator=g)).reshape(48, 2)
    y = torch.zeros(48, dtype=torch.long)
    idx = kmeans(x, y, 4, generator=torch.Generator().manual_seed(0))
    assert sorted((idx // 12).tolist()) == [0, 1, 2, 3]


def test_kmeans_with_duplicate_features_warns_and_stays_distinct(caplog):
    x = torch.ones(10, 3)
    y = torch.zeros(10, dtype=torch.long)
    logging.getLogger("condense").propagate = True
    try:
        with caplog.at_level(logging.WARNING, logger="condense.coreset"):
            idx = kmeans(x, y, 4, generator=torch.Generator().manual_seed(0))
    finally:
        logging.getLogger("condense").propagate = False
    assert len(set(idx.tolist())) == 4
    assert "distinct feature vectors" in caplog.text


def test_random_is_uniform_within_class():
    y = torch.zeros(4, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(torch.cat([random_real(y, 1, generator=g) for _ in range(400)]), minlength=4)
    assert int(counts.min()) > 60  # each of the 4 images is drawn about 100 times


def test_bad_inputs():
    x, y = blobs(per_class=4)
    with pytest.raises(ValueError, match=r"ipc=5 is larger than class 0"):
        select("random", x, y, 5)
    with pytest.raises(ValueError, match="ipc must be a positive integer"):
        select("herding", x, y, 0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        select("random", x, y, 1, num_classes=2)
    with pytest.raises(ValueError, match="larger than class 3"):
        select("random", x, y, 1, num_classes=4)  # class 3 is empty
    with pytest.raises(ValueError, match="unknown coreset method"):
        select("gradmatch", x, y, 1)
    with pytest.raises(TypeError, match="labels"):
        select("random", x, y.float(), 1)

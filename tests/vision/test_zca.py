"""ZCA whitening: a hand-computed 1-pixel case, the whitened covariance, round trips, serialisation."""
from __future__ import annotations

import math

import pytest
import torch

from condense.artifacts import ImageSet
from condense.vision.data import from_arrays
from condense.vision.zca import ZCA, whiten


def test_one_pixel_by_hand():
    # pixels 0 and 1: mean 0.5, unbiased variance 0.5, W = (0.5 + 0.1)^-1/2
    zca = ZCA.fit(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1))
    w = 1 / math.sqrt(0.6)
    assert math.isclose(float(zca.matrix), w, rel_tol=1e-6)
    assert math.isclose(float(zca.inverse_matrix), 1 / w, rel_tol=1e-6)
    out = zca.transform(torch.tensor([1.0, 0.25]).view(2, 1, 1, 1)).flatten()
    torch.testing.assert_close(out, torch.tensor([0.5 * w, -0.25 * w]))


def test_whitened_covariance_and_round_trip():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(48, 48, generator=g)
    x = (torch.randn(400, 48, generator=g) @ mix * 0.05 + 0.5).view(400, 3, 4, 4)
    zca = ZCA.fit(x)
    # Cov(x W) = W Σ W = U diag(s / (s + eps)) Uᵀ
    flat = x.reshape(400, -1).double()
    cov = torch.cov(flat.T)
    s, u = torch.linalg.eigh(cov)
    expected = (u * (s / (s + 0.1))) @ u.T
    z = zca.transform(x).reshape(400, -1).double()
    torch.testing.assert_close(torch.cov(z.T), expected, atol=2e-4, rtol=0)
    torch.testing.assert_close(zca.inverse(zca.transform(x)), x, atol=1e-4, rtol=0)
    torch.testing.assert_close(zca.matrix @ zca.inverse_matrix, torch.eye(48), atol=1e-4, rtol=0)


def test_serialisation_through_an_imageset(tmp_path):
    x = torch.rand(50, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    zca = ZCA.fit(x)
    art = ImageSet.create({"images": zca.transform(x[:4]), "labels": torch.zeros(4, dtype=torch.long),
                           **zca.tensors()}, method="test")
    back = ImageSet.load(art.save(tmp_path / "a.safetensors"))
    zca2 = ZCA.from_tensors(back.tensors, (1, 3, 3))
    torch.testing.assert_close(zca2.inverse(back.images), x[:4], atol=1e-5, rtol=0)
    assert zca2.fingerprint() == zca.fingerprint()
    assert ZCA.from_tensors({"images": x}, (1, 3, 3)) is None
    with pytest.raises(ValueError, match="incomplete"):
        ZCA.from_tensors({"zca_mean": zca.mean}, (1, 3, 3))
    with pytest.raises(ValueError, match="do not match"):
        ZCA.from_tensors(zca.tensors(), (1, 2, 2))


def test_whiten_imagedata_once_with_the_train_transform():
    g = torch.Generator().manual_seed(2)
    data = from_arrays(torch.rand(40, 1, 4, 4, generator=g), torch.arange(40) % 2,
                       torch.rand(10, 1, 4, 4, generator=g), torch.arange(10) % 2)
    white, zca = whiten(data)
    torch.testing.assert_close(white.x_test, zca.transform(data.to_pixels(data.x_test)))
    torch.testing.assert_close(zca.inverse(white.x_train), data.to_pixels(data.x_train), atol=1e-5, rtol=0)
    assert white.extra["preprocessing"]["space"] == "zca"
    with pytest.raises(ValueError, match="exactly once"):
        whiten(white)


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        ZCA.fit(torch.rand(1, 1, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        ZCA.fit(torch.tensor([0.0, float("nan")]).view(2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        ZCA.fit(torch.rand(4, 4))
    with pytest.raises(ValueError, match="eps"):
        ZCA.fit(torch.rand(4, 1, 2, 2), eps=0)
    zca = ZCA.fit(torch.rand(4, 1, 2, 2))
    with pytest.raises(ValueError, match="expected images"):
        zca.transform(torch.rand(4, 1, 3, 3))

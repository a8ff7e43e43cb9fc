"""DSA: each family against hand-computed outputs, Siamese/per-sample/per-group modes, gradients."""
from __future__ import annotations

import math

import pytest
import torch

from condense.vision.augment import DSA, FAMILIES, NO_FLIP_STRATEGY, DSAConfig, DSAParams, parse_strategy, strategy_for


def params(n: int = 1, **fields) -> DSAParams:
    """Identity-like parameters for n samples, with some fields set by hand."""
    base = dict(family=torch.zeros(n, dtype=torch.long), color=torch.full((n, 3), 0.5),
                shift=torch.zeros(n, 2, dtype=torch.long), cutout=torch.zeros(n, 2, dtype=torch.long),
                flip=torch.zeros(n, dtype=torch.bool), scale=torch.ones(n, 2), angle=torch.zeros(n))
    base.update(fields)
    return DSAParams(**base)


def one(family: str, **cfg) -> DSA:
    return DSA(DSAConfig(strategy=family, **cfg))


def img(n=1, c=1, h=6, w=6, dtype=torch.float32):
    return torch.arange(n * c * h * w, dtype=dtype).reshape(n, c, h, w) + 1.0


def test_color_by_hand():
    x = torch.tensor([[[[0.0, 1.0]], [[2.0, 3.0]]]])  # 1 x 2 x 1 x 2
    dsa = one("color")
    torch.testing.assert_close(dsa.apply(x, params()), x)  # u = 0.5 everywhere is the identity
    # brightness u=1: +0.5 -> [[.5, 1.5]], [[2.5, 3.5]]; saturation u=0.25: factor 0.5 about the per-pixel
    # channel means (1.5, 2.5) -> [[1, 2]], [[2, 3]]; contrast u=1: factor 1.5 about the image mean 2
    out = dsa.apply(x, params(color=torch.tensor([[1.0, 0.25, 1.0]])))
    torch.testing.assert_close(out, torch.tensor([[[[0.5, 2.0]], [[2.0, 3.5]]]]))


def test_crop_by_hand():
    x = img()
    out = one("crop").apply(x, params(shift=torch.tensor([[1, -2]])))
    expected = torch.zeros_like(x)
    for i in range(6):
        for j in range(6):
            if 0 <= i + 1 < 6 and 0 <= j - 2 < 6:
                expected[0, 0, i, j] = x[0, 0, i + 1, j - 2]
    torch.testing.assert_close(out, expected)


def test_cutout_by_hand():
    # 32 px: c = floor(0.5*32 + 0.5) = 16; centre (0, 20) -> rows [-8, 8) ∩ image, cols [12, 28)
    x = torch.ones(1, 1, 32, 32)
    out = one("cutout").apply(x, params(cutout=torch.tensor([[0, 20]])))
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[0:8, 12:28] = True
    assert torch.equal(out[0, 0] == 0, hole)
    # 28 px: c = 14, centre (27, 27) -> rows/cols [20, 34) clipped to [20, 28)
    out = one("cutout").apply(torch.ones(1, 1, 28, 28), params(cutout=torch.tensor([[27, 27]])))
    assert int((out == 0).sum()) == 8 * 8 and bool((out[0, 0, 20:, 20:] == 0).all())


def test_flip_scale_rotate_by_hand():
    x = img(c=2)
    torch.testing.assert_close(one("flip").apply(x, params(flip=torch.tensor([True]))), x.flip(3))
    torch.testing.assert_close(one("flip").apply(x, params()), x)
    torch.testing.assert_close(one("scale").apply(x, params()), x, atol=1e-4, rtol=0)  # s = 1: identity
    torch.testing.assert_close(one("rotate").apply(x, params()), x, atol=1e-4, rtol=0)  # φ = 0: identity
    # φ = 90°: out(x, y) samples in(−y, x), i.e. out[i, j] = in[j, n−1−i] = rot90 counter-clockwise
    out = one("rotate").apply(x, params(angle=torch.tensor([math.pi / 2])))
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(2, 3)), atol=1e-4, rtol=0)
    # scale 2 along x (align_corners=True, W=6): output columns sample input columns -2.5, -0.5, 1.5, 3.5,
    # 5.5, 7.5, i.e. 0, x0/2, (x1+x2)/2, (x3+x4)/2, x5/2, 0 (bilinear with zero padding); rows unchanged
    out = one("scale", align_corners=True).apply(x, params(scale=torch.tensor([[2.0, 1.0]])))
    c = x.unbind(3)
    expected = torch.stack([torch.zeros_like(c[0]), c[0] / 2, (c[1] + c[2]) / 2, (c[3] + c[4]) / 2, c[5] / 2,
                            torch.zeros_like(c[0])], 3)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    # align_corners is honoured. For scaling about the centre the two conventions coincide; a rotation of a
    # non-square image mixes axes of different normalisations, so they differ there
    rect = img(h=6, w=8)
    a = one("rotate", align_corners=False).apply(rect, params(angle=torch.tensor([0.2])))
    b = one("rotate", align_corners=True).apply(rect, params(angle=torch.tensor([0.2])))
    assert not torch.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_flows_through_every_family(family):
    dsa = one(family)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    p = dsa.draw(4, (8, 8), g)
    if family == "flip":
        p = p._replace(flip=torch.tensor([True, False, True, False]))
    out = dsa.apply(x, p)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    small = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    ps = dsa.draw(2, (5, 5), torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, ps), (small,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_siamese_identical_for_both_batches(family):
    dsa = one(family)
    x = torch.randn(5, 3, 16, 16)
    real = torch.cat([x, torch.randn(7, 3, 16, 16)])
    a, b = dsa.siamese([real, x], torch.Generator().manual_seed(3))
    torch.testing.assert_close(a[:5], b, rtol=0, atol=0)
    # one draw for the whole call: the same image anywhere in the batch is augmented identically
    same = x[:1].expand(6, -1, -1, -1)
    out, = dsa.siamese([same], torch.Generator().manual_seed(4))
    assert bool((out == out[:1]).all())


def test_per_group_siamese_classes_share_within_and_differ_across():
    dsa = DSA()
    k, size = 6, (16, 16)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    p = dsa.draw(k, size, g)
    real_group = torch.arange(k).repeat_interleave(4)
    syn_group = torch.arange(k).repeat_interleave(2)
    real = dsa.apply(x.expand(4 * k, -1, -1, -1), p, real_group)
    syn = dsa.apply(x.expand(2 * k, -1, -1, -1), p, syn_group)
    for c in range(k):
        block = torch.cat([real[real_group == c], syn[syn_group == c]])
        assert bool((block == block[:1]).all())  # class c's real and synthetic images: one shared transform
    distinct = {tuple(real[real_group == c][0].flatten()[:50].tolist()) for c in range(k)}
    assert len(distinct) > 1  # classes draw independently
    families = dsa.draw(200, size, g).family
    assert len(set(families.tolist())) == len(dsa.families)  # each class gets its own family


def test_per_sample_mode_differs_per_image_but_shares_the_family():
    dsa = one("crop")
    x = torch.randn(1, 3, 16, 16).expand(32, -1, -1, -1)
    out = dsa(x, torch.Generator().manual_seed(0))
    assert len({tuple(o.flatten().tolist()) for o in out}) > 1
    p = DSA().draw(64, (16, 16), torch.Generator().manual_seed(0), shared_family=True)
    assert len(set(p.family.tolist())) == 1
    p = DSA().draw(64, (16, 16), torch.Generator().manual_seed(0))
    assert len(set(p.family.tolist())) > 1


def test_seeded_and_device_generators():
    x = torch.randn(8, 3, 16, 16)
    a = DSA()(x, torch.Generator().manual_seed(9))
    b = DSA()(x, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    state = torch.get_rng_state()
    DSA()(x, torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())


def test_strategies_and_bad_inputs():
    assert "flip" not in parse_strategy(strategy_for("mnist")) and strategy_for("fashion-mnist") == NO_FLIP_STRATEGY
    assert "flip" not in parse_strategy(strategy_for("digits"))
    assert "flip" in parse_strategy(strategy_for("cifar10"))
    assert DSA(DSAConfig(strategy="none"))(torch.ones(2, 1, 4, 4), torch.Generator()).equal(torch.ones(2, 1, 4, 4))
    with pytest.raises(ValueError, match="colour"):
        DSAConfig(strategy="colour_crop")
    with pytest.raises(ValueError, match="prob_flip"):
        DSAConfig(prob_flip=2.0)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        DSA()(torch.ones(3, 4, 4), torch.Generator())
    with pytest.raises(ValueError, match="group"):
        DSA().apply(torch.ones(4, 1, 4, 4), DSA().draw(3, (4, 4), torch.Generator()))

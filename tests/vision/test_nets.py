"""The network zoo: parameter counts, geometry, features, functional calls, seeded initialisation."""
from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call, grad

from condense.vision.nets import Features, build_net, default_depth, default_init_, num_parameters, parse_net_name

ZOO = ["convnet-d3", "convnet-d3-bn", "convnet-d3-gn", "convnet-d3-ln", "convnet-d3-nonorm-maxpool", "mlp", "lenet",
       "alexnet", "alexnet-bn", "vgg11", "vgg11-bn", "resnet18", "resnet18-bn"]


@pytest.mark.parametrize("channels,classes,size,depth,expected", [
    (3, 10, 32, 3, 320_010),    # CIFAR-10, D3 (the references' count)
    (3, 100, 32, 3, 504_420),   # CIFAR-100, D3
    (3, 200, 64, 4, 857_160),   # Tiny-ImageNet, D4
    (3, 10, 128, 5, 615_690),   # 128 px, D5
])
def test_convnet_parameter_counts(channels, classes, size, depth, expected):
    for norm in ("", "-bn"):  # BN adds only buffers
        net = build_net(f"convnet-d{depth}{norm}", channels, classes, size, device="meta")
        assert num_parameters(net) == expected


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_every_network_runs_at_28_and_32(name, channels, size):
    net = build_net(name, channels, 10, size, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, channels, size, size)
    logits, feats = net(x, return_features=True)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert isinstance(feats, Features) and len(feats.blocks) >= 1
    torch.testing.assert_close(net.classifier(feats.embedding), logits)
    torch.testing.assert_close(net(x), logits)


@pytest.mark.parametrize("name", ["convnet-d4", "convnet-d4-bn", "convnet"])
def test_depth4_at_64px(name):
    net = build_net(name, 3, 200, 64, generator=torch.Generator().manual_seed(0))
    logits, feats = net(torch.randn(2, 3, 64, 64), return_features=True)
    assert logits.shape == (2, 200)
    assert [tuple(b.shape[2:]) for b in feats.blocks] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert feats.embedding.shape == (2, 2048)


def test_convnet_features_are_prepool_activations_and_embedding():
    net = build_net("convnet-d3-bn", 3, 10, 32, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 32, 32)
    _, feats = net(x, return_features=True)
    assert [tuple(b.shape[1:]) for b in feats.blocks] == [(128, 32, 32), (128, 16, 16), (128, 8, 8)]
    assert feats.embedding.shape == (4, 2048)
    assert all(bool((b >= 0).all()) for b in feats.blocks)  # post-ReLU
    # the embedding is the pooled last activation, flattened
    torch.testing.assert_close(feats.embedding, torch.nn.functional.avg_pool2d(feats.blocks[-1], 2).flatten(1))


def test_mnist_geometry_and_digits():
    net = build_net("convnet-d3", 1, 10, 28)
    assert net.blocks[0].conv.padding == (3, 3)
    _, feats = net(torch.randn(2, 1, 28, 28), return_features=True)
    assert tuple(feats.blocks[0].shape[2:]) == (32, 32) and feats.embedding.shape == (2, 2048)
    # 8x8 digits: standard padding, 8 -> 4 -> 2 -> 1
    net = build_net("convnet", 1, 10, 8)
    assert net.name == "convnet-d3" and net.blocks[0].conv.padding == (1, 1)
    assert net(torch.randn(2, 1, 8, 8), return_features=True)[1].embedding.shape == (2, 128)
    for name in ("vgg11", "lenet", "convnet-d4"):
        with pytest.raises(ValueError, match="too small"):
            build_net(name, 1, 10, 8)


def test_functional_call_matches_module_and_gives_param_gradients():
    net = build_net("convnet-d3", 3, 10, 32, generator=torch.Generator().manual_seed(1))
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    torch.testing.assert_close(functional_call(net, params, (x,)), net(x))
    logits, feats = functional_call(net, params, (x,), {"return_features": True})
    assert len(feats.blocks) == 3

    def loss(p):
        return torch.nn.functional.cross_entropy(functional_call(net, p, (x,)), y)

    g = grad(loss)(params)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    for k, p in net.named_parameters():
        torch.testing.assert_close(g[k], p.grad)
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    assert torch.count_nonzero(functional_call(net, zero, (x,))) == 0


def test_seeded_default_init():
    state = torch.get_rng_state()
    a = build_net("convnet-d3-bn", 3, 10, 32, generator=torch.Generator().manual_seed(5))
    b = build_net("convnet-d3-bn", 3, 10, 32, generator=torch.Generator().manual_seed(5))
    c = build_net("convnet-d3-bn", 3, 10, 32, generator=torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    for (k, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        if k.endswith("conv.weight"):
            assert not torch.equal(pa, pc)
    w = a.blocks[1].conv.weight.detach()
    bound = 1 / math.sqrt(128 * 9)
    assert float(w.abs().max()) <= bound
    assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.02 * bound  # U(-b, b) has std b/sqrt(3)
    assert torch.equal(a.blocks[0].norm.weight, torch.ones(128)) and torch.equal(a.blocks[0].norm.bias, torch.zeros(128))
    default_init_(a, torch.Generator().manual_seed(6))
    for pa, pc in zip(a.parameters(), c.parameters()):
        assert torch.equal(pa, pc)


def test_names():
    assert parse_net_name("convnet-d3-bn").name == "convnet-d3-bn"
    assert parse_net_name("ConvNet-D4-W64-maxpool").name == "convnet-d4-w64-maxpool"
    assert parse_net_name("resnet18-bn").norm == "batch" and parse_net_name("resnet18").norm == "instance"
    assert parse_net_name("vgg11").name == "vgg11" and parse_net_name("alexnet-bn").name == "alexnet-bn"
    assert [default_depth(s) for s in (8, 28, 32, 64, 128)] == [3, 3, 3, 4, 5]
    for bad in ("convnet-d3-xx", "lenet-bn", "resnet50", "convnet-d0"):
        with pytest.raises(ValueError, match="unknown"):
            parse_net_name(bad)
    with pytest.raises(ValueError, match="channels"):
        build_net("convnet", 0, 10, 32)
    with pytest.raises(ValueError, match="image_size"):
        build_net("convnet", 3, 10, (32,))

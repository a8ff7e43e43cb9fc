"""The MTT/AST meta-gradient: closed forms, invariants, finite differences, jvp, `higher`, exact checkpointing.

All checks run in float64 on tiny students, so they are exact to rounding and take seconds.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from condense.vision.augment import DSA, DSAConfig
from condense.vision.nets import build_net
from condense.vision.trajectory import FunctionalNet, InnerPlan, Segment, meta_gradient, segment_loss, unroll

torch.set_default_dtype(torch.float32)


class Softmax(nn.Module):
    """Softmax regression on flattened images: the smoothest possible student."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(dim, classes)

    def forward(self, x):
        return self.linear(x.flatten(1))


class SmallConvNet(nn.Module):
    """ConvNet-2 of width 8 (conv, instance norm, ReLU, avg-pool; linear), a plain module ``higher`` can patch."""

    def __init__(self, classes: int, side: int = 8, width: int = 8):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, width, 3, padding=1), nn.GroupNorm(width, width)
        self.conv2, self.norm2 = nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(width, width)
        self.linear = nn.Linear(width * (side // 4) ** 2, classes)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.norm2(self.conv2(x))), 2)
        return self.linear(x.flatten(1))


def setup(model="softmax", k=2, ipc=2, side=4, seed=0, n_targets=1, spread=0.3):
    """(student, images, labels, θ̂_0, [targets]) in float64 with a smooth tiny model."""
    g = torch.Generator().manual_seed(seed)
    if model == "softmax":
        net = Softmax(side * side, k)
    elif model == "small-convnet":
        torch.manual_seed(seed)
        net = SmallConvNet(k, side)
    else:
        net = build_net(model, 1, k, side, generator=g)
    net = net.double()
    student = FunctionalNet(net)
    theta0 = student.layout.flatten(net)
    targets = [theta0 + spread * torch.randn(theta0.shape, generator=g, dtype=torch.float64) for _ in range(n_targets)]
    images = torch.randn(k * ipc, 1, side, side, generator=g, dtype=torch.float64)
    labels = torch.arange(k).repeat_interleave(ipc)
    return student, images, labels, theta0, targets


def plan_for(n_images, steps, momentum=0.0, batch=None, seed=1, dsa=None, truncate=None, side=4):
    return InnerPlan.draw(n_images, steps, batch, (side, side), torch.Generator().manual_seed(seed), dsa=dsa,
                          momentum=momentum, truncate=truncate)


def loss_value(student, segment, images, labels, alpha, plan):
    return segment_loss(unroll(student, segment, images, labels, alpha, plan), segment)


def central_differences(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = f().item()
        flat[i] = old - eps
        down = f().item()
        flat[i] = old
        grad.view(-1)[i] = (up - down) / (2 * eps)
    return grad


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# -- closed forms and invariants --------------------------------------------------------------------------
def test_one_step_closed_form():
    student, images, labels, theta0, (target,) = setup()
    alpha = torch.tensor(0.7, dtype=torch.float64)
    plan = plan_for(4, 1)
    seg = Segment(theta0, target)
    loss, d_images, d_alpha = meta_gradient(student, seg, images, labels, alpha, plan)
    # g computed independently: autograd on the module itself, parameters loaded from θ_0
    net = Softmax(16, 2).double()
    with torch.no_grad():
        net.linear.weight.copy_(theta0[:32].view(2, 16))
        net.linear.bias.copy_(theta0[32:])
    idx = plan.batches[0]
    F.cross_entropy(net(images[idx]), labels[idx]).backward()
    g = torch.cat([net.linear.weight.grad.reshape(-1), net.linear.bias.grad])
    den = (theta0 - target).pow(2).sum()
    new = theta0 - alpha * g
    assert torch.allclose(loss, (new - target).pow(2).sum() / den, rtol=1e-12)
    assert torch.allclose(d_alpha, -2 * g @ (new - target) / den, rtol=1e-10)


def test_alpha_zero_gives_one_for_every_term():
    student, images, labels, theta0, targets = setup(n_targets=3)
    seg = Segment(theta0, targets[0], intermediate=((1, targets[1], 1.0), (2, targets[2], 0.5)))
    states = unroll(student, seg, images, labels, torch.tensor(0.0, dtype=torch.float64), plan_for(4, 3))
    assert all(torch.equal(s, theta0) for s in states)
    assert float(segment_loss(states, seg).detach()) == pytest.approx(1.0 + 1.0 + 0.5, abs=1e-15)


def test_no_momentum_is_plain_sgd_bit_for_bit():
    student, images, labels, theta0, (target,) = setup(model="convnet-d1-w2-sigmoid")
    alpha = torch.tensor(0.3, dtype=torch.float64)
    plan = plan_for(4, 4, batch=3)
    states = unroll(student, Segment(theta0, target), images, labels, alpha, plan)
    # MTT's loop: θ_{i+1} = θ_i − α·∇ℓ_i(θ_i), the gradient taken with create_graph as the reference does
    theta = theta0.clone().requires_grad_(True)
    for i, idx in enumerate(plan.batches):
        (g,) = torch.autograd.grad(F.cross_entropy(student(images[idx], theta), labels[idx]), theta, create_graph=True)
        theta = theta - alpha * g
        assert torch.equal(states[i + 1].detach(), theta.detach())


def test_inner_momentum_matches_torch_sgd():
    student, images, labels, theta0, (target,) = setup()
    alpha, mu = 0.2, 0.9
    plan = plan_for(4, 5, momentum=mu, batch=2)
    states = unroll(student, Segment(theta0, target), images, labels, torch.tensor(alpha, dtype=torch.float64), plan)
    net = student.net
    with torch.no_grad():
        for p, v in zip(net.parameters(), student.layout.unflatten(theta0).values()):
            p.copy_(v)
    opt = torch.optim.SGD(net.parameters(), lr=alpha, momentum=mu)  # b_0 = g_0, b_i = μ b_{i-1} + g_i
    for i, idx in enumerate(plan.batches):
        opt.zero_grad()
        F.cross_entropy(net(images[idx]), labels[idx]).backward()
        opt.step()
        assert torch.allclose(student.layout.flatten(net), states[i + 1].detach(), rtol=1e-12, atol=1e-14)


def test_balance_factor_scales_the_inner_gradient():
    student, images, labels, theta0, (target,) = setup()
    plan = plan_for(4, 3)
    a = torch.tensor(0.4, dtype=torch.float64)
    balanced = unroll(student, Segment(theta0, target, balance=1.5), images, labels, a, plan)
    scaled = unroll(student, Segment(theta0, target), images, labels, a * 1.5, plan)
    assert torch.allclose(balanced[-1], scaled[-1], rtol=1e-13)


def test_intermediate_terms_are_added_at_their_steps():
    student, images, labels, theta0, targets = setup(n_targets=3)
    plan = plan_for(4, 6)
    a = torch.tensor(0.5, dtype=torch.float64)
    seg = Segment(theta0, targets[0], intermediate=((2, targets[1], 1 / 3), (4, targets[2], 2 / 3)))
    states = unroll(student, seg, images, labels, a, plan)
    by_hand = sum(w * (states[s] - t).pow(2).sum() / (theta0 - t).pow(2).sum()
                  for s, t, w in [(6, targets[0], 1.0), (2, targets[1], 1 / 3), (4, targets[2], 2 / 3)])
    assert torch.allclose(segment_loss(states, seg), by_hand, rtol=1e-14)


def test_truncation_off_is_the_full_gradient_and_on_is_not():
    student, images, labels, theta0, (target,) = setup()
    a = torch.tensor(0.5, dtype=torch.float64)
    seg = Segment(theta0, target)
    full = meta_gradient(student, seg, images, labels, a, plan_for(4, 4))
    as_long = meta_gradient(student, seg, images, labels, a, plan_for(4, 4, truncate=4))
    short = meta_gradient(student, seg, images, labels, a, plan_for(4, 4, truncate=1))
    assert all(torch.equal(x, y) for x, y in zip(full, as_long))
    assert torch.equal(full[0], short[0])  # same loss ...
    assert rel_err(short[1], full[1]) > 1e-3  # ... an approximate image gradient


# -- finite differences, jvp, higher ----------------------------------------------------------------------
@pytest.mark.parametrize("model,momentum,intermediate", [
    ("softmax", 0.0, False), ("softmax", 0.9, False), ("softmax", 0.9, True), ("convnet-d1-w2-sigmoid", 0.9, True),
])
@pytest.mark.parametrize("checkpoint", [False, True])
def test_meta_gradient_matches_central_differences(model, momentum, intermediate, checkpoint):
    student, images, labels, theta0, targets = setup(model=model, n_targets=3)
    m = 3
    inter = tuple((s, targets[j], 1.0) for j, s in enumerate([1, 2], 1)) if intermediate else ()  # N=3, M=3: s = 1, 2
    seg = Segment(theta0, targets[0], intermediate=inter)
    plan = plan_for(4, m, momentum=momentum)
    alpha = torch.tensor(0.5, dtype=torch.float64)
    _, d_images, d_alpha = meta_gradient(student, seg, images, labels, alpha, plan, checkpoint=checkpoint)
    x = images.clone()
    a = alpha.clone()
    fd_images = central_differences(lambda: loss_value(student, seg, x, labels, a, plan).detach(), x)
    fd_alpha = central_differences(lambda: loss_value(student, seg, x, labels, a, plan).detach(), a.view(1))
    assert rel_err(d_images, fd_images) < 1e-6
    assert rel_err(d_alpha.view(1), fd_alpha) < 1e-6


def test_image_gradient_matches_forward_mode_jvp():
    """An independent second path: the whole loop written with torch.func (grad inside, jvp outside)."""
    student, images, labels, theta0, (target,) = setup()
    plan = plan_for(4, 3, momentum=0.9)
    alpha = torch.tensor(0.5, dtype=torch.float64)
    seg = Segment(theta0, target)
    _, d_images, _ = meta_gradient(student, seg, images, labels, alpha, plan)
    net, layout = student.net, student.layout

    def loss_of(s):
        theta, b = theta0, None
        for idx in plan.batches:
            def inner(t, idx=idx):
                return F.cross_entropy(functional_call(net, layout.unflatten(t), (s[idx],)), labels[idx])
            g = torch.func.grad(inner)(theta)
            b = g if b is None else 0.9 * b + g
            theta = theta - alpha * b
        return (theta - target).pow(2).sum() / (theta0 - target).pow(2).sum()

    v = torch.randn(images.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _, directional = torch.func.jvp(loss_of, (images,), (v,))
    assert float(directional) == pytest.approx(float((d_images * v).sum()), rel=1e-10)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_meta_gradient_equals_higher_on_a_small_convnet(momentum):
    higher = pytest.importorskip("higher")
    student, images, labels, theta0, (target,) = setup(model="small-convnet", k=3, ipc=2, side=8)
    net = student.net
    plan = plan_for(6, 4, momentum=momentum, batch=4, side=8)
    alpha = torch.tensor(0.05, dtype=torch.float64)
    _, d_images, d_alpha = meta_gradient(student, Segment(theta0, target), images, labels, alpha, plan)

    with torch.no_grad():
        for p, v in zip(net.parameters(), student.layout.unflatten(theta0).values()):
            p.copy_(v)
    s = images.clone().requires_grad_(True)
    a = alpha.clone().requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=1.0, momentum=momentum)
    with higher.innerloop_ctx(net, opt, copy_initial_weights=True) as (fnet, diffopt):
        for idx in plan.batches:
            diffopt.step(F.cross_entropy(fnet(s[idx]), labels[idx]), override={"lr": [a]})
        theta_n = torch.cat([p.reshape(-1) for p in fnet.parameters()])
        loss = (theta_n - target).pow(2).sum() / (theta0 - target).pow(2).sum()
        h_images, h_alpha = torch.autograd.grad(loss, (s, a))
    assert rel_err(d_images, h_images) < 1e-10
    assert float(d_alpha) == pytest.approx(float(h_alpha), rel=1e-10)


# -- exact checkpointing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum,truncate,intermediate,balance", [
    (0.0, None, False, 1.0), (0.9, None, True, 1.3), (0.9, 2, True, 0.8), (0.0, 2, False, 1.0),
])
def test_checkpointed_meta_gradient_equals_the_full_graph(momentum, truncate, intermediate, balance):
    student, images, labels, theta0, targets = setup(model="convnet-d2-w8", k=3, ipc=3, side=8, n_targets=2)
    dsa = DSA(DSAConfig(strategy="color_crop_cutout_scale_rotate", align_corners=True))
    plan = plan_for(9, 5, momentum=momentum, batch=4, dsa=dsa, truncate=truncate, side=8)
    seg = Segment(theta0, targets[0], intermediate=((2, targets[1], 1.0),) if intermediate else (), balance=balance)
    alpha = torch.tensor(0.05, dtype=torch.float64)
    full = meta_gradient(student, seg, images, labels, alpha, plan)
    ckpt = meta_gradient(student, seg, images, labels, alpha, plan, checkpoint=True)
    assert float(ckpt[0]) == pytest.approx(float(full[0]), rel=1e-13)
    assert rel_err(ckpt[1], full[1]) < 1e-11
    assert float(ckpt[2]) == pytest.approx(float(full[2]), rel=1e-11)


def test_plan_chunks_cover_every_image_once_per_pass():
    plan = plan_for(10, 5, batch=4)
    sizes = [b.numel() for b in plan.batches]
    assert sizes == [4, 4, 2, 4, 4]  # the short chunk is used as is
    assert sorted(torch.cat(plan.batches[:3]).tolist()) == list(range(10))
    assert InnerPlan.draw(10, 3, None, (4, 4), torch.Generator().manual_seed(0)).batches[0].numel() == 10

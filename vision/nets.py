"""Networks for image dataset distillation: the ConvNet family and a small cross-architecture zoo.

Every network is built by name (:func:`build_net`) and shares one interface:

* ``net(x)`` returns the logits;
* ``net(x, return_features=True)`` returns ``(logits, Features(blocks, embedding))`` computed by the network's
  own forward (no hooks, no copies): ``blocks`` are the post-activation, pre-pooling outputs of each stage,
  ``embedding`` is the input of the final linear classifier;
* all parameters are ordinary module parameters, so ``torch.func.functional_call(net, params, (x,))`` works
  (trajectory matching unrolls training over a parameter dictionary that way).

**ConvNet-D** (the DC/DSA/DM reference network that MTT, DataDAM and AST copy; docs/protocols.md): width 128,
D blocks of ``Conv 3x3 (padding 1, bias) -> norm -> ReLU -> AvgPool 2x2``, then ``Linear(128·H/2^D·W/2^D, K)``.
Norms: ``instance`` (GroupNorm with one group per channel, affine; the default), ``batch`` (BatchNorm2d),
``group`` (GroupNorm with 4 groups), ``layer`` (LayerNorm over C×H×W) and ``none``. Pooling: avg, max or none.

**Input geometry.** A 1-channel 28×28 input (MNIST-like) gets padding 3 in the first convolution, giving the
32×32 geometry of the references (LeNet pads 2, AlexNet 4, the same idea). Every other input, including the
built-in 8×8 ``digits`` set, keeps the standard padding, and the layer sizes follow the image: ConvNet-3 on
8×8 digits runs 8 -> 4 -> 2 -> 1, so its embedding has 128 dimensions. A network whose pooling would shrink
the image below one pixel raises a ``ValueError`` naming the image size. ConvNet depth follows resolution when
the name gives none (``"convnet"``): 3 up to 32 px, 4 at 64 px, 5 at 128 px (:func:`default_depth`).

**Zoo** (DC reference definitions): ``mlp`` (two hidden layers of 128), ``lenet``, ``alexnet`` /
``alexnet-bn``, ``vgg11`` (instance norm) / ``vgg11-bn``, ``resnet18`` (instance norm) / ``resnet18-bn``.
ResNet-18 ends with an adaptive average pool, which equals the reference's 4×4 pool at 28 and 32 px.

**Names.** ``convnet[-d<depth>][-w<width>][-in|-bn|-gn|-ln|-nonorm][-avgpool|-maxpool|-nopool]
[-relu|-sigmoid|-leakyrelu]``, e.g. ``"convnet-d3"``, ``"convnet-d3-bn"``, ``"convnet-d4-w64-maxpool"``;
``"resnet18-bn"``, ``"vgg11"``, ``"alexnet"``, ``"lenet"``, ``"mlp"``.

**Initialisation.** Weights use PyTorch's default initialisation. :func:`default_init_` redraws it from a
given ``torch.Generator`` (on the parameters' device), so a seeded method can draw a fresh network per
iteration without touching the global RNG.

**Your own networks.** ``register("my-net", builder)`` with ``builder(channels, num_classes, image_size) ->
nn.Module`` makes ``"my-net"`` a name like the built-in ones: an evaluation net (``condense.evaluate(...,
model="my-net")``), an MTT expert and student (any module whose forward maps images to logits; trajectory matching
calls it through ``torch.func.functional_call``), or a DataDAM encoder, which must also return its features:
subclass :class:`Net` and implement :meth:`Net.features`. A seeded build runs the builder under a forked global
RNG seeded from the method's generator, so your own initialisation is kept and reproducible.
"""
from __future__ import annotations

import abc
import math
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator, NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from condense.registry import NetworkRegistry

#: canonical norm names and their name tokens
NORM_TOKENS: dict[str, str] = {"in": "instance", "bn": "batch", "gn": "group", "ln": "layer", "nonorm": "none"}
POOL_TOKENS: dict[str, str] = {"avgpool": "avg", "maxpool": "max", "nopool": "none"}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "leakyrelu": lambda: nn.LeakyReLU(negative_slope=0.01),
}
#: groups of the reference's ``groupnorm`` option
GROUPNORM_GROUPS = 4
CONVNET_WIDTH = 128
#: (largest image side, ConvNet depth): D3 up to 32 px, D4 at 64 px, D5 at 128 px
DEPTH_BY_RESOLUTION: tuple[tuple[int, int], ...] = ((32, 3), (64, 4), (128, 5))
MNIST_GEOMETRY = (1, 28, 28)  # (channels, H, W) whose first convolution gets the extra padding


class Features(NamedTuple):
    """Intermediate outputs of a network's forward: per-stage activations and the classifier input."""

    blocks: tuple[torch.Tensor, ...]
    embedding: torch.Tensor


@dataclass(frozen=True)
class NetSpec:
    """A parsed network name (see the module docstring for the grammar)."""

    arch: str
    depth: int | None = None
    width: int = CONVNET_WIDTH
    norm: str = "instance"
    pooling: str = "avg"
    activation: str = "relu"

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``"convnet-d3-bn"`` (defaults are left out)."""
        if self.arch != "convnet":
            default = ARCHITECTURES[self.arch].default_norm
            token = {v: k for k, v in NORM_TOKENS.items()}[self.norm]
            return self.arch if self.norm == default else f"{self.arch}-{token}"
        parts = ["convnet"]
        if self.depth is not None:
            parts.append(f"d{self.depth}")
        if self.width != CONVNET_WIDTH:
            parts.append(f"w{self.width}")
        if self.norm != "instance":
            parts.append({v: k for k, v in NORM_TOKENS.items()}[self.norm])
        if self.pooling != "avg":
            parts.append({v: k for k, v in POOL_TOKENS.items()}[self.pooling])
        if self.activation != "relu":
            parts.append(self.activation)
        return "-".join(parts)

    def resolve(self, image_size: tuple[int, int]) -> "NetSpec":
        """Fill in a ConvNet's depth from the image resolution when the name gave none."""
        if self.arch == "convnet" and self.depth is None:
            return replace(self, depth=default_depth(image_size))
        return self


def default_depth(image_size: int | Sequence[int]) -> int:
    """ConvNet depth by resolution: 3 up to 32 px, 4 up to 64 px, 5 above."""
    side = max(_pair(image_size, "image_size"))
    for limit, depth in DEPTH_BY_RESOLUTION:
        if side <= limit:
            return depth
    return DEPTH_BY_RESOLUTION[-1][1]


def parse_net_name(name: str) -> NetSpec:
    """Parse ``"convnet-d3-bn"``, ``"resnet18-bn"``, ... into a :class:`NetSpec`; unknown parts raise."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"network name must be a non-empty string, got {name!r}")
    arch, *tokens = name.strip().lower().split("-")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown network {name!r}; known architectures: {', '.join(ARCHITECTURES)}")
    entry = ARCHITECTURES[arch]
    fields: dict[str, object] = {"arch": arch, "norm": entry.default_norm}
    for tok in tokens:
        if tok in NORM_TOKENS and NORM_TOKENS[tok] in entry.norms:
            fields["norm"] = NORM_TOKENS[tok]
        elif arch == "convnet" and tok in POOL_TOKENS:
            fields["pooling"] = POOL_TOKENS[tok]
        elif arch == "convnet" and tok in ACTIVATIONS:
            fields["activation"] = tok
        elif arch == "convnet" and tok[:1] in ("d", "w") and tok[1:].isdigit() and int(tok[1:]) > 0:
            fields["depth" if tok[0] == "d" else "width"] = int(tok[1:])
        else:
            allowed = [k for k, v in NORM_TOKENS.items() if v in entry.norms]
            if arch == "convnet":
                allowed += ["d<N>", "w<N>", *POOL_TOKENS, *ACTIVATIONS]
            raise ValueError(f"network name {name!r}: unknown part {tok!r} for {arch}; allowed parts: {allowed}")
    return NetSpec(**fields)


# -- building blocks ---------------------------------------------------------------------------------
def make_norm(kind: str, channels: int, spatial: tuple[int, int]) -> nn.Module:
    """The norm layer of the references: ``instance`` is GroupNorm(C, C), ``group`` GroupNorm(4, C)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(GROUPNORM_GROUPS, channels, affine=True)
    if kind == "layer":
        return nn.LayerNorm([channels, *spatial], elementwise_affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of instance, batch, group, layer, none; got {kind!r}")


def _pair(size: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"{what} must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _mnist_like(channels: int, image_size: tuple[int, int]) -> bool:
    return (channels, *image_size) == MNIST_GEOMETRY


def _conv_out(size: tuple[int, int], kernel: int, padding: int, stride: int = 1) -> tuple[int, int]:
    return tuple((s + 2 * padding - kernel) // stride + 1 for s in size)  # type: ignore[return-value]


def _check(size: tuple[int, int], arch: str, image_size: tuple[int, int]) -> None:
    if min(size) < 1:
        raise ValueError(f"{arch}: images of size {image_size[0]}x{image_size[1]} are too small for this "
                         "network (a layer's output would be empty); use a shallower network or larger images")


class Net(nn.Module, abc.ABC):
    """Base class: subclasses implement :meth:`features`; ``classifier`` maps the embedding to logits."""

    spec: NetSpec
    classifier: nn.Linear

    @abc.abstractmethod
    def features(self, x: torch.Tensor) -> Features:
        """The per-stage activations and the embedding of a batch ``x``."""

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.classifier(feats.embedding)
        return (logits, feats) if return_features else logits

    @property
    def name(self) -> str:
        """The canonical name of a built-in network, the registered name of a user's one."""
        spec = getattr(self, "spec", None)
        return spec.name if spec is not None else self.__dict__.get("_registered_name", type(self).__name__)

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_registered_name"] = value


# -- ConvNet -----------------------------------------------------------------------------------------
class ConvBlock(nn.Module):
    """Conv 3x3 -> norm -> activation -> 2x2 pooling; returns (pre-pool activation, pooled output)."""

    def __init__(self, in_ch: int, out_ch: int, padding: int, norm: nn.Module, act: nn.Module, pool: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=padding)
        self.norm = norm
        self.act = act
        self.pool = pool

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.act(self.norm(self.conv(x)))
        return a, self.pool(a)


class ConvNet(Net):
    """ConvNet-D of the dataset-distillation literature (see the module docstring)."""

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        size = image_size
        first_pad = 3 if _mnist_like(channels, image_size) else 1
        blocks = []
        in_ch = channels
        for d in range(spec.depth):
            size = _conv_out(size, 3, first_pad if d == 0 else 1)
            norm = make_norm(spec.norm, spec.width, size)
            if spec.pooling == "none":
                pool: nn.Module = nn.Identity()
            else:
                pool = nn.AvgPool2d(2, 2) if spec.pooling == "avg" else nn.MaxPool2d(2, 2)
                size = (size[0] // 2, size[1] // 2)
            _check(size, spec.name, image_size)
            blocks.append(ConvBlock(in_ch, spec.width, first_pad if d == 0 else 1, norm, ACTIVATIONS[spec.activation](), pool))
            in_ch = spec.width
        self.blocks = nn.ModuleList(blocks)
        self.feature_shape = (spec.width, *size)
        self.classifier = nn.Linear(spec.width * size[0] * size[1], num_classes)

    def features(self, x: torch.Tensor) -> Features:
        acts = []
        for block in self.blocks:
            a, x = block(x)
            acts.append(a)
        return Features(tuple(acts), x.flatten(1))


# -- the cross-architecture zoo ----------------------------------------------------------------------
class MLP(Net):
    """Two hidden layers of 128 with ReLU (DC reference ``MLP``)."""

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        self.fc1 = nn.Linear(channels * image_size[0] * image_size[1], 128)
        self.fc2 = nn.Linear(128, 128)
        self.classifier = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> Features:
        h1 = F.relu(self.fc1(x.flatten(1)))
        h2 = F.relu(self.fc2(h1))
        return Features((h1, h2), h2)


class LeNet(Net):
    """LeNet-5: conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool -> 120 -> 84 -> K (DC reference ``LeNet``)."""

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        pad = 2 if _mnist_like(channels, image_size) else 0
        self.conv1 = nn.Conv2d(channels, 6, kernel_size=5, padding=pad)
        size = _conv_out(image_size, 5, pad)
        size = (size[0] // 2, size[1] // 2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        size = _conv_out(size, 5, 0)
        size = (size[0] // 2, size[1] // 2)
        _check(size, "lenet", image_size)
        self.fc1 = nn.Linear(16 * size[0] * size[1], 120)
        self.fc2 = nn.Linear(120, 84)
        self.classifier = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> Features:
        a1 = F.relu(self.conv1(x))
        a2 = F.relu(self.conv2(F.max_pool2d(a1, 2, 2)))
        h = F.max_pool2d(a2, 2, 2).flatten(1)
        h = F.relu(self.fc2(F.relu(self.fc1(h))))
        return Features((a1, a2), h)


class _Stage(nn.Module):
    """conv -> norm -> ReLU, the unit of AlexNet and VGG."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int, norm: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=kernel, padding=padding)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class _PooledStack(Net):
    """Stages separated by 2x2 max pooling; ``plan`` lists (out channels, kernel, padding) or ``"M"`` (pool)."""

    def _build(self, plan: Sequence, channels: int, num_classes: int, image_size: tuple[int, int], first_pad: int):
        size = image_size
        in_ch = channels
        layers = []
        for item in plan:
            if item == "M":
                size = (size[0] // 2, size[1] // 2)
                layers.append(nn.MaxPool2d(2, 2))
                continue
            out_ch, kernel, pad = item
            pad = first_pad if not layers else pad
            size = _conv_out(size, kernel, pad)
            _check(size, self.spec.name, image_size)
            layers.append(_Stage(in_ch, out_ch, kernel, pad, make_norm(self.spec.norm, out_ch, size)))
            in_ch = out_ch
        _check(size, self.spec.name, image_size)
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(in_ch * size[0] * size[1], num_classes)

    def features(self, x: torch.Tensor) -> Features:
        acts = []
        for layer in self.layers:
            if isinstance(layer, nn.MaxPool2d):
                acts.append(x)  # the activation entering each pooling is a stage output
            x = layer(x)
        return Features(tuple(acts), x.flatten(1))


class AlexNet(_PooledStack):
    """AlexNet for small images (DC reference ``AlexNet``/``AlexNetBN``): 128-192-256-192-192 channels."""

    PLAN = ((128, 5, 2), "M", (192, 5, 2), "M", (256, 3, 1), (192, 3, 1), (192, 3, 1), "M")

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        self._build(self.PLAN, channels, num_classes, image_size, 4 if _mnist_like(channels, image_size) else 2)


class VGG11(_PooledStack):
    """VGG-11 (DC reference ``VGG11``/``VGG11BN``): 64-M-128-M-256-256-M-512-512-M-512-512-M, 3x3 convs."""

    PLAN = ((64, 3, 1), "M", (128, 3, 1), "M", (256, 3, 1), (256, 3, 1), "M", (512, 3, 1), (512, 3, 1), "M",
            (512, 3, 1), (512, 3, 1), "M")

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        self._build(self.PLAN, channels, num_classes, image_size, 3 if _mnist_like(channels, image_size) else 1)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with norms, identity or 1x1-projection shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, planes, (1, 1))
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.norm2 = make_norm(norm, planes, (1, 1))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          make_norm(norm, planes, (1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Net):
    """ResNet-18 for small images (DC reference ``ResNet18``/``ResNet18BN``): 3x3 stem, no stem pooling."""

    STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))

    def __init__(self, spec: NetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec
        self.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        self.norm1 = make_norm(spec.norm, 64, (1, 1))
        stages = []
        in_planes = 64
        for planes, stride in self.STAGES:
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride, spec.norm),
                                        BasicBlock(planes, planes, 1, spec.norm)))
            in_planes = planes
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Linear(512, num_classes)

    def features(self, x: torch.Tensor) -> Features:
        x = F.relu(self.norm1(self.conv1(x)))
        acts = []
        for stage in self.stages:
            x = stage(x)
            acts.append(x)
        return Features(tuple(acts), F.adaptive_avg_pool2d(x, 1).flatten(1))


@dataclass(frozen=True)
class _Arch:
    cls: type[Net]
    norms: tuple[str, ...]
    default_norm: str


ARCHITECTURES: dict[str, _Arch] = {
    "convnet": _Arch(ConvNet, ("instance", "batch", "group", "layer", "none"), "instance"),
    "mlp": _Arch(MLP, ("none",), "none"),
    "lenet": _Arch(LeNet, ("none",), "none"),
    "alexnet": _Arch(AlexNet, ("none", "batch"), "none"),
    "vgg11": _Arch(VGG11, ("instance", "batch", "none"), "instance"),
    "resnet18": _Arch(ResNet18, ("instance", "batch"), "instance"),
}


# -- users' own networks ----------------------------------------------------------------------------
def _is_builtin(name: str) -> bool:
    return name.split("-", 1)[0] in ARCHITECTURES


#: ``register(name, builder)``: a user's image network (see the module docstring)
register = NetworkRegistry("image network", "builder(channels, num_classes, image_size) -> nn.Module", _is_builtin)


def registered(name: str) -> bool:
    """Whether ``name`` is a user-registered network."""
    return register.get(name) is not None


def resolved_name(name: str, image_size: int | Sequence[int]) -> str:
    """The name a network built from ``name`` for images of ``image_size`` records: the registered name, or the
    canonical built-in name with the depth filled in (``"convnet"`` at 32 px -> ``"convnet-d3"``)."""
    if registered(name):
        return name.lower()
    return parse_net_name(name).resolve(_pair(image_size, "image_size")).name


def net_name(net: nn.Module) -> str:
    """A network's name as runs record it: the built-in canonical name or the registered one."""
    name = getattr(net, "name", None)
    return name if isinstance(name, str) else type(net).__name__


# -- construction and initialisation -----------------------------------------------------------------
def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


@torch.no_grad()
def default_init_(net: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Redraw PyTorch's default initialisation in place, from ``generator``.

    Conv2d/Linear weights and biases: U(−1/√fan_in, 1/√fan_in) (what ``kaiming_uniform_(a=√5)`` and the
    layers' bias rule give); norm layers: weight 1, bias 0, running statistics reset. Any other module with
    parameters of its own (in a user's network) is reset with its ``reset_parameters()`` under a global RNG forked
    and seeded from ``generator`` (one host read of the generator per call).
    """
    others = []
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bound = 1.0 / math.sqrt(m.weight[0].numel())
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
        elif any(p is not None for p in m._parameters.values()) and hasattr(m, "reset_parameters"):
            others.append(m)
    if others:
        with _forked_rng(net, _seed_from(generator) if generator is not None else None):
            for m in others:
                m.reset_parameters()
    return net



@contextmanager
def _forked_rng(module: nn.Module | None, seed: int | None) -> Iterator[None]:
    """Run a block under the global RNG (CPU and the module's CUDA devices) seeded with ``seed``, then restore it;
    with ``seed=None`` the block simply uses (and advances) the global RNG."""
    if seed is None:
        yield
        return
    devices = sorted({p.device.index or 0 for p in (module.parameters() if module is not None else ())
                      if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def build_net(
    name: str | NetSpec,
    channels: int,
    num_classes: int,
    image_size: int | Sequence[int],
    *,
    device: str | torch.device | None = None,
    generator: torch.Generator | None = None,
) -> Net:
    """Build a network by name, e.g. ``build_net("convnet-d3-bn", 3, 10, 32)``.

    With ``generator`` the weights are drawn from it (on its device unless ``device`` says otherwise) and the
    global RNG is untouched; without, PyTorch's usual initialisation from the global RNG is used.
    """
    for what, value in (("channels", channels), ("num_classes", num_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    size = _pair(image_size, "image_size")
    builder = register.get(name) if isinstance(name, str) else None
    if builder is not None:
        with _forked_rng(None, _seed_from(generator) if generator is not None else None):
            net = builder(channels, num_classes, size)
        if not isinstance(net, nn.Module):
            raise TypeError(f"the builder registered as {name!r} returned {type(net).__name__}, not an nn.Module")
        try:
            net.name = name.lower()  # runs and buffers record the registered name
        except AttributeError:  # a read-only name of the user's own
            pass
        return net.to(device or (generator.device if generator is not None else "cpu"))
    spec = parse_net_name(name) if isinstance(name, str) else name
    if not isinstance(spec, NetSpec):
        raise TypeError(f"name must be a network name or a NetSpec, got {type(name).__name__}")
    spec = spec.resolve(size)
    cls = ARCHITECTURES[spec.arch].cls
    if generator is None:
        with torch.device(device or "cpu"):
            return cls(spec, channels, num_classes, size)
    with torch.device("meta"):
        net = cls(spec, channels, num_classes, size)
    net = net.to_empty(device=device or generator.device)
    return default_init_(net, generator)


def num_parameters(net: nn.Module) -> int:
    """Number of trainable parameters (buffers such as BN running statistics are not counted)."""
    return sum(p.numel() for p in net.parameters())

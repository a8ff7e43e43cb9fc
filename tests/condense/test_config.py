from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from condense.config import ConfigError, apply_overrides, from_dict, parse_set, preset, require, to_dict


@dataclass
class Inner:
    strategy: str = "color_crop"
    prob: float = 0.5


@dataclass
class Cfg:
    ipc: int = 10
    lr: float = 1.0
    zca: bool = False
    init: Literal["real", "noise", "kmeans"] = "real"
    budget: int | None = None
    layers: tuple[int, ...] = (1, 2)
    name: str = "x"
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self):
        require(self.ipc >= 1, "ipc", f"must be >= 1, got {self.ipc}")


def test_string_overrides_are_parsed_to_field_types():
    cfg = apply_overrides(Cfg(), {"ipc": "50", "lr": "1e-5", "zca": "true", "init": "kmeans", "budget": "none",
                                  "layers": "3,4,5", "name": "abc", "inner.prob": "0.25"})
    assert cfg == Cfg(ipc=50, lr=1e-5, zca=True, init="kmeans", budget=None, layers=(3, 4, 5), name="abc",
                      inner=Inner(prob=0.25))
    assert apply_overrides(Cfg(), {"budget": "7", "layers": "[8, 9]"}).budget == 7
    assert apply_overrides(Cfg(), {"layers": "[8, 9]"}).layers == (8, 9)
    assert apply_overrides(Cfg(), {"zca": "off"}).zca is False
    assert apply_overrides(Cfg(), {"ipc": "1e2"}).ipc == 100  # an exact integer written as a float


def test_typed_overrides_pass_and_original_is_untouched():
    base = Cfg()
    cfg = apply_overrides(base, {"ipc": 3, "lr": 2, "inner": {"strategy": "crop"}})
    assert cfg.ipc == 3 and cfg.lr == 2.0 and isinstance(cfg.lr, float) and cfg.inner.strategy == "crop"
    assert base == Cfg()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ipcs": "1"}, "unknown config key 'ipcs'"),
        ({"inner.nope": "1"}, "unknown config key 'inner.nope'"),
        ({"ipc": "1.5"}, "ipc: expected an integer"),
        ({"ipc": True}, "ipc: expected an integer"),
        ({"lr": "fast"}, "lr: expected a number"),
        ({"zca": "maybe"}, "zca: expected a boolean"),
        ({"init": "zeros"}, "init: 'zeros' is not one of"),
        ({"layers": "1,x"}, r"layers\[1\]: expected an integer"),
        ({"ipc": "0"}, "ipc: must be >= 1"),
        ({"name.sub": "1"}, "'name' is not a nested config"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Cfg(), overrides)


def test_parse_set():
    assert parse_set(["a=1", "b.c = x=y", "d="]) == {"a": "1", "b.c": "x=y", "d": ""}
    for bad in (["novalue"], ["=3"]):
        with pytest.raises(ConfigError, match="key=value"):
            parse_set(bad)


def test_dict_round_trip_and_presets():
    cfg = Cfg(ipc=5, layers=(7,), inner=Inner(prob=0.1))
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    table = {"mnist-ipc1": {"ipc": 1, "lr": 100.0}}
    assert apply_overrides(Cfg(), preset(table, "mnist-ipc1")).lr == 100.0
    with pytest.raises(ConfigError, match="unknown preset 'x'; known: mnist-ipc1"):
        preset(table, "x")

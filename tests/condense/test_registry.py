import math
from dataclasses import dataclass

import pytest
import torch

import condense
from condense import registry
from condense.artifacts import ImageSet
from condense.config import ConfigError
from condense.method import Method


@dataclass
class ToyConfig:
    scale: float = 1.0


class ToyMethod(Method):
    name = "toy"
    config_class = ToyConfig
    presets = {"toy-big": {"scale": 10.0}, "toy-d": {"scale": 3.0}}

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0):
        return {"name": name}

    @classmethod
    def dataset_name(cls, data):
        return data["name"] if isinstance(data, dict) else super().dataset_name(data)

    def fit(self, data, *, device="auto", seed=0, run_dir=None):
        images = torch.full((2, 1, 2, 2), float(self.config.scale) + seed)
        return ImageSet.create({"images": images, "labels": torch.tensor([0, 1])}, method="toy",
                               config={"scale": self.config.scale}, source={"name": data["name"]}, seed=seed,
                               extra={"summary": {"scale": self.config.scale}})


@pytest.fixture
def toy_method(monkeypatch):
    import sys
    import types

    module = types.ModuleType("toy_method_module")
    module.ToyMethod = ToyMethod
    monkeypatch.setitem(sys.modules, "toy_method_module", module)
    entry = registry.MethodEntry(name="toy", target="toy_method_module:ToyMethod", family="vision",
                                 produces="ImageSet", summary="a toy", paper="-", default_dataset="toy",
                                 cli_options=(registry.CliOption("--scale", float, "scale"),))
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "toy_method_module" else _real_find_spec(name))
    registry.register(entry)
    yield entry
    registry.unregister("toy")


_real_find_spec = registry.importlib.util.find_spec


def test_distill_resolves_lazily_and_saves(toy_method, tmp_path):
    art = condense.distill("toy", "x", scale=2.0, out=tmp_path)
    assert art.images[0, 0, 0, 0] == 2.0 and art.meta["source"]["name"] == "x"
    assert art.path == tmp_path / "toy.safetensors"
    assert condense.load(art.path) == art
    assert "toy" in condense.methods()
    assert registry.get("toy").config_class is ToyConfig and set(registry.get("toy").presets) == {"toy-big", "toy-d"}


def test_config_preset_and_overrides_combine_as_documented(toy_method):
    scale = lambda art: float(art.images[0, 0, 0, 0])  # noqa: E731 - seed 0, so the first pixel is the scale
    assert scale(condense.distill("toy", "x")) == 1.0  # defaults
    # the dataset's own preset applies by itself; a named preset comes after it; overrides come last
    art = condense.distill("toy", "d")
    assert scale(art) == 3.0 and art.meta["extra"]["presets"]["used"] == ["toy-d"]
    assert scale(condense.distill("toy", "d", preset="toy-big")) == 10.0
    assert scale(condense.distill("toy", "d", preset="toy-big", scale=5)) == 5.0
    # a mapping is applied after the presets, like overrides; the same key with two values is an error
    assert scale(condense.distill("toy", "d", preset="toy-big", config={"scale": 4})) == 4.0
    assert scale(condense.distill("toy", "d", config={"scale": "4"}, scale=4.0)) == 4.0  # same value: fine
    with pytest.raises(ConfigError, match="'scale' is given twice"):
        condense.distill("toy", "d", config={"scale": 4}, scale=5)
    # a config object is complete: no dataset preset applies, overrides still do, a named preset is an error
    art = condense.distill("toy", "d", config=ToyConfig(scale=7.0))
    assert scale(art) == 7.0 and art.meta["extra"]["presets"]["used"] == []
    assert scale(condense.distill("toy", "d", config=ToyConfig(scale=7.0), scale=8)) == 8.0
    with pytest.raises(ConfigError, match="complete config and cannot be combined"):
        condense.distill("toy", "d", config=ToyConfig(), preset="toy-big")
    with pytest.raises(ConfigError, match="unknown toy preset 'nope'; known: toy-big, toy-d"):
        condense.distill("toy", "d", preset="nope")
    with pytest.raises(TypeError, match="config must be a ToyConfig or a mapping"):
        condense.distill("toy", "d", config=[1, 2])
    with pytest.raises(ConfigError, match="unknown config key 'size'"):
        condense.distill("toy", "d", size=3)


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError, match="unknown method 'nope'; known methods:"):
        condense.distill("nope")


def test_registration_clash_and_unavailable(monkeypatch):
    entry = registry.MethodEntry(name="ghost", target="no_such_module_xyz:Ghost", family="vision", produces="ImageSet",
                                 summary="", paper="", default_dataset="digits")
    registry.register(entry)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register(entry)
        assert "ghost" not in registry.methods() and "ghost" in registry.methods(include_unavailable=True)
        with pytest.raises(ValueError, match="not installed"):
            condense.distill("ghost")
    finally:
        registry.unregister("ghost")


def test_the_four_methods_are_registered():
    names = registry.methods(include_unavailable=True)
    assert {"datadam", "mtt", "mirage", "ffg2m"} <= set(names)
    assert registry.get("DataDAM").produces == "ImageSet"
    with pytest.raises(ValueError, match="no evaluator for artifact kind 'Mystery'"):
        registry.evaluator("Mystery")


def test_run_stats_population_std_and_nan_runs():
    from condense.registry import run_stats

    out = run_stats([0.5, 0.7, 0.9])
    assert out["mean"] == pytest.approx(0.7) and out["std"] == pytest.approx((0.08 / 3) ** 0.5)
    assert out["runs"] == [0.5, 0.7, 0.9]
    out = run_stats([0.6, float("nan"), 0.8])  # a NaN run is kept in runs, left out of mean and std
    assert out["mean"] == pytest.approx(0.7) and out["std"] == pytest.approx(0.1)
    assert len(out["runs"]) == 3 and math.isnan(out["runs"][1])
    empty = run_stats([float("nan")])
    assert math.isnan(empty["mean"]) and math.isnan(empty["std"])

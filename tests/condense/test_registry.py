import math

import pytest
import torch

import condense
from condense import registry
from condense.artifacts import ImageSet


def _toy_run(dataset="toy", *, out=None, seed=0, scale=1.0, **kwargs):
    images = torch.full((2, 1, 2, 2), float(scale) + seed)
    return ImageSet.create({"images": images, "labels": torch.tensor([0, 1])}, method="toy",
                           config={"scale": scale}, source={"name": dataset}, seed=seed,
                           extra={"summary": {"scale": scale}})


@pytest.fixture
def toy_method(monkeypatch):
    import sys
    import types

    module = types.ModuleType("toy_method_module")
    module.run = _toy_run
    monkeypatch.setitem(sys.modules, "toy_method_module", module)
    entry = registry.MethodEntry(name="toy", target="toy_method_module:run", family="vision", produces="ImageSet",
                                 summary="a toy", paper="-", default_dataset="toy",
                                 cli_options=(registry.CliOption("--scale", float, "scale"),))
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "toy_method_module" else _real_find_spec(name))
    registry.register(entry)
    yield entry
    registry.unregister("toy")


_real_find_spec = registry.importlib.util.find_spec


def test_distill_resolves_lazily_and_saves(toy_method, tmp_path):
    art = condense.distill("toy", dataset="d", scale=2.0, out=tmp_path)
    assert art.images[0, 0, 0, 0] == 2.0 and art.meta["source"]["name"] == "d"
    assert art.path == tmp_path / "toy.safetensors"
    assert condense.load(art.path) == art
    assert "toy" in condense.methods()


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError, match="unknown method 'nope'; known methods:"):
        condense.distill("nope")


def test_registration_clash_and_unavailable(monkeypatch):
    entry = registry.MethodEntry(name="ghost", target="no_such_module_xyz:run", family="vision", produces="ImageSet",
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

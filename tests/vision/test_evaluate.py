"""The evaluation protocol: profiles, the lr schedule, final-epoch reporting, artifacts and baselines."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import condense.vision.evaluate as ev
from condense.artifacts import ImageSet
from condense.config import ConfigError, apply_overrides
from condense.vision.coreset import random_real
from condense.vision.data import load_images
from condense.vision.evaluate import ImageEvalConfig, evaluate_artifact, evaluate_set, train_net
from condense.vision.nets import build_net
from condense.vision.presets import EVAL_PROFILES
from condense.vision.zca import ZCA


@pytest.fixture(scope="module")
def digits():
    return load_images("digits")


def digits_set(data, ipc=2, seed=0, **extra_tensors):
    idx = random_real(data.y_train, ipc, generator=torch.Generator().manual_seed(seed))
    return ImageSet.create({"images": data.x_train[idx], "labels": data.y_train[idx], **extra_tensors},
                           method="datadam", source=data.source_meta(), budget={"ipc": ipc})


def test_profiles_are_valid_configs():
    for fields in EVAL_PROFILES.values():
        apply_overrides(ImageEvalConfig(), fields)
    dam = apply_overrides(ImageEvalConfig(), EVAL_PROFILES["datadam"])
    assert (dam.model, dam.runs, dam.epochs, dam.batch, dam.decay) == ("convnet-bn", 10, 1800, 64, 0.1)
    ast = apply_overrides(ImageEvalConfig(), EVAL_PROFILES["ast"])
    assert (ast.weight_decay, ast.decay, ast.momentum_after_decay, ast.align_corners) == (1e-3, 0.5, 0.8, True)
    with pytest.raises(ConfigError, match="runs"):
        ImageEvalConfig(runs=0)
    with pytest.raises(ConfigError, match="baseline_sets"):
        ImageEvalConfig(baseline_sets=("random", "gm"))


@pytest.mark.parametrize("profile,built,per_epoch", [
    # E = 4: epochs 0..4; decay after epoch 4//2+1 = 3, optimiser rebuilt (momentum reset)
    ("dsa", [(0.1, 0.9, 5e-4), (pytest.approx(0.01), 0.9, 5e-4)], [0.1] * 4 + [0.01]),
    ("ast", [(0.1, 0.9, 1e-3), (pytest.approx(0.05), 0.8, 1e-3)], [0.1] * 4 + [0.05]),
    ("datadam-paper", [(0.1, 0.9, 5e-4)], [0.1, 0.1, 0.05, 0.05, 0.025]),  # StepLR x0.5 every 2 epochs (set below)
])
def test_lr_schedule(monkeypatch, recording_sgd, profile, built, per_epoch):
    monkeypatch.setattr(ev.torch.optim, "SGD", recording_sgd)
    cfg = apply_overrides(ImageEvalConfig(), {**EVAL_PROFILES[profile], "step_size": 2})
    net = build_net("convnet-d3", 1, 2, 8, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1] * 3)
    train_net(net, x, y, cfg, lr=0.1, epochs=4, batch=3, generator=torch.Generator().manual_seed(0), dsa=None)
    assert recording_sgd.built == built
    assert recording_sgd.steps == pytest.approx([lr for lr in per_epoch for _ in range(2)])  # 2 batches per epoch


def test_reports_final_epoch_accuracy_of_independently_seeded_runs(digits):
    cfg = ImageEvalConfig(model="convnet-d3", epochs=3, batch=16, runs=2, dsa=False)
    x, y = digits.x_train[:40], digits.y_train[:40]
    res = evaluate_set(x, y, digits.x_test, digits.y_test, cfg=cfg, lr=0.01, num_classes=10, strategy="none", seed=7)
    # rebuild run 1 by hand: same seed derivation, same training, accuracy after the last epoch
    g = torch.Generator().manual_seed(ev.run_seed(7, 1))
    net = build_net("convnet-d3", 1, 10, 8, generator=g)
    train_net(net, x, y, cfg, lr=0.01, epochs=3, batch=16, generator=g, dsa=None)
    assert res["accuracy"]["runs"][1] == ev.accuracy(net, digits.x_test, digits.y_test, channels_last=cfg.channels_last)
    assert res["accuracy"]["mean"] == pytest.approx(np.mean(res["accuracy"]["runs"]))
    assert res["accuracy"]["std"] == pytest.approx(np.std(res["accuracy"]["runs"], ddof=0))



def test_full_data_takes_at_least_the_small_sets_steps():
    """(E_f + 1) * ceil(N / B_f) >= (E + 1) * ceil(n / B), by hand; full_epochs stays the answer where it suffices."""
    cfg = ImageEvalConfig(epochs=100, batch=256, full_epochs=30, full_batch=256)
    assert ev.full_data_epochs(cfg, 10, 200) == 100  # 1 step an epoch on both sides: 101 steps
    assert ev.full_data_epochs(cfg, 10, 600) == 33  # 3 steps an epoch: 34 epochs = 102 >= 101 steps, 33 = 99 < 101
    assert ev.full_data_epochs(cfg, 10, 60_000) == 30  # the cap already gives 31 * 235 = 7,285 steps
    assert ev.full_data_epochs(replace(cfg, batch=4), 10, 200) == 302  # 3 steps an epoch: 303 steps
    assert ev.full_data_epochs(replace(cfg, epochs=0, full_epochs=0), 10, 200) == 0

def test_evaluate_artifact_with_baselines(digits):
    art = digits_set(digits, ipc=2)
    res = evaluate_artifact(art, runs=2, device="cpu", baselines=True, epochs=5, full_epochs=1,
                            baseline_sets="random,kmeans,full")
    assert set(res["results"]) == {"distilled", "random", "kmeans", "full"}
    assert (res["method"], res["dataset"], res["model"], res["profile"], res["ipc"]) == (
        "datadam", "digits", "convnet-d3-bn", "datadam", 2)
    for r in res["results"].values():
        assert 0.0 <= r["accuracy"]["mean"] <= 1.0 and len(r["accuracy"]["runs"]) == 2
    assert res["results"]["full"]["samples"] == digits.x_train.shape[0] and res["results"]["full"]["epochs"] == 1
    assert res["compression"]["distilled_samples"] == 20
    assert res["compression"]["samples"] == pytest.approx(digits.x_train.shape[0] / 20)
    assert "distilled" in res["table"] and "±" in res["table"]
    only = evaluate_artifact(art, runs=1, device="cpu", baselines=True, epochs=0, baseline_sets="random",
                             distilled=False)
    assert set(only["results"]) == {"random"}
    # a baseline's selection does not depend on the others: random alone equals random after nothing else
    assert only["results"]["random"]["accuracy"]["runs"] == evaluate_artifact(
        art, runs=1, device="cpu", baselines=True, epochs=0, baseline_sets="kmeans,random",
        distilled=False)["results"]["random"]["accuracy"]["runs"]
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_artifact(art, runs=1, device="cpu", distilled=False)


def test_learned_lr_is_used_for_the_set_not_the_baselines(digits):
    art = digits_set(digits, syn_lr=torch.tensor(0.05))
    res = evaluate_artifact(art, runs=1, device="cpu", baselines=True, epochs=0, baseline_sets="random")
    assert res["results"]["distilled"]["lr"] == pytest.approx(0.05)
    assert res["results"]["random"]["lr"] == pytest.approx(0.01)
    res = evaluate_artifact(art, runs=1, device="cpu", epochs=0, lr=0.2, model="mlp", profile="mtt")
    assert res["results"]["distilled"]["lr"] == pytest.approx(0.2) and res["model"] == "mlp"


def test_zca_artifacts_are_evaluated_in_whitened_space_or_refused(digits):
    zca = ZCA.fit(digits.to_pixels(digits.x_train))
    idx = random_real(digits.y_train, 1, generator=torch.Generator().manual_seed(0))
    white = zca.transform(digits.to_pixels(digits.x_train[idx]))
    meta = dict(method="datadam", source=digits.source_meta(), budget={"ipc": 1},
                extra={"preprocessing": zca.meta()})
    ok = ImageSet.create({"images": white, "labels": digits.y_train[idx], **zca.tensors()}, **meta)
    data = ev._real_data(ok, ImageEvalConfig(), None, torch.device("cpu"))
    torch.testing.assert_close(data.x_test, zca.transform(digits.to_pixels(digits.x_test)))
    stripped = ImageSet.create({"images": white, "labels": digits.y_train[idx]}, **meta)
    with pytest.raises(ValueError, match="ZCA"):
        evaluate_artifact(stripped, runs=1, device="cpu", epochs=0)


def test_source_checks(digits):
    art = digits_set(digits)
    art.meta["source"]["fingerprint"] = "0" * 16
    with pytest.raises(ValueError, match="not the one"):
        evaluate_artifact(art, runs=1, device="cpu", epochs=0)
    evaluate_artifact(art, runs=1, device="cpu", epochs=0, check_fingerprint=False)
    art.meta["source"] = {}
    with pytest.raises(ValueError, match="distilled from your own data"):
        evaluate_artifact(art, runs=1, device="cpu", epochs=0)
    with pytest.raises(ConfigError, match="evaluation profile"):
        evaluate_artifact(digits_set(digits), profile="nope")

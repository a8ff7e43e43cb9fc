"""MTT/AST as a method: presets, AST formulas, k-means init, fit checks, resume, the divergence guard, runner/CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch

import condense
from condense.artifacts import ImageSet, read_file, write_safetensors
from condense.checkpoint import NonFiniteLossError
from condense.cli import main
from condense.config import ConfigError
from condense.vision.data import load_images
from condense.vision.evaluate import evaluate_artifact
from condense.vision.experts import ExpertConfig, ParamLayout, generate_buffer
from condense.vision.nets import build_net
from condense.vision.presets import MTT_PRESET_NOTES, MTT_PRESETS
from condense.vision.trajectory import (
    FunctionalNet,
    TrajectoryConfig,
    TrajectoryMatching,
    WeightPerturbation,
    balance_factor,
    dataset_preset,
    intermediate_positions,
    intermediate_weights,
    representative_init,
)

MODEL = "convnet-d1-w8"
FAST = dict(model=MODEL, ipc=2, iterations=4, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0,
            checkpoint_every=2)


@pytest.fixture(scope="module")
def small():
    return load_images("digits", train_per_class=12)


@pytest.fixture(scope="module")
def buffer(small, tmp_path_factory):
    return generate_buffer(small, ExpertConfig(model=MODEL, experts=2, epochs=3, batch=32),
                           tmp_path_factory.mktemp("mtt") / "buf", seed=0, device="cpu")


def fit(data, buf, run_dir=None, seed=0, **fields):
    return TrajectoryMatching(TrajectoryConfig(**{**FAST, **fields})).fit(data, buffer=buf, device="cpu", seed=seed,
                                                                           run_dir=run_dir)


# -- presets and formulas -------------------------------------------------------------------------
def test_presets_are_valid_and_follow_the_table():
    for name in MTT_PRESETS:
        TrajectoryMatching.configure(preset=name)  # every preset is a valid config
    cfg, used = TrajectoryMatching.configure("cifar10", ipc="10")
    assert (cfg.syn_steps, cfg.expert_epochs, cfg.max_start_epoch, cfg.lr_img, cfg.lr_lr, cfg.syn_lr_init, cfg.zca) == \
        (30, 2, 20, 100.0, 1e-5, 0.001, True)
    assert used == ["mtt-cifar10-ipc10"] and cfg.inner_momentum == 0 and cfg.init == "real"
    cfg, _ = TrajectoryMatching.configure("cifar100", ipc=50)
    assert (cfg.syn_steps, cfg.batch_syn, cfg.zca) == (80, 125, True)
    assert dataset_preset("cifar10", 20) == "mtt-cifar10-ipc10"
    assert dataset_preset("cifar10-subset", 1) == "mtt-cifar10-ipc1"
    assert dataset_preset("somedata", 1) is None
    ast, used = TrajectoryMatching.configure("cifar100", preset="mtt-ast", ipc=1)
    assert used == ["mtt-cifar100-ipc1", "mtt-ast", "mtt-ast-cifar100-ipc1"]
    assert (ast.init, ast.balance_inner_loss, ast.intermediate_matching, ast.weight_perturbation,
            ast.inner_momentum) == ("kmeans", True, "sum", 1.0, 0.9)
    assert (ast.expert.optimizer, ast.expert.loss_clipping, ast.expert.grad_penalty) == ("sgd_momentum", True, 2.0)
    km_only, used = TrajectoryMatching.configure("cifar100", preset="mtt-ast", ipc=50)
    assert (km_only.init, km_only.weight_perturbation, km_only.intermediate_matching, km_only.batch_syn) == \
        ("kmeans", 0.0, "off", 700)
    assert "lr_lr" in MTT_PRESET_NOTES[used[-1]] and used[-1] == "mtt-ast-cifar100-ipc50"
    mnist, _ = TrajectoryMatching.configure("mnist", preset="mtt-ast", ipc=1, lr_img="5")
    assert mnist.lr_img == 5.0 and mnist.init == "kmeans" and not mnist.zca  # the generic switch, user wins
    with pytest.raises(ConfigError, match="unknown config key"):
        TrajectoryMatching.configure("mnist", lr_image=1)
    with pytest.raises(ConfigError, match="unknown mtt preset 'ast'"):
        TrajectoryMatching.configure("mnist", preset="ast")


def test_config_errors():
    with pytest.raises(ConfigError, match="intermediate_matching"):
        TrajectoryConfig(syn_steps=2, expert_epochs=3, intermediate_matching="sum")
    with pytest.raises(ConfigError, match="syn_lr_init"):
        TrajectoryConfig(syn_lr_init=0.0)
    with pytest.raises(ConfigError, match="truncate_backprop_steps"):
        TrajectoryConfig(truncate_backprop_steps=0)


def test_balance_factors():
    expected = {0: 1 / 1.795889, 9: 1 / 1.365212, 10: 1.292030, 19: 1.760374}
    for t, value in expected.items():
        assert balance_factor(t, 20) == pytest.approx(value, rel=1e-6)
    assert balance_factor(10, 20) == pytest.approx(math.log(8, 5))


def test_intermediate_positions_and_weights():
    assert intermediate_positions(20, 3) == [6, 12]
    assert intermediate_positions(30, 2) == [15]
    assert intermediate_weights(3, "sum") == [1.0, 1.0]
    assert intermediate_weights(4, "linear") == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="syn_steps >= expert_epochs"):
        intermediate_positions(2, 3)


def test_weight_perturbation_is_relative_on_conv_kernels_only():
    net = build_net("convnet-d2-w4", 1, 3, 8, generator=torch.Generator().manual_seed(0))
    layout = ParamLayout.of(net)
    theta = layout.flatten(net)
    perturb = WeightPerturbation(layout, 0.7, "cpu")
    new = perturb(theta, torch.Generator().manual_seed(1))
    before, after = layout.unflatten(theta), layout.unflatten(new)
    for name, shape in zip(layout.names, layout.shapes):
        if len(shape) == 4:
            w = before[name]
            nz = w != 0
            rel = ((after[name] - w)[nz] / w[nz]).norm()
            assert float(rel) == pytest.approx(0.7, rel=1e-5)
        else:
            assert torch.equal(after[name], before[name])
    assert torch.equal(new, perturb(theta, torch.Generator().manual_seed(1)))
    assert not torch.equal(new, perturb(theta, torch.Generator().manual_seed(2)))


# -- k-means (representative) initialisation ------------------------------------------------------
@pytest.mark.parametrize("clusters", [None, 10])
@pytest.mark.parametrize("ipc", [1, 3, 10, 15])
def test_kmeans_init_returns_ipc_distinct_in_class_images(small, clusters, ipc):
    data = load_images("digits", train_per_class=20)
    net = build_net(MODEL, 1, 10, 8, generator=torch.Generator().manual_seed(0))
    student = FunctionalNet(net)
    theta = student.layout.flatten(net)
    idx = representative_init(student, theta, data.x_train, data.y_train, ipc, 10,
                              torch.Generator().manual_seed(3), clusters=clusters, n_init=2)
    assert idx.numel() == 10 * ipc and idx.unique().numel() == 10 * ipc
    assert torch.equal(data.y_train[idx], torch.arange(10).repeat_interleave(ipc))
    again = representative_init(student, theta, data.x_train, data.y_train, ipc, 10,
                                torch.Generator().manual_seed(3), clusters=clusters, n_init=2)
    assert torch.equal(idx, again)


def test_kmeans_init_picks_the_image_nearest_each_separated_logit_cluster():
    # a linear "student" with identity weights: its logits are the 2-D inputs themselves
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.eye(2))
        net[1].bias.zero_()
    student = FunctionalNet(net)
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    points = [centres.repeat_interleave(20, 0) + torch.randn(60, 2, generator=g) for _ in range(2)]  # per class
    x = torch.cat(points).view(120, 1, 1, 2)
    y = torch.arange(2).repeat_interleave(60)
    idx = representative_init(student, student.layout.flatten(net), x, y, 3, 2, torch.Generator().manual_seed(1))
    for c in range(2):
        chosen = x.view(120, 2)[idx[3 * c:3 * c + 3]]
        cluster = torch.cdist(chosen, centres).argmin(1)
        assert sorted(cluster.tolist()) == [0, 1, 2]  # one image per cluster
        for j in range(3):  # ... the one nearest that cluster's mean (the converged k-means centre)
            members = points[c][20 * j:20 * j + 20]
            nearest = members[((members - members.mean(0)) ** 2).sum(1).argmin()]
            assert torch.equal(chosen[cluster == j][0], nearest)


# -- fitting --------------------------------------------------------------------------------------
def test_fit_produces_an_imageset_with_the_learned_lr(small, buffer, tmp_path):
    art = fit(small, buffer, run_dir=tmp_path / "run")
    assert art.images.shape == (20, 1, 8, 8) and torch.equal(art.labels, torch.arange(10).repeat_interleave(2))
    assert art["syn_lr"].shape == () and art.learned_lr > 0 and art.learned_lr != 0.01  # α was trained
    assert art.meta["extra"]["buffer"]["identity"] == buffer.manifest["identity"]
    assert art.meta["extra"]["preprocessing"]["space"] == "normalised"
    path = art.save(tmp_path / "mtt.safetensors")
    assert ImageSet.load(path) == ImageSet.load(path) and ImageSet.load(path).learned_lr == art.learned_lr
    assert (tmp_path / "run" / "mtt.png").is_file()
    # evaluation trains with the learned step size
    result = evaluate_artifact(path, device="cpu", runs=1, epochs=1, model=MODEL)
    assert result["results"]["distilled"]["lr"] == pytest.approx(art.learned_lr)
    assert result["profile"] == "mtt"


@pytest.mark.parametrize("fields", [
    dict(), dict(init="kmeans", kmeans_n_init=2, balance_inner_loss=True, weight_perturbation=1.0, inner_momentum=0.9,
                 expert_epochs=2, max_start_epoch=1, intermediate_matching="linear", batch_syn=7, inner_checkpoint=True),
])
def test_resumed_distillation_is_bit_identical(small, buffer, tmp_path, fields):
    whole = fit(small, buffer, run_dir=tmp_path / "whole", **fields)
    fit(small, buffer, run_dir=tmp_path / "split", **{**fields, "iterations": 2})  # "interrupted" at 2
    resumed = fit(small, buffer, run_dir=tmp_path / "split", **fields)
    assert resumed.meta["extra"]["summary"]["resumed_from"] == 2
    assert torch.equal(whole.images, resumed.images) and torch.equal(whole["syn_lr"], resumed["syn_lr"])
    other_seed = fit(small, buffer, seed=1, **fields)
    assert not torch.equal(whole.images, other_seed.images)


def test_each_ast_option_changes_the_run(small, buffer):
    base = fit(small, buffer, expert_epochs=2, max_start_epoch=1)
    for option in (dict(balance_inner_loss=True, max_start_epoch=1), dict(weight_perturbation=1.0),
                   dict(inner_momentum=0.9), dict(intermediate_matching="sum"), dict(init="kmeans", kmeans_n_init=2),
                   dict(truncate_backprop_steps=1)):
        changed = fit(small, buffer, **{"expert_epochs": 2, "max_start_epoch": 1, **option})
        assert not torch.equal(base.images, changed.images), option


def test_fit_refuses_mismatched_buffers_and_ranges(small, buffer):
    with pytest.raises(ValueError, match="convnet-d1-w8.*convnet-d2-w8"):
        fit(small, buffer, model="convnet-d2-w8")
    with pytest.raises(ValueError, match="trained without ZCA"):
        fit(small, buffer, zca=True)
    with pytest.raises(ValueError, match="T⁺ − 1 \\+ M ≤ T"):
        fit(small, buffer, max_start_epoch=3, expert_epochs=2)
    with pytest.raises(ValueError, match="ipc=13 is larger than class"):
        fit(small, buffer, ipc=13)
    with pytest.raises(ValueError, match="trained on 'digits', not on"):
        fit(load_images(_npz_like(small)), buffer)


def _npz_like(data):
    import tempfile
    from pathlib import Path

    import numpy as np

    path = Path(tempfile.mkdtemp()) / "other.npz"
    np.savez(path, x_train=data.to_pixels(data.x_train).clamp(0, 1).numpy(), y_train=data.y_train.numpy(),
             x_test=data.to_pixels(data.x_test).clamp(0, 1).numpy(), y_test=data.y_test.numpy())
    return str(path)


def _stalled_buffer(buffer, tmp_path):
    """A copy of ``buffer`` whose experts never move (every epoch equals θ_0)."""
    folder = tmp_path / "stalled"
    folder.mkdir()
    (folder / "buffer.json").write_text((buffer.folder / "buffer.json").read_text())
    for i in buffer.indices:
        tensors, meta = read_file(buffer.folder / f"expert-{i:05d}.safetensors")
        traj = tensors["trajectory"]
        write_safetensors(folder / f"expert-{i:05d}.safetensors", {"trajectory": traj[:1].expand_as(traj).clone()}, meta)
    return folder


def _reversed_buffer(buffer, tmp_path):
    """A copy of ``buffer`` whose experts run backwards (so gradient descent moves away from the targets)."""
    folder = tmp_path / "reversed"
    folder.mkdir()
    (folder / "buffer.json").write_text((buffer.folder / "buffer.json").read_text())
    for i in buffer.indices:
        tensors, meta = read_file(buffer.folder / f"expert-{i:05d}.safetensors")
        write_safetensors(folder / f"expert-{i:05d}.safetensors", {"trajectory": tensors["trajectory"].flip(0)}, meta)
    return folder


def test_zero_denominator_raises(small, buffer, tmp_path):
    with pytest.raises(ValueError, match="did not move"):
        fit(small, _stalled_buffer(buffer, tmp_path))


def test_divergence_guard_rolls_back_then_stops_naming_the_learning_rates(small, buffer, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"lr_img \(now 1e\+30\).*lr_lr") as info:
        fit(small, buffer, run_dir=tmp_path / "div", syn_lr_init=1e30, lr_img=1e30, iterations=20, max_nonfinite=2,
            max_rollbacks=1)
    assert "1 rollback" in str(info.value)
    with pytest.raises(NonFiniteLossError, match="lr_img"):
        fit(small, buffer, syn_lr_init=1e30, iterations=20, max_nonfinite=1, on_nonfinite="raise")


def test_nonpositive_step_size_raises_or_warns_but_is_never_clamped(small, buffer, tmp_path, caplog):
    backwards = _reversed_buffer(buffer, tmp_path)
    with pytest.raises(ValueError, match="syn_lr became .* lr_lr"):
        fit(small, backwards, lr_lr=10.0, iterations=3)
    art = fit(small, backwards, lr_lr=10.0, iterations=1, on_nonpositive_lr="warn")
    assert art.learned_lr < 0  # kept as learned, not clamped
    assert "syn_lr became" in caplog.text


# -- the runner, the registry and the CLI ---------------------------------------------------------
def test_runner_builds_a_buffer_when_none_is_given_and_the_cli_uses_one(tmp_path, capsys):
    art = condense.distill("mtt", "digits", train_per_class=12, device="cpu", out=tmp_path / "auto",
                           ipc=1, iterations=2, syn_steps=2, max_start_epoch=1, expert_epochs=1,
                           **{"model": MODEL, "expert.experts": 1, "expert.epochs": 2, "expert.batch": 32})
    assert (tmp_path / "auto" / "buffer" / "buffer.json").is_file()
    assert (tmp_path / "auto" / "mtt.safetensors").is_file()
    assert art.meta["config"]["expert"]["experts"] == 1
    assert art.meta["extra"]["presets"]["used"] == ["mtt-digits-ipc1"]
    assert "lr_img" in art.meta["extra"]["presets"]["notes"]["mtt-digits-ipc1"]["*"]  # where the values come from
    code = main(["distill", "mtt", "--dataset", "digits", "--train-per-class", "12", "--device", "cpu", "--quiet",
                 "--json", "--ipc", "1", "--iterations", "2", "--ast", "--buffer", str(tmp_path / "auto" / "buffer"),
                 "--set", f"model={MODEL}", "--set", "syn_steps=2", "--set", "max_start_epoch=1",
                 "--set", "expert_epochs=1", "--set", "kmeans_n_init=2", "--out", str(tmp_path / "cli")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    summary = out["summary"]
    assert "kmeans-init" in summary["ast_options"] and "inner-momentum-0.9" in summary["ast_options"]
    assert out["meta"]["config"]["expert"]["optimizer"] == "sgd"  # the buffer's experts are recorded, not the switch

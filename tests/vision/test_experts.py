"""Expert buffers: shapes, θ_0, round trips, resume and split/merge bit-identity, AST options, mismatches, CLI."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import condense.vision.experts as ex
from condense.artifacts import read_file, write_safetensors
from condense.cli import main
from condense.config import ConfigError
from condense.shard import Shard
from condense.vision.data import load_images
from condense.vision.experts import (
    ExpertBuffer,
    ExpertConfig,
    ParamLayout,
    generate_buffer,
    gradient_penalty,
    loss_scale,
    merge_buffers,
    shard_indices,
)
from condense.vision.nets import build_net

TINY = dict(model="convnet-d1-w8", experts=3, epochs=2, batch=32)


@pytest.fixture(scope="module")
def small():
    """Digits, 12 training images per class (120 images)."""
    return load_images("digits", train_per_class=12)


@pytest.fixture(scope="module")
def tiny_buffer(small, tmp_path_factory):
    folder = tmp_path_factory.mktemp("buf") / "all"
    return generate_buffer(small, ExpertConfig(**TINY), folder, seed=3, device="cpu")


def trajectories(buf: ExpertBuffer) -> torch.Tensor:
    return buf.tensor()


# -- formulas -------------------------------------------------------------------------------------
def test_loss_clipping_schedule():
    assert [loss_scale(e) for e in range(12)] == pytest.approx([0.5 + 0.05 * e for e in range(10)] + [1.0, 1.0])
    assert loss_scale(3, enabled=False) == 1.0


def test_gradient_penalty_of_a_linear_model_is_analytic():
    torch.manual_seed(0)
    c, h, w, k = 3, 4, 5, 6
    lin = nn.Linear(c * h * w, k, bias=True).double()
    model = lambda x: lin(x.flatten(1))  # noqa: E731
    x = torch.randn(7, c, h, w, dtype=torch.float64)
    gp = gradient_penalty(model, x, 2.0)
    g = lin.weight.sum(0).view(c, h, w)  # G = Wᵀ1, the same for every sample
    expected = 2.0 * (g.norm(dim=0) - 1).pow(2).mean()
    assert float(gp.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    (d_w,) = torch.autograd.grad(gp, lin.weight)  # differentiable in the weights (double backward)
    assert float(d_w.abs().sum()) > 0


def test_param_layout_round_trip_and_masks():
    net = build_net("convnet-d2-w4", 1, 3, 8, generator=torch.Generator().manual_seed(0))
    layout = ParamLayout.of(net)
    flat = layout.flatten(net)
    assert flat.shape == (layout.size,) and layout.size == sum(p.numel() for p in net.parameters())
    views = layout.unflatten(flat)
    assert all(torch.equal(views[n], p) for n, p in net.named_parameters())
    mask = layout.mask(4)
    assert int(mask.sum()) == sum(p.numel() for p in net.parameters() if p.dim() == 4)
    assert ParamLayout.from_meta(json.loads(json.dumps(layout.meta()))) == layout
    with pytest.raises(ValueError, match="flat parameter vector"):
        layout.unflatten(flat[:-1])


def test_shard_indices(monkeypatch):
    assert shard_indices(7, shard=Shard(2, 3)) == [1, 4]
    assert shard_indices(7, experts_range=(2, 5)) == [2, 3, 4]
    assert shard_indices(4) == [0, 1, 2, 3]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert shard_indices(5) == [1, 3]  # torchrun's rank picks the share
    assert shard_indices(7, experts_range=(2, 7)) == [3, 5]  # and its share of a range
    with pytest.raises(ValueError, match="under torchrun"):
        shard_indices(4, shard=Shard(1, 2))
    with pytest.raises(ValueError, match="either shard or experts_range"):
        shard_indices(4, shard=Shard(1, 2), experts_range=(0, 2))
    with pytest.raises(ValueError, match="experts_range"):
        shard_indices(4, experts_range=(3, 9))


def test_config_validation():
    with pytest.raises(ConfigError, match="epochs"):
        ExpertConfig(epochs=0)
    with pytest.raises(ConfigError, match="grad_penalty"):
        ExpertConfig(grad_penalty=-1.0)
    ast = ex.buffer_config(preset="ast").optimizer_settings()
    assert (ast.lr, ast.momentum, ast.weight_decay, ast.decay, ast.decay_default) == (0.003, 0.9, 1e-3, 0.6, True)
    mtt = ExpertConfig().optimizer_settings()
    assert (mtt.lr, mtt.momentum, mtt.weight_decay, mtt.decay_default) == (0.01, 0.0, 0.0, False)


# -- the buffer -----------------------------------------------------------------------------------
def test_buffer_shape_theta0_and_metadata(tiny_buffer, small):
    traj = trajectories(tiny_buffer)
    net = build_net("convnet-d1-w8", 1, 10, 8, generator=torch.Generator().manual_seed(ex.expert_seed(3, 1)))
    layout = ParamLayout.of(net)
    assert traj.shape == (3, 3, layout.size) and traj.dtype == torch.float32
    assert torch.equal(traj[1, 0], layout.flatten(net))  # θ_0 is the expert's initialisation
    assert not torch.equal(traj[1, 0], traj[1, 2])  # and it trained
    m = tiny_buffer.manifest
    assert m["architecture"] == "convnet-d1-w8" and m["params"]["names"] == list(layout.names)
    assert m["dataset"]["fingerprint"] == small.fingerprint and m["dataset"]["subsample"]["train_per_class"] == 12
    assert m["preprocessing"]["space"] == "normalised" and m["seed"] == 3
    assert m["optimizer"]["lr"] == 0.01 and m["augmentation"]["dsa"] == "color_crop_cutout_scale_rotate"
    # shards are safetensors with JSON metadata, readable without pickle; rows can be read alone
    tensors, meta = read_file(tiny_buffer.folder / "expert-00002.safetensors")
    assert torch.equal(tensors["trajectory"], traj[2]) and meta["identity"] == m["identity"]
    assert torch.equal(tiny_buffer.states(2, [2, 0]), traj[2][[2, 0]])
    assert torch.equal(ExpertBuffer.open(tiny_buffer.folder, preload=True).states(2, [1]), traj[2][[1]])


def test_resume_and_split_are_bit_identical(tiny_buffer, small, tmp_path):
    cfg = ExpertConfig(**TINY)
    part = tmp_path / "resumed"
    generate_buffer(small, cfg, part, seed=3, device="cpu", indices=[1])  # "interrupted" after one expert
    stamp = (part / "expert-00001.safetensors").stat().st_mtime_ns
    resumed = generate_buffer(small, cfg, part, seed=3, device="cpu")
    assert (part / "expert-00001.safetensors").stat().st_mtime_ns == stamp  # skipped, not retrained
    assert torch.equal(trajectories(resumed), trajectories(tiny_buffer))
    a, b = tmp_path / "share0", tmp_path / "share1"
    generate_buffer(small, cfg, a, seed=3, device="cpu", indices=shard_indices(3, shard=Shard(1, 2)))
    generate_buffer(small, cfg, b, seed=3, device="cpu", indices=shard_indices(3, shard=Shard(2, 2)))
    merged = merge_buffers([a, b], tmp_path / "merged")
    assert merged.indices == [0, 1, 2]
    assert torch.equal(trajectories(merged), trajectories(tiny_buffer))


def test_refuses_other_buffers_and_students(tiny_buffer, small, tmp_path):
    with pytest.raises(ValueError, match="another expert buffer"):
        generate_buffer(small, ExpertConfig(**{**TINY, "epochs": 3}), tiny_buffer.folder, seed=3, device="cpu")
    other = generate_buffer(small, ExpertConfig(**{**TINY, "experts": 1}), tmp_path / "other", seed=4, device="cpu")
    with pytest.raises(ValueError, match="another buffer"):
        merge_buffers([tiny_buffer.folder, other.folder], tmp_path / "bad")
    net = build_net("convnet-d2-w8", 1, 10, 8)
    pre = tiny_buffer.preprocessing
    with pytest.raises(ValueError, match="convnet-d1-w8.*convnet-d2-w8"):
        tiny_buffer.check_student(net.name, ParamLayout.of(net), pre)
    layout = tiny_buffer.layout
    with pytest.raises(ValueError, match="preprocessing"):
        tiny_buffer.check_student("convnet-d1-w8", layout, {"space": "zca", "fingerprint": "abc"})
    with pytest.raises(ValueError, match="preprocessing"):
        tiny_buffer.check_student("convnet-d1-w8", layout, {**pre, "mean": [0.0]})
    tiny_buffer.check_student("convnet-d1-w8", layout, pre)
    # a shard of another buffer dropped into the folder is refused on read
    tensors, meta = read_file(other.folder / "expert-00000.safetensors")
    write_safetensors(tmp_path / "mixed" / "expert-00000.safetensors", tensors, meta)
    (tmp_path / "mixed" / "buffer.json").write_text((tiny_buffer.folder / "buffer.json").read_text())
    with pytest.raises(ValueError, match="another buffer"):
        ExpertBuffer.open(tmp_path / "mixed").trajectory(0)


def test_zca_buffer_carries_its_transform(small, tmp_path):
    buf = generate_buffer(small, ExpertConfig(**{**TINY, "experts": 1, "epochs": 1, "zca": True}), tmp_path / "z",
                          seed=0, device="cpu")
    assert buf.preprocessing["space"] == "zca"
    assert buf.zca().fingerprint() == buf.preprocessing["fingerprint"]
    with pytest.raises(ValueError, match="preprocessing"):
        buf.check_student("convnet-d1-w8", buf.layout, {"space": "normalised", "mean": list(small.mean),
                                                        "std": list(small.std)})


# -- AST expert options ---------------------------------------------------------------------------
def test_ast_optimiser_decays_after_epoch_t_half_plus_one_and_resets_momentum(small, monkeypatch, recording_sgd):
    monkeypatch.setattr(ex.torch.optim, "SGD", recording_sgd)
    cfg = ex.buffer_config({"model": "convnet-d1-w4", "epochs": 5, "batch": 120, "dsa": False}, preset="ast")
    x, y = small.x_train, small.y_train
    ex.train_expert(x, y, 10, cfg, seed=0, strategy="none")
    # T = 5: epochs 0..4, decay after epoch index 5//2+1 = 3, by rebuilding the optimiser (fresh momentum)
    assert recording_sgd.built == [(0.003, 0.9, 1e-3), (pytest.approx(0.0018), 0.9, 1e-3)]
    assert recording_sgd.steps == pytest.approx([0.003] * 4 + [0.0018])


def test_loss_clipping_halves_the_first_update():
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 4
    base = dict(model="convnet-d1-w4", epochs=1, batch=16, dsa=False)
    plain, _ = ex.train_expert(x, y, 4, ExpertConfig(**base), seed=1, strategy="none")
    clipped, _ = ex.train_expert(x, y, 4, ExpertConfig(**base, loss_clipping=True), seed=1, strategy="none")
    assert torch.equal(plain[0], clipped[0])
    # float32 rounding of θ (|θ| < 1) is ~6e-8 per entry; the updates themselves are ~1e-4
    assert torch.allclose(clipped[1] - clipped[0], 0.5 * (plain[1] - plain[0]), rtol=1e-3, atol=2e-7)
    assert float((plain[1] - plain[0]).abs().max()) > 1e-4


def test_gradient_penalty_uses_the_unaugmented_batch(small, monkeypatch):
    seen = []
    original = ex.gradient_penalty

    def spy(model, xb, weight):
        seen.append(xb.detach().clone())
        return original(model, xb, weight)

    monkeypatch.setattr(ex, "gradient_penalty", spy)
    cfg = ExpertConfig(model="convnet-d1-w4", epochs=1, batch=40, grad_penalty=2.0)
    with_gp, _ = ex.train_expert(small.x_train, small.y_train, 10, cfg, seed=0, strategy="color_crop_cutout_scale_rotate")
    assert len(seen) == 3
    rows = small.x_train.flatten(1)
    for batch in seen:  # every image the penalty saw is an exact training image (no augmentation)
        assert bool((batch.flatten(1)[:, None] == rows[None]).all(-1).any(1).all())
    without, _ = ex.train_expert(small.x_train, small.y_train, 10, ExpertConfig(model="convnet-d1-w4", epochs=1,
                                 batch=40), seed=0, strategy="color_crop_cutout_scale_rotate")
    assert not torch.equal(with_gp[1], without[1])


# -- speed on the built-in digits and the CLI -----------------------------------------------------------------------
def test_two_by_two_digits_buffer_builds_in_seconds(tmp_path):
    import time

    data = load_images("digits")
    t0 = time.perf_counter()
    buf = generate_buffer(data, ExpertConfig(experts=2, epochs=2), tmp_path / "b", device="cpu")
    assert buf.tensor().shape == (2, 3, buf.layout.size) and buf.architecture == "convnet-d3"
    assert time.perf_counter() - t0 < 60


def test_cli_buffer_shares_and_merge(tmp_path, capsys):
    common = ["--dataset", "digits", "--train-per-class", "12", "--model", "convnet-d1-w4", "--experts", "3",
              "--epochs", "1", "--device", "cpu", "--quiet", "--json"]
    assert main(["buffer", *common, "--shard", "1/2", "--out", str(tmp_path / "a")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["experts_run"] == [0, 2] and first["experts_on_disk"] == [0, 2]
    assert main(["buffer", *common, "--experts-range", "1:2", "--ast", "--out", str(tmp_path / "b")]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["manifest"]["optimizer"]["profile"] == "sgd_momentum"
    assert second["manifest"]["config"]["grad_penalty"] == 2.0 and second["manifest"]["config"]["loss_clipping"]
    # the AST share belongs to another buffer: merging it with the MTT share is refused
    assert main(["buffer", "--merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 2
    assert "another buffer" in capsys.readouterr().err

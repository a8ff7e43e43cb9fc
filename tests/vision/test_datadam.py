"""DataDAM: hand-computed loss terms, invariances, Siamese DSA, layer
selection, determinism, resume, bad inputs, artifact and CLI round trips."""
from __future__ import annotations

import math

import pytest
import torch

import condense.vision.datadam as dd
from condense.artifacts import ImageSet
from condense.checkpoint import NonFiniteLossError
from condense.cli import main as cli_main
from condense.config import ConfigError
from condense.registry import distill
from condense.vision.augment import DSA
from condense.vision.data import load_images
from condense.vision.datadam import (
    Batch,
    DataDAM,
    DataDAMConfig,
    RealSampler,
    attention_map,
    datadam_loss,
    matching_loss,
    mean_matching,
    sam_maps,
)
from condense.vision.nets import Features, build_net


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", train_per_class=12, seed=0)


def small(**kw) -> DataDAMConfig:
    """A seconds-scale configuration on 8x8 digits."""
    base = dict(ipc=1, iterations=5, batch_real=6, checkpoint_every=2)
    base.update(kw)
    return DataDAMConfig(**base)


# 1. attention maps by hand --------------------------------------------------------------------------
def test_attention_map_by_hand():
    f = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]], [[-1.0, 0.0], [2.0, 1.0]]]])  # 1 image, 2 channels, 2x2
    torch.testing.assert_close(attention_map(f, 1), torch.tensor([[0.377964, 0.377964, 0.377964, 0.755929]]))
    torch.testing.assert_close(attention_map(f, 4), torch.tensor([[0.023505, 0.188040, 0.188040, 0.963706]]))
    # dead ReLUs: an all-zero map normalises to zero, never NaN (also for p = 4 in half precision)
    assert torch.equal(attention_map(torch.zeros(1, 3, 2, 2), 4), torch.zeros(1, 4))
    big = torch.full((1, 2, 2, 2), 300.0, dtype=torch.float16)  # 300^4 overflows fp16, not the fp32 maps
    torch.testing.assert_close(attention_map(big, 4), torch.full((1, 4), 0.5))


# 2. SAM term by hand ----------------------------------------------------------------------------------
def maps_as_features(rows):
    """Features whose single SAM layer has exactly the given (unit-norm) attention maps; the embedding is 0."""
    blocks = torch.tensor(rows).view(len(rows), 1, 1, -1)
    return Features((blocks, blocks), torch.zeros(len(rows), 3))


def test_sam_term_by_hand():
    cfg = DataDAMConfig()
    real = maps_as_features([[1.0, 0.0], [0.0, 1.0]])  # class mean [0.5, 0.5]
    syn = maps_as_features([[0.6, 0.8]])
    batch = Batch.of(torch.tensor([0, 0]), torch.tensor([0]), 1)
    loss, sam, mmd = datadam_loss(real, syn, batch, cfg)
    assert math.isclose(float(sam), 0.1, rel_tol=1e-6) and float(mmd) == 0.0
    assert math.isclose(float(loss), 10.0, rel_tol=1e-6)  # w_sam = 100
    # a second class adds its own term: real [0.6, 0.8] vs synthetic [1, 0] gives 0.16 + 0.64 = 0.8
    real2 = maps_as_features([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    syn2 = maps_as_features([[0.6, 0.8], [1.0, 0.0]])
    batch2 = Batch.of(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), 2)
    _, sam2, _ = datadam_loss(real2, syn2, batch2, cfg)
    assert math.isclose(float(sam2), 0.1 + 0.8, rel_tol=1e-6)


# 3. MMD weight -----------------------------------------------------------------------------------------
def test_mmd_weight_and_value():
    cfg = DataDAMConfig()
    assert cfg.w_mmd == 1.0  # exactly 100 * 0.01
    real = torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.0, 0.0]])  # class means [2, 2] and [0, 0]
    syn = torch.tensor([[2.0, 5.0], [1.0, -1.0]])  # deltas [0, -3] and [-1, 1]
    batch = Batch.of(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), 2)
    assert float(mean_matching(batch.real_avg @ real, syn, batch.syn_avg)) == pytest.approx(9.0 + 2.0)
    feats = lambda e: Features((torch.zeros(e.shape[0], 1, 1, 1),), e)  # noqa: E731 (no SAM layer)
    loss, sam, mmd = datadam_loss(feats(real), feats(syn), batch, cfg)
    assert float(sam) == 0.0 and float(mmd) == pytest.approx(11.0) and float(loss) == pytest.approx(11.0)


# 4.-6. gradients, invariances, Siamese DSA ------------------------------------------------------------
def encoder(norm="bn", size=8, k=3, seed=0):
    net = build_net(f"convnet-d3-{norm}", 1, k, size, generator=torch.Generator().manual_seed(seed))
    return net.requires_grad_(False).train()


def test_gradients_flow_only_to_the_synthetic_images():
    net = encoder()
    real = torch.randn(6, 1, 8, 8, requires_grad=True)
    syn = torch.randn(3, 1, 8, 8, requires_grad=True)
    batch = Batch.of(torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 2]), 3)
    loss, _, _ = matching_loss(net, real, syn, batch, DataDAMConfig(), DSA(), torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None for p in net.parameters())
    assert real.grad is None
    assert torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["bn", "in"])
def test_invariances(norm):
    net = encoder(norm)
    cfg = DataDAMConfig()
    g = torch.Generator().manual_seed(1)
    real, syn = torch.randn(9, 1, 8, 8, generator=g), torch.randn(6, 1, 8, 8, generator=g)
    rc, sc = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]), torch.tensor([0, 0, 1, 1, 2, 2])
    base = float(matching_loss(net, real, syn, Batch.of(rc, sc, 3), cfg)[0])
    # permuting images within each class
    pr, ps = torch.tensor([2, 0, 1, 4, 5, 3, 8, 6, 7]), torch.tensor([1, 0, 3, 2, 5, 4])
    assert float(matching_loss(net, real[pr], syn[ps], Batch.of(rc, sc, 3), cfg)[0]) == pytest.approx(base, rel=1e-5)
    # permuting the class order of the concatenation (BN statistics are those of the whole batch either way)
    pr, ps = torch.tensor([6, 7, 8, 0, 1, 2, 3, 4, 5]), torch.tensor([4, 5, 0, 1, 2, 3])
    assert float(matching_loss(net, real[pr], syn[ps], Batch.of(rc[pr], sc[ps], 3), cfg)[0]) == pytest.approx(base, rel=1e-5)


def test_siamese_dsa_per_class_in_the_loss():
    """Identical real and synthetic batches get identical per-class transforms, so the loss is 0 up to rounding (the
    real forward pools its batch statistics in float64, the synthetic one uses PyTorch's batch norm)."""
    net = encoder()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    cls = torch.tensor([0, 0, 1, 1, 2, 2])
    batch = Batch.of(cls, cls, 3)
    for seed in range(6):  # several draws, so several families per class
        loss, _, _ = matching_loss(net, x, x.clone(), batch, DataDAMConfig(), DSA(), torch.Generator().manual_seed(seed))
        assert 0.0 <= float(loss) < 1e-9
    # without the shared draw (independent per-sample augmentation of the synthetic batch) it is not
    g = torch.Generator().manual_seed(0)
    assert float(matching_loss(net, x, DSA()(x, g), batch, DataDAMConfig())[0]) > 1.0



@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_batch_statistics_are_those_of_the_whole_batch_and_per_image_sums(layout):
    """The real forward's batch norm: the whole batch's mean and biased variance (checked against float64 by hand),
    built from per-image sums that do not depend on the rest of the batch (what lets ranks share a batch)."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(19, 6, 5, 5, generator=g) * 2 + 3).contiguous(memory_format=layout)  # 19: blocks of 8, 8, 3
    bn = torch.nn.BatchNorm2d(6).train()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(6, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(6, generator=g))
    xd = x.double()
    mean, var = xd.mean((0, 2, 3), keepdim=True), xd.var((0, 2, 3), unbiased=False, keepdim=True)
    expected = (xd - mean) / (var + bn.eps).sqrt() * bn.weight.double().view(1, -1, 1, 1) + bn.bias.double().view(1, -1, 1, 1)
    with torch.no_grad(), dd.batch_statistics(bn):
        out = bn(x)
    assert (out.double() - expected).abs().max() < 1e-5
    assert "forward" not in vars(bn)  # the module's own batch norm is back afterwards
    q = xd.square().sum((2, 3))
    assert ((dd.square_sums(x).double() - q).abs() / q).max() < 1e-6
    for part in (torch.arange(0, 19, 2), torch.tensor([18, 3, 7]), torch.arange(9)):  # any subset, any order
        assert torch.equal(dd.square_sums(x[part]), dd.square_sums(x)[part])
        assert torch.equal(x[part].sum((2, 3)), x.sum((2, 3))[part])

# 7. layer selection ------------------------------------------------------------------------------------
def test_layer_selection_convnet3_at_32px():
    net = build_net("convnet-d3-bn", 3, 10, 32)
    _, feats = net(torch.randn(2, 3, 32, 32), return_features=True)
    maps = sam_maps(feats, 1.0)
    assert [m.shape[1] for m in maps] == [32 * 32, 16 * 16]
    assert feats.embedding.shape == (2, 2048)


def test_real_sampler():
    y = torch.tensor([0] * 5 + [1] * 2 + [2] * 9)[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    s = RealSampler(y, 3, batch_real=4)
    assert s.counts.tolist() == [4, 2, 4]  # min(batch_real, n_c)
    for seed in range(5):
        idx = s.draw(torch.Generator().manual_seed(seed))
        assert torch.equal(y[idx], s.classes) and len(set(idx.tolist())) == idx.numel()


# 8. determinism and smoke -------------------------------------------------------------------------------
def test_same_seed_same_images_and_loss_decreases(digits):
    a = DataDAM(small()).fit(digits, device="cpu", seed=3)
    b = DataDAM(small()).fit(digits, device="cpu", seed=3)
    c = DataDAM(small()).fit(digits, device="cpu", seed=4)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    # 50 iterations from noise lower the matching loss, measured on 8 fixed random networks without DSA
    cfg = small(iterations=50, init="noise", ipc=2, dsa=False)
    start = DataDAM(small(iterations=0, init="noise", ipc=2)).fit(digits, device="cpu", seed=0)
    end = DataDAM(cfg).fit(digits, device="cpu", seed=0)
    batch = Batch.of(digits.y_train, end.labels, 10)

    def mean_loss(images):
        return sum(float(matching_loss(encoder(k=10, seed=s), digits.x_train, images, batch, cfg)[0]) for s in range(8))

    assert mean_loss(end.images) < 0.5 * mean_loss(start.images)


# resume -------------------------------------------------------------------------------------------------
def test_resume_equals_uninterrupted(digits, tmp_path, monkeypatch):
    full = DataDAM(small(iterations=6)).fit(digits, device="cpu", seed=1)
    calls = {"n": 0}
    real_loss = dd.datadam_loss

    def crash_on_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(dd, "datadam_loss", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        DataDAM(small(iterations=6)).fit(digits, device="cpu", seed=1, run_dir=tmp_path)
    monkeypatch.setattr(dd, "datadam_loss", real_loss)
    resumed = DataDAM(small(iterations=6)).fit(digits, device="cpu", seed=1, run_dir=tmp_path)
    assert resumed.meta["extra"]["summary"]["resumed_from"] == 4
    assert torch.equal(resumed.images, full.images)
    # extending a finished run continues it exactly
    longer = DataDAM(small(iterations=8)).fit(digits, device="cpu", seed=1, run_dir=tmp_path)
    assert torch.equal(longer.images, DataDAM(small(iterations=8)).fit(digits, device="cpu", seed=1).images)
    assert (tmp_path / "datadam.png").is_file()


def test_nonfinite_loss_raises(digits, monkeypatch):
    real_loss = dd.datadam_loss

    def nan_loss(*args, **kwargs):
        loss, sam, mmd = real_loss(*args, **kwargs)
        return loss * float("nan"), sam, mmd

    monkeypatch.setattr(dd, "datadam_loss", nan_loss)
    with pytest.raises(NonFiniteLossError, match="step 0"):
        DataDAM(small(on_nonfinite="raise")).fit(digits, device="cpu")


# 9. bad inputs -------------------------------------------------------------------------------------------
def test_bad_inputs(digits):
    x, y = digits.x_train, digits.y_train
    with pytest.raises(ValueError, match=r"ipc=13 is larger than class 0, which has 12"):
        DataDAM(small(ipc=13)).fit(digits, device="cpu")
    with pytest.raises(ValueError, match="class 3 has no training images"):
        keep = y != 3
        DataDAM(small()).fit((x[keep], y[keep]), num_classes=10, device="cpu")
    with pytest.raises(ValueError, match=r"images must be a float tensor \[N, C, H, W\]"):
        DataDAM(small()).fit((x[:, 0], y), device="cpu")
    bad = x.clone()
    bad[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        DataDAM(small()).fit((bad, y), device="cpu")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        DataDAM(small()).fit((x, y + 1), num_classes=10, device="cpu")
    with pytest.raises(ValueError, match="BatchNorm"):
        DataDAM(small()).fit((x[y == 0], y[y == 0]), device="cpu")
    with pytest.raises(ValueError, match="init_images must be a tensor of shape"):
        DataDAM(small(init="tensor")).fit(digits, init_images=torch.zeros(3, 1, 8, 8), device="cpu")
    with pytest.raises(ConfigError, match="ipc"):
        DataDAMConfig(ipc=0)
    with pytest.raises(ConfigError, match="eval_profile"):
        DataDAMConfig(eval_profile="best")


# inits, presets, artifacts, CLI ----------------------------------------------------------------------------
@pytest.mark.parametrize("init", ["real", "kmeans"])
def test_real_and_kmeans_init_pick_distinct_class_images(digits, init):
    art = DataDAM(small(init=init, ipc=3, iterations=0)).fit(digits, device="cpu")
    for img, label in zip(art.images, art.labels):
        match = (digits.x_train == img).flatten(1).all(1).nonzero().flatten()
        assert match.numel() >= 1 and int(digits.y_train[match[0]]) == int(label)
    assert torch.unique(art.images.flatten(1), dim=0).shape[0] == 30
    assert torch.equal(art.labels, torch.arange(10).repeat_interleave(3))


def test_tensor_init_and_allow_repeat(digits):
    init = torch.randn(10, 1, 8, 8)
    art = DataDAM(small(init="tensor", iterations=0)).fit(digits, init_images=init, device="cpu")
    assert torch.equal(art.images, init)
    art = DataDAM(small(ipc=14, init_allow_repeat=True, iterations=0)).fit(digits, device="cpu")
    assert torch.unique(art.images.flatten(1), dim=0).shape[0] == 140  # repeats are perturbed, not duplicates


def test_presets_and_defaults():
    cfg = DataDAMConfig()
    assert (cfg.iterations, cfg.attention_power, cfg.w_sam, cfg.task_balance, cfg.batch_real, cfg.momentum_img,
            cfg.encoder, cfg.init, cfg.zca) == (20000, 1.0, 100.0, 0.01, 64, 0.5, "convnet-bn", "real", False)
    assert DataDAMConfig(ipc=50).resolved_lr_img() == 1.0 and DataDAMConfig(ipc=51).resolved_lr_img() == 10.0
    paper, used = DataDAM.configure("cifar10", preset="datadam-paper")
    assert used == ["datadam-cifar10", "datadam-paper"]
    assert (paper.attention_power, paper.encoder, paper.iterations, paper.eval_profile, paper.w_sam) == (
        4.0, "convnet", 8000, "datadam-paper", 100.0)
    assert DataDAM.configure("mnist")[0].encoder == "convnet-d3-bn"
    assert DataDAM.configure("imagenet-subset")[0].task_balance == 0.02
    assert DataDAM.configure("cifar10", lr_img="10")[0].resolved_lr_img() == 10.0


def test_artifact_round_trip_and_zca(digits, tmp_path):
    art = DataDAM(small(iterations=2)).fit(digits, device="cpu", seed=0)
    back = ImageSet.load(art.save(tmp_path / "a.safetensors"))
    assert back == art and back.images.dtype == torch.float32
    assert back.meta["method"] == "datadam" and back.meta["budget"]["ipc"] == 1
    assert back.meta["source"]["subsample"] == {"train_per_class": 12, "seed": 0}
    torch.testing.assert_close(back["mean"], torch.tensor(digits.mean, dtype=torch.float32))
    white = DataDAM(small(iterations=1, zca=True)).fit(digits, device="cpu")
    assert {"zca_mean", "zca_matrix", "zca_inverse"} <= set(white.tensors)
    assert white.meta["extra"]["preprocessing"]["space"] == "zca"


def test_registry_and_cli(tmp_path, capsys):
    art = distill("datadam", "digits", device="cpu", train_per_class=10, out=tmp_path / "py",
                  ipc=1, iterations=2, batch_real=4)
    assert (tmp_path / "py" / "datadam.safetensors").is_file() and (tmp_path / "py" / "datadam.png").is_file()
    assert art.meta["config"]["iterations"] == 2
    run = tmp_path / "cli"
    assert cli_main(["distill", "datadam", "--dataset", "digits", "--train-per-class", "10", "--ipc", "1",
                     "--iterations", "2", "--init", "kmeans", "--device", "cpu", "--set", "batch_real=4",
                     "--out", str(run), "--quiet"]) == 0
    assert cli_main(["evaluate", str(run / "datadam.safetensors"), "--runs", "1", "--device", "cpu",
                     "--set", "epochs=1", "--baselines", "--set", "baseline_sets=random", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "distilled" in out and "random" in out
    assert cli_main(["distill", "datadam", "--dataset", "digits", "--ipc", "500", "--iterations", "1",
                     "--device", "cpu", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "ipc=500" in capsys.readouterr().err

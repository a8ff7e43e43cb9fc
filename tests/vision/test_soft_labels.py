"""Soft labels (the loss, the teacher, ImageSet round trips) and DD-Ranking's LRS/ARS (by hand)."""
from __future__ import annotations

import math

import pytest
import torch

import condense
from condense.artifacts import ArtifactError, ImageSet, load
from condense.vision.data import load_images
from condense.vision.evaluate import soft_label_loss
from condense.vision.scores import augmentation_robust_score, label_robust_score, squash
from condense.vision.teacher import TeacherConfig, teacher_path, train_teacher


def test_soft_label_loss_by_hand():
    z = torch.tensor([[1.0, 2.0]])  # student logits
    t = torch.tensor([[2.0, 0.0]])  # teacher logits
    temperature = 2.0
    p = [math.exp(1.0) / (math.exp(1.0) + 1), 1 / (math.exp(1.0) + 1)]  # softmax(t / 2) = softmax([1, 0])
    q = [math.exp(0.5) / (math.exp(0.5) + math.exp(1.0)), math.exp(1.0) / (math.exp(0.5) + math.exp(1.0))]
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert float(soft_label_loss(z, t, temperature)) == pytest.approx(kl * temperature ** 2, rel=1e-6)
    # identical distributions: zero loss; batch mean over rows
    assert float(soft_label_loss(t, t, 3.0)) == pytest.approx(0.0, abs=1e-7)
    both = soft_label_loss(torch.cat([z, t]), torch.cat([t, t]), temperature)
    assert float(both) == pytest.approx(kl * temperature ** 2 / 2, rel=1e-6)


def test_soft_label_loss_gradient():
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: soft_label_loss(a, t, 1.5), (z,))
    # d/dz of T² KL(p ‖ softmax(z/T)) = T (q − p) / B
    loss = soft_label_loss(z, t, 1.5)
    (grad,) = torch.autograd.grad(loss, z)
    expected = 1.5 * (torch.softmax(z / 1.5, 1) - torch.softmax(t / 1.5, 1)) / 3
    assert torch.allclose(grad, expected.detach())


def test_lrs_and_ars_by_hand():
    # run 1: HLR = 0.9 - 0.5 = 0.4, IOR = 0.7 - 0.6 = 0.1, α = 0.5·0.1 − 0.5·0.4 = −0.15
    # run 2: HLR = 0.9 - 0.6 = 0.3, IOR = 0.8 - 0.6 = 0.2, α = 0.1 − 0.15 = −0.05
    # s(α) = (e^α − e^−1) / (e − e^−1): s(−0.15) = 0.492829 / 2.350402 = 0.209679, s(−0.05) = 0.583350 / 2.350402
    # = 0.248192
    out = label_robust_score([0.9, 0.9], [0.5, 0.6], [0.7, 0.8], [0.6, 0.6])
    assert out["hlr"]["runs"] == pytest.approx([0.4, 0.3])
    assert out["ior"]["runs"] == pytest.approx([0.1, 0.2])
    assert out["lrs"]["runs"] == pytest.approx([0.209679, 0.248192], abs=1e-6)
    assert out["lrs"]["mean"] == pytest.approx(0.2289355, abs=1e-6)
    assert out["lrs"]["std"] == pytest.approx(0.0192565, abs=1e-6)  # population std: |a − b| / 2
    # ARS: β = 0.5 (0.8 − 0.7) + 0.5 (0.6 − 0.7) = 0 -> s(0) = (1 − e^−1) / (e − e^−1) = 0.268941
    ars = augmentation_robust_score([0.8], [0.7], [0.6], [0.7])
    assert ars["ars"]["runs"] == pytest.approx([0.268941], abs=1e-6)
    assert ars["with_aug"]["runs"] == pytest.approx([0.1]) and ars["without_aug"]["runs"] == pytest.approx([-0.1])
    # the ends of the scale
    assert squash(-1.0) == pytest.approx(0.0) and squash(1.0) == pytest.approx(1.0)
    assert label_robust_score([0.5], [0.5], [0.5], [0.5], lam=1.0)["lrs"]["mean"] == pytest.approx(0.268941, abs=1e-6)


def test_scores_refuse_bad_accuracies():
    with pytest.raises(ValueError, match="fractions in \\[0, 1\\]"):
        label_robust_score([90.0], [50.0], [70.0], [60.0])  # percentages, not fractions
    with pytest.raises(ValueError, match="same number of runs"):
        label_robust_score([0.9, 0.9], [0.5], [0.7], [0.6])
    with pytest.raises(ValueError, match="lam"):
        augmentation_robust_score([0.5], [0.5], [0.5], [0.5], lam=1.5)


def _set(soft=None) -> ImageSet:
    images = torch.randn(4, 1, 8, 8)
    labels = torch.tensor([0, 0, 1, 1])
    tensors = {"images": images, "labels": labels}
    if soft is not None:
        tensors["soft_labels"] = soft
    return ImageSet.create(tensors, method="datadam", config={}, source={"name": "digits"}, budget={"ipc": 2})


def test_imageset_soft_labels_round_trip(tmp_path):
    soft = torch.randn(4, 2)
    path = _set(soft).save(tmp_path / "soft.safetensors")
    back = load(path)
    assert torch.equal(back.soft_labels, soft)
    old = load(_set().save(tmp_path / "hard.safetensors"))  # a set without soft labels still loads
    assert old.soft_labels is None
    with pytest.raises(ArtifactError, match="soft_labels must be float"):
        _set(torch.randn(3, 2))
    with pytest.raises(ArtifactError, match="NaN or inf"):
        _set(torch.full((4, 2), float("nan")))


def test_teacher_is_cached_and_evaluation_uses_soft_labels():
    data = load_images("digits", train_per_class=10)
    config = TeacherConfig(epochs=2, batch=64)
    net, meta = train_teacher(data, config)
    path = teacher_path(data, config)
    assert path.is_file() and meta["dataset"] == "digits" and 0 <= meta["test_accuracy"] <= 1
    stamp = path.stat().st_mtime_ns
    again, meta2 = train_teacher(data, config)  # loaded, not trained again
    assert path.stat().st_mtime_ns == stamp and meta2["test_accuracy"] == meta["test_accuracy"]
    x = data.x_train[:5]
    assert torch.allclose(net(x), again(x), atol=1e-5)  # the same weights (memory layouts may differ)

    art = condense.distill("datadam", data, ipc=1, iterations=1, batch_real=4, device="cpu", soft_labels=True)
    assert art.soft_labels.shape == (10, 10) and art.meta["extra"]["soft_labels"]["kind"] == "teacher logits"
    result = condense.evaluate(art, runs=2, epochs=1, baselines=True, labels="soft", scores=True, teacher_epochs=2,
                               full_epochs=1, baseline_sets=("random", "full"), device="cpu")
    runs = result["results"]
    assert runs["distilled"]["labels"] == "soft" and runs["random"]["labels"] == "soft"
    assert runs["full"]["labels"] == "hard"  # the reference keeps its hard labels
    assert {"full[hard,plain]", "distilled[hard,plain]", "distilled[soft,plain]", "random[soft,plain]"} <= set(runs)
    # the scores are the formula applied to the paired runs the result reports
    acc = {name: r["accuracy"]["runs"] for name, r in runs.items()}
    expected = label_robust_score(acc["full[hard,plain]"], acc["distilled[hard,plain]"], acc["distilled"],
                                  acc["random"])
    assert result["scores"]["lrs"]["lrs"]["runs"] == pytest.approx(expected["lrs"]["runs"])
    assert "DD-Ranking scores" in result["table"]


def test_soft_label_evaluation_options_are_checked():
    from condense.vision.evaluate import ImageEvalConfig

    with pytest.raises(ValueError, match="labels"):
        ImageEvalConfig(labels="fuzzy")
    with pytest.raises(ValueError, match="temperature"):
        ImageEvalConfig(temperature=0)

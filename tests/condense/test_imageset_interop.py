"""An ImageSet outside the library: back to pixels, real images into its space, a torch Dataset, an ImageFolder of
PNGs and a Hugging Face dataset, each checked by a round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from condense.artifacts import ImageSet
from condense.vision.zca import ZCA

G = torch.Generator().manual_seed(0)
PIX = torch.rand(6, 3, 4, 4, generator=G)  # [0, 1] pixels
LABELS = torch.tensor([0, 0, 1, 1, 2, 2])
MEAN, STD = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])


def normalised() -> ImageSet:
    return ImageSet.create({"images": (PIX - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1), "labels": LABELS,
                            "mean": MEAN, "std": STD, "syn_lr": torch.tensor(0.02)}, method="t",
                           extra={"classes": ["cat", "dog", "a b/c"]})


def whitened() -> ImageSet:
    zca = ZCA.fit(PIX)
    return ImageSet.create({"images": zca.transform(PIX), "labels": LABELS, "mean": MEAN, "std": STD,
                            **zca.tensors()}, method="t")


def given() -> ImageSet:
    return ImageSet.create({"images": PIX * 3 - 1, "labels": LABELS}, method="t",
                           extra={"preprocessing": {"space": "given"}})


def test_to_pixels_undoes_mean_std_and_zca_and_leaves_given_sets_alone():
    torch.testing.assert_close(normalised().to_pixels(), PIX)
    torch.testing.assert_close(whitened().to_pixels(), PIX, atol=1e-5, rtol=0)
    torch.testing.assert_close(given().to_pixels(), PIX * 3 - 1)


@pytest.mark.parametrize("make", [normalised, whitened, given])
def test_preprocess_is_the_inverse_of_to_pixels(make):
    art = make()
    torch.testing.assert_close(art.preprocess(art.to_pixels()), art.images, atol=1e-5, rtol=0)
    # real images go through exactly the transform the set's own images went through
    torch.testing.assert_close(art.to_pixels(art.preprocess(PIX)), PIX, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"pixels must be images \[N, 3, 4, 4\]"):
        art.preprocess(PIX[:, :1])


def test_dataset_yields_what_a_model_sees():
    art = normalised()
    ds = art.dataset()
    assert len(ds) == 6 and art.learned_lr == pytest.approx(0.02)
    image, label = ds[3]
    assert torch.equal(image, art.images[3]) and int(label) == 1


def _read_folder(folder):
    """An ImageFolder reader: class folders sorted by name give labels 0, 1, ...; images as [C, H, W] in [0, 1]."""
    from PIL import Image

    images, labels = [], []
    dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    for label, d in enumerate(dirs):
        for f in sorted(d.glob("*.png")):
            arr = np.asarray(Image.open(f), dtype=np.float32) / 255
            images.append(torch.from_numpy(arr).permute(2, 0, 1) if arr.ndim == 3 else torch.from_numpy(arr)[None])
            labels.append(label)
    return torch.stack(images), torch.tensor(labels), [d.name for d in dirs]


def test_image_folder_export_reads_back_within_quantisation(tmp_path):
    art = normalised()
    info = art.export_folder(tmp_path / "set")
    assert info["images"] == 6 and info["classes"] == 3 and info["clipped_fraction"] == 0
    images, labels, dirs = _read_folder(tmp_path / "set")
    assert dirs == ["0_cat", "1_dog", "2_a-b-c"] and torch.equal(labels, LABELS)
    assert float((images - art.to_pixels()).abs().max()) <= 0.5 / 255 + 1e-6  # 8-bit rounding only
    meta = json.loads((tmp_path / "set" / "condense.json").read_text())
    assert meta["learned_lr"] == pytest.approx(0.02) and meta["method"] == "t"
    with pytest.raises(FileExistsError, match="new folder"):
        art.export_folder(tmp_path / "set")


def test_export_reports_what_it_clips(tmp_path):
    art = given()  # values in [-1, 2]: a third or so lies outside [0, 1]
    with pytest.warns(UserWarning, match="clipped"):
        info = art.export_folder(tmp_path / "g")
    outside = float(((art.to_pixels() < 0) | (art.to_pixels() > 1)).float().mean())
    assert info["clipped_fraction"] == pytest.approx(outside) and outside > 0
    images, _, dirs = _read_folder(tmp_path / "g")
    assert dirs == ["0", "1", "2"]
    torch.testing.assert_close(images, art.to_pixels().clamp(0, 1), atol=0.5 / 255 + 1e-6, rtol=0)


def test_one_channel_images_export_as_greyscale(tmp_path):
    art = ImageSet.create({"images": PIX[:, :1], "labels": LABELS}, method="t",
                          extra={"preprocessing": {"space": "given"}})
    art.export_folder(tmp_path / "grey")
    images, _, _ = _read_folder(tmp_path / "grey")
    assert images.shape == (6, 1, 4, 4)


def test_hugging_face_export_loads_back(tmp_path):
    datasets = pytest.importorskip("datasets")
    art = normalised()
    ds = art.to_hf_dataset()
    ds.save_to_disk(str(tmp_path / "hf"))
    back = datasets.load_from_disk(str(tmp_path / "hf"))
    assert back.features["label"].names == ["cat", "dog", "a b/c"] and back["label"] == LABELS.tolist()
    pixels = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
                          for im in back["image"]])
    assert float((pixels - art.to_pixels()).abs().max()) <= 0.5 / 255 + 1e-6


def test_cli_export(tmp_path, capsys):
    from condense.cli import main

    path = normalised().save(tmp_path / "a.safetensors")
    assert main(["export", str(path), "--out", str(tmp_path / "folder"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["images"] == 6 and (tmp_path / "folder" / "1_dog").is_dir()

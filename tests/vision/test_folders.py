"""Image folders (class-per-folder, train/val, Tiny-ImageNet), the uint8 cache and streamed batches.

Every folder is written here with Pillow. Images are solid colours or gradients whose pixel values encode
their class and index, so labels and class order are checked against the pixels themselves.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import condense
from condense.vision import folders
from condense.vision.coreset import herding, kmeans
from condense.vision.data import load_images
from condense.vision.folders import ImageDecodeError, build_cache, list_folder
from condense.vision.store import ImageStore, channel_statistics


def _solid(path: Path, value: tuple[int, int, int], size=(12, 10), fmt=None) -> None:
    """A solid-colour RGB image of ``size`` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path, format=fmt)


def _colour(label: int, index: int) -> tuple[int, int, int]:
    return (40 * label + 10, 7 * index, 200 - 5 * index)


def class_tree(root: Path, names=("zebra", "ant", "moth"), per_class=5, ext="png") -> Path:
    for label, name in enumerate(sorted(names)):
        for i in range(per_class):
            _solid(root / name / f"img{i:02d}.{ext}", _colour(label, i))
    (root / "ant" / "notes.txt").write_text("not an image")
    return root


# -- layouts -------------------------------------------------------------------------------------------
def test_class_tree_labels_order_and_holdout(tmp_path):
    root = class_tree(tmp_path / "tree")
    listing = list_folder(root)
    assert listing.layout == "class-folders"
    assert listing.classes == ["ant", "moth", "zebra"]  # sorted folder names, as ImageFolder orders them
    # 5 images per class: floor(0.2 * 5) = 1 held out per class
    assert [lab for _, lab in listing.test] == [0, 1, 2]
    assert len(listing.train) == 12
    data = load_images(str(root), stream=False)
    assert data.classes == ["ant", "moth", "zebra"]
    assert data.class_counts() == [4, 4, 4] and data.class_counts("test") == [1, 1, 1]
    # the red channel of every image encodes its class: pixel = (40 * label + 10) / 255, before normalisation
    pixels = data.to_pixels(data.x_train)[:, 0, 0, 0] * 255
    assert torch.allclose(pixels, (40 * data.y_train + 10).float(), atol=1e-3)
    test_pixels = data.to_pixels(data.x_test)[:, 0, 0, 0] * 255
    assert torch.allclose(test_pixels, (40 * data.y_test + 10).float(), atol=1e-3)
    assert data.image_size == (10, 12) and data.channels == 3


def test_train_val_layout_resizes_deterministically(tmp_path):
    root = tmp_path / "imagenet"
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 2)):
        for wnid in ["n01", "n02"]:
            for i in range(count):
                arr = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)  # 40 wide, 30 high
                path = root / split / wnid / f"{wnid}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(path, format="JPEG", quality=95)
    data = load_images(str(root), image_size=16, stream=True)
    assert data.streaming and data.extra["layout"] == "train-val"
    assert data.classes == ["n01", "n02"] and data.class_counts() == [3, 3] and data.class_counts("test") == [2, 2]
    assert tuple(data.x_train.shape) == (6, 3, 16, 16)
    # by hand: shorter side 30 -> 16 (width 40 -> round(40 * 16 / 30) = 21), bicubic, centre crop from x = 2
    with Image.open(root / "train" / "n01" / "n01_0.JPEG") as img:
        ref = np.asarray(img.convert("RGB").resize((21, 16), Image.Resampling.BICUBIC).crop((2, 0, 18, 16)))
    got = np.rint(data.to_pixels(data.x_train[0:1])[0].permute(1, 2, 0).numpy() * 255)
    assert np.array_equal(got, ref.astype(np.float64))
    # the catalogue name reads the same folder with ImageNet's constants and its default size
    via_name = load_images("imagenet", data_root=tmp_path, stream=True)
    assert via_name.name == "imagenet" and via_name.mean == (0.485, 0.456, 0.406)
    assert tuple(via_name.x_train.shape[1:]) == (3, 64, 64)


def tiny_imagenet(root: Path, per_class=3) -> Path:
    base = root / "tiny-imagenet-200"
    wnids = ["n0300", "n0100", "n0200"]  # wnids.txt is not sorted; classes are
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for wnid in wnids:
        label = sorted(wnids).index(wnid)
        for i in range(per_class):
            _solid(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", _colour(label, i), size=(8, 8), fmt="JPEG")
        name = f"val_{label}.JPEG"
        _solid(base / "val" / "images" / name, _colour(label, 0), size=(8, 8), fmt="JPEG")
        lines.append(f"{name}\t{wnid}\t0\t0\t7\t7")
    (base / "val" / "val_annotations.txt").write_text("\n".join(reversed(lines)) + "\n")
    (base / "test" / "images").mkdir(parents=True)  # unlabelled: ignored
    return base


def test_tiny_imagenet_layout(tmp_path):
    tiny_imagenet(tmp_path)
    data = load_images("tiny-imagenet", data_root=tmp_path, stream=False)
    assert data.classes == ["n0100", "n0200", "n0300"]
    assert data.class_counts() == [3, 3, 3]
    assert data.y_test.tolist() == [0, 1, 2]  # val images sorted by file name; labels from val_annotations.txt
    red = data.to_pixels(data.x_test)[:, 0].mean((1, 2)) * 255
    assert torch.allclose(red, torch.tensor([10.0, 50.0, 90.0]), atol=3)  # JPEG: within a few levels
    assert data.mean == (0.485, 0.456, 0.406)


def test_missing_catalogue_folder_names_the_files(tmp_path):
    with pytest.raises(condense.data.DatasetNotFound, match="wnids.txt"):
        load_images("tiny-imagenet", data_root=tmp_path)


# -- the cache -----------------------------------------------------------------------------------------
def test_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    root = class_tree(tmp_path / "tree")
    folder, meta = build_cache(root)
    assert (folder / "train.npy").is_file() and meta["counts"] == {"train": 12, "test": 3}

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as m:
        m.setattr(folders, "_write_split", no_decoding)
        again, meta2 = build_cache(root)
    assert again == folder and meta2 == meta

    listing = list_folder(root)
    changed = listing.train[0][0]
    _solid(changed, (255, 255, 255))  # same name, new content
    _, meta3 = build_cache(root)
    assert meta3["source_fingerprint"] != meta["source_fingerprint"]
    assert meta3["fingerprint"] != meta["fingerprint"]
    data = load_images(str(root), stream=True)
    assert float(data.to_pixels(data.x_train[0:1]).min()) == pytest.approx(1.0, abs=1e-5)


def test_a_changed_size_or_channels_is_another_cache(tmp_path):
    root = class_tree(tmp_path / "tree")
    a, _ = build_cache(root)
    b, meta = build_cache(root, image_size=6)
    c, meta_grey = build_cache(root, channels=1)
    assert len({a, b, c}) == 3
    assert meta["image_shape"] == [3, 6, 6] and meta_grey["image_shape"] == [1, 10, 12]


def test_corrupt_image_is_named(tmp_path):
    root = class_tree(tmp_path / "tree")
    bad = root / "moth" / "img03.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ImageDecodeError, match="img03.png"):
        load_images(str(root))
    folder = folders.cache_folder(list_folder(root), None, None)
    assert not (folder / "meta.json").exists()  # nothing half-built is left to be reused
    assert not list(folder.glob(".*.tmp"))


def test_empty_class_and_mixed_sizes_fail_clearly(tmp_path):
    root = class_tree(tmp_path / "tree")
    (root / "wasp").mkdir()
    with pytest.raises(ValueError, match="class 'wasp' has no images"):
        load_images(str(root))
    (root / "wasp").rmdir()
    _solid(root / "zebra" / "big.png", (1, 2, 3), size=(30, 30))
    with pytest.raises(ImageDecodeError, match="image_size"):
        load_images(str(root))
    assert load_images(str(root), image_size=8).image_size == (8, 8)


def test_image_options_are_refused_for_other_datasets():
    with pytest.raises(ValueError, match="image folders"):
        load_images("digits", image_size=8)


# -- the store -----------------------------------------------------------------------------------------
def _npy(tmp_path: Path, arr: np.ndarray) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, arr)
    return path


def test_store_rows_equal_the_in_memory_conversion(tmp_path):
    from condense.vision.data import from_arrays

    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, size=(9, 3, 5, 4), dtype=np.uint8)
    y = np.arange(9) % 3
    mean, std = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)
    memory = from_arrays(u8, y, u8[:2], y[:2], mean=mean, std=std).x_train
    store = ImageStore(_npy(tmp_path, u8), mean, std)
    idx = torch.tensor([8, 0, 3, 3, -1])
    assert torch.equal(store[idx], memory[idx])  # bit for bit, repeats and negative indices included
    assert torch.equal(store[2:7:2], memory[2:7:2])
    assert torch.equal(store[4], memory[4:5])
    assert torch.equal(store.materialise(), memory)
    sub = store.subset([5, 1])
    assert torch.equal(sub[torch.tensor([1, 0])], memory[torch.tensor([1, 5])])
    assert sub.shape == torch.Size([2, 3, 5, 4]) and sub.numel() == 120 and sub.stored_bytes == 120


def test_store_bad_inputs(tmp_path):
    u8 = np.zeros((4, 1, 2, 2), dtype=np.uint8)
    store = ImageStore(_npy(tmp_path, u8), (0.5,), (0.5,))
    with pytest.raises(IndexError, match="out of range"):
        store[torch.tensor([4])]
    with pytest.raises(IndexError, match="1-D integer"):
        store[np.zeros((2, 2), dtype=np.int64)]
    with pytest.raises(ValueError, match="float32"):
        store.to("cpu", torch.float64)
    with pytest.raises(ValueError, match="2 channel values|1 channel values"):
        ImageStore(store.path, (0.5, 0.5), (0.5, 0.5))
    with pytest.raises(ValueError, match="std must be positive"):
        ImageStore(store.path, (0.5,), (0.0,))
    np.save(tmp_path / "f.npy", np.zeros((2, 1, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        ImageStore(tmp_path / "f.npy", (0.5,), (0.5,))


def test_channel_statistics_by_hand(tmp_path):
    u8 = np.zeros((2, 2, 1, 2), dtype=np.uint8)
    u8[0, 0] = [[0, 255]]
    u8[1, 0] = [[255, 255]]  # channel 0: values {0, 1, 1, 1}: mean 3/4, var 3/4 - 9/16 = 3/16
    u8[:, 1] = 51  # channel 1: constant 0.2
    mean, std = channel_statistics(_npy(tmp_path, u8), rows=1)
    assert mean == pytest.approx((0.75, 0.2))
    assert std == pytest.approx((np.sqrt(3 / 16), 0.0), abs=1e-7)


def test_coresets_on_a_store_equal_those_on_the_tensor(tmp_path):
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, size=(30, 1, 4, 4), dtype=np.uint8)
    labels = torch.arange(30) % 3
    store = ImageStore(_npy(tmp_path, u8), (0.5,), (0.25,))
    tensor = store.materialise()
    assert torch.equal(herding(store, labels, 3), herding(tensor, labels, 3))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(kmeans(store, labels, 2, generator=g1), kmeans(tensor, labels, 2, generator=g2))


# -- the methods on streamed data ------------------------------------------------------------------------
def test_datadam_streamed_equals_in_memory(tmp_path):
    root = class_tree(tmp_path / "tree", per_class=6)
    runs = {}
    for stream in (True, False):
        data = load_images(str(root), image_size=8, stream=stream)
        assert data.streaming is stream
        art = condense.distill("datadam", data, ipc=2, iterations=3, batch_real=3, device="cpu", seed=4)
        runs[stream] = art.images
        assert art.meta["source"]["image_size"] == 8 and art.meta["source"]["file"] == str(root.resolve())
    assert torch.equal(runs[True], runs[False])
    # evaluation finds the folder again from the artifact's source, with baselines drawn from the store
    result = condense.evaluate(art, runs=1, epochs=1, baselines=True, full_epochs=1, device="cpu")
    assert set(result["results"]) == {"distilled", "random", "herding", "kmeans", "full"}


def test_expert_trajectories_streamed_equal_in_memory(tmp_path):
    from condense.vision.experts import ExpertConfig, generate_buffer

    root = class_tree(tmp_path / "tree", per_class=6)
    trajectories = {}
    for stream in (True, False):
        data = load_images(str(root), image_size=8, stream=stream)
        buf = generate_buffer(data, ExpertConfig(experts=1, epochs=1, batch=4), tmp_path / f"buf{stream}", device="cpu")
        trajectories[stream] = buf.trajectory(0)
    assert torch.equal(trajectories[True], trajectories[False])


def test_zca_on_a_store_matches_in_memory(tmp_path):
    from condense.vision.zca import whiten

    root = class_tree(tmp_path / "tree", per_class=6)
    streamed, zs = whiten(load_images(str(root), image_size=4, stream=True))
    memory, zm = whiten(load_images(str(root), image_size=4, stream=False))
    assert streamed.extra["preprocessing"]["fit_images"] == 15
    assert torch.allclose(zs.matrix, zm.matrix, atol=1e-4)
    assert torch.allclose(streamed.x_train[torch.arange(15)], memory.x_train, atol=1e-4)


def test_cli_distills_a_folder(tmp_path):
    root = class_tree(tmp_path / "tree")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "condense", "distill", "datadam", "--dataset", str(root), "--image-size", "8",
           "--stream", "on", "--set", "ipc=1", "--set", "batch_real=2", "--iterations", "1", "--device", "cpu",
           "--out", str(out), "--json", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["meta"]["source"]["image_shape"] == [3, 8, 8]
    assert payload["meta"]["source"]["num_classes"] == 3


def test_worker_pool_decodes_the_same_bytes_and_names_a_corrupt_file(tmp_path, monkeypatch):
    root = class_tree(tmp_path / "tree")
    single, _ = build_cache(root, image_size=6, workers=1)
    expected = np.load(single / "train.npy")
    monkeypatch.setattr(folders, "POOL_ABOVE", 0)
    monkeypatch.setattr(folders, "DECODE_CHUNK", 4)
    pooled_root = class_tree(tmp_path / "copy")
    pooled, _ = build_cache(pooled_root, image_size=6, workers=2)
    assert np.array_equal(np.load(pooled / "train.npy"), expected)
    (pooled_root / "ant" / "img01.png").write_bytes(b"garbage")
    with pytest.raises(ImageDecodeError, match="img01.png"):
        build_cache(pooled_root, image_size=6, workers=2)


def test_class_chunks_give_the_unchunked_set(monkeypatch):
    """With an instance-norm encoder each class's loss term depends only on its own images, so running the
    forward/backward a few classes at a time changes nothing; with batch norm chunking is refused."""
    import condense.vision.datadam as datadam

    data = load_images("digits", train_per_class=12)
    calls = []
    original = datadam.chunked_loss_backward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    whole = condense.distill("datadam", data, ipc=2, iterations=3, batch_real=6, encoder="convnet", device="cpu")
    monkeypatch.setattr(datadam, "chunked_loss_backward", counting)
    chunked = condense.distill("datadam", data, ipc=2, iterations=3, batch_real=6, encoder="convnet", class_chunk=4,
                               device="cpu")
    assert len(calls) == 3  # the chunked path ran, once per iteration
    assert torch.allclose(chunked.images, whole.images, atol=1e-6)
    summary_whole, summary_chunked = whole.meta["extra"]["summary"], chunked.meta["extra"]["summary"]
    assert summary_chunked["final_loss"] == pytest.approx(summary_whole["final_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="class_chunk=4 needs an encoder without batch norm"):
        condense.distill("datadam", data, ipc=2, iterations=1, class_chunk=4, device="cpu")
    with pytest.raises(ValueError, match="class_chunk"):
        condense.distill("datadam", data, ipc=2, iterations=1, class_chunk=0, device="cpu")

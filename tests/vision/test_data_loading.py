import gzip
import pickle

import numpy as np
import pytest
import torch

from condense.data import DatasetNotFound
from condense.vision.data import from_arrays, from_datasets, load_images, read_idx


def test_mnist_from_the_read_only_root(data_root):
    d = load_images("mnist", data_root=data_root)
    assert list(d.x_train.shape) == [60000, 1, 28, 28] and list(d.x_test.shape) == [10000, 1, 28, 28]
    assert d.class_counts() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    pixels = d.to_pixels(d.x_train[:20000])
    assert float(pixels.min()) == pytest.approx(0.0, abs=1e-6) and float(pixels.max()) == pytest.approx(1.0, abs=1e-6)
    assert d.mean == (0.1307,) and d.std == (0.3081,)
    assert not any(p.name == "processed" for p in (data_root / "MNIST").iterdir())


def test_cifar10_subset_npz(data_root):
    d = load_images("cifar10-subset", data_root=data_root)
    assert list(d.x_train.shape) == [4000, 3, 32, 32] and d.classes[0] == "airplane"
    assert d.class_counts() == [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]
    assert d.class_counts("test") == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    np.testing.assert_allclose(d.to_pixels(d.x_train).mean(dim=(0, 2, 3)), [0.4916, 0.4818, 0.4447], atol=1e-4)


def test_digits_builtin_and_subsample():
    d = load_images("digits")
    assert list(d.x_train.shape) == [1437, 1, 8, 8] and list(d.x_test.shape) == [360, 1, 8, 8]
    assert torch.allclose(d.x_train.mean(), torch.tensor(0.0), atol=1e-5)
    small = load_images("digits", train_per_class=5, seed=3)
    assert small.class_counts() == [5] * 10 and small.subsample == {"train_per_class": 5, "seed": 3}
    assert small.fingerprint != d.fingerprint
    assert small.fingerprint == load_images("digits", train_per_class=5, seed=3).fingerprint
    assert torch.equal(small.x_test, d.x_test)


def _write_idx(path, arr, magic_type=0x08):
    header = bytes([0, 0, magic_type, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_idx_layout_gzipped_or_not_and_errors(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(20) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    d = load_images("fashion-mnist", data_root=tmp_path)
    assert list(d.x_train.shape) == [20, 1, 28, 28] and d.classes[9] == "Ankle boot"
    data = (raw / "train-labels-idx1-ubyte").read_bytes()
    (raw / "train-labels-idx1-ubyte").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(raw / "train-labels-idx1-ubyte")
    with pytest.raises(DatasetNotFound, match="'mnist' not found"):
        load_images("mnist", data_root=tmp_path)


def test_cifar_batches_read_with_the_restricted_unpickler(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)

    def dump(name, obj):
        with open(folder / name, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)

    for i in range(1, 6):
        dump(f"data_batch_{i}", {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                 b"labels": [0, 1, 2, i % 10], b"batch_label": b"x"})
    dump("test_batch", {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [3, 4, 5]})
    dump("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    d = load_images("cifar10", data_root=tmp_path)
    assert list(d.x_train.shape) == [20, 3, 32, 32] and d.classes[:2] == ["c0", "c1"]
    assert d.mean == (0.4914, 0.4822, 0.4465)


def test_npz_hwc_chw_and_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 5, 5, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "hwc.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3], classes=np.array(["a", "b", "c"]))
    np.savez(tmp_path / "chw.npz", x_train=x.transpose(0, 3, 1, 2), y_train=y, x_test=x[:3].transpose(0, 3, 1, 2),
             y_test=y[:3])
    a, b = load_images(tmp_path / "hwc.npz"), load_images(str(tmp_path / "chw.npz"))
    assert torch.equal(a.x_train, b.x_train) and a.classes == ["a", "b", "c"] and a.name == "hwc"
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="lacks arrays"):
        load_images(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="12 images but y_train has 11"):
        from_arrays(x, y[:11], x, y)
    with pytest.raises(ValueError, match="NaN"):
        from_arrays(np.full((2, 4, 4), np.nan, np.float32), [0, 1], np.zeros((1, 4, 4), np.float32), [0])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        from_arrays(np.full((2, 4, 4), 3.0, np.float32), [0, 1], np.zeros((1, 4, 4), np.float32), [0])
    with pytest.raises(ValueError, match="must be \\[N, H, W\\]"):
        from_arrays(np.zeros((2, 4)), [0, 1], np.zeros((1, 4)), [0])
    with pytest.raises(ValueError, match="not an image dataset"):
        load_images("cora")


def test_torch_datasets_are_accepted():
    class Toy(torch.utils.data.Dataset):
        classes = ["zero", "one"]

        def __init__(self, n):
            self.x = torch.rand(n, 1, 6, 6)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], i % 2

    d = from_datasets(Toy(8), Toy(4), name="toy")
    assert list(d.x_train.shape) == [8, 1, 6, 6] and d.classes == ["zero", "one"]
    assert d.class_counts() == [4, 4]

"""Image datasets, read from their standard raw layouts without torchvision.

Every loader returns an :class:`ImageData`: float32 tensors [N, C, H, W] normalised per channel with the
dataset's mean/std, int64 labels, the class names, the normalisation constants and a fingerprint of the
content. Sources:

* ``mnist`` / ``fashion-mnist``: raw idx files (gzipped or not) under ``ROOT/MNIST/raw`` / ``ROOT/FashionMNIST/raw``;
* ``cifar10`` / ``cifar100``: ``ROOT/cifar-10-batches-py`` / ``ROOT/cifar-100-python`` (pickles, read with the
  restricted unpickler of :mod:`condense.safepickle`);
* ``cifar10-subset``: ``ROOT/cifar10_subset/cifar10_subset_5k.npz``; any ``.npz`` path with ``x_train, y_train,
  x_test, y_test[, classes]`` (uint8 HWC or CHW, or floats in [0, 1]);
* ``digits``: scikit-learn's 1797 real 8x8 digits (built in), split 80/20 stratified with seed 0;
* ``tiny-imagenet`` (``ROOT/tiny-imagenet-200``), ``imagenet`` (``ROOT/imagenet`` with ``train/`` and ``val/``
  class folders, at :data:`FOLDER_IMAGE_SIZE` px unless ``image_size`` says otherwise) and any folder path in one
  of the layouts of :mod:`condense.vision.folders` (a class-per-folder tree, a train/val tree, Tiny-ImageNet),
  decoded once into a uint8 cache (:func:`load_folder`); large ones stream their batches from it
  (:class:`~condense.vision.store.ImageStore`);
* any ``torch.utils.data.Dataset`` yielding ``(image, label)`` through :func:`from_datasets`.

Normalisation constants are the DC/DSA/DM reference values for MNIST, Fashion-MNIST, SVHN and CIFAR-10
(the CIFAR-10 subset uses CIFAR-10's), CIFAR-100's own statistics, and ImageNet's for Tiny-ImageNet and ImageNet
(as MTT and DataDAM use them); other sources use the mean/std of their training pixels.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from condense.data import DatasetNotFound, canonical_name, info, stratified_subsample
from condense.data import data_root as resolve_data_root
from condense.safepickle import restricted_load

NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2861,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar10-subset": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tiny-imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
#: the resolution catalogue image folders are decoded at when no image_size is given (None: as stored)
FOLDER_IMAGE_SIZE: dict[str, int | None] = {"tiny-imagenet": None, "imagenet": 64}
#: ``stream=None`` streams a folder's training split from its uint8 cache when it would take more than this
#: many bytes as float32, and holds it in memory (the fast path) otherwise
STREAM_ABOVE_BYTES = 1 << 30

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class ImageData:
    """A labelled image dataset in the model's input space (per-channel normalised float32)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    fingerprint: str
    subsample: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def streaming(self) -> bool:
        """True when the images are read a batch at a time from a uint8 store rather than held in memory."""
        from condense.vision.store import ImageStore

        return isinstance(self.x_train, ImageStore)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def class_counts(self, split: str = "train") -> list[int]:
        y = self.y_train if split == "train" else self.y_test
        return torch.bincount(y, minlength=self.num_classes).tolist()

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the mean/std normalisation: back to [0, 1] pixel space."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return x * std + mean

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
        return (pixels - mean) / std

    @property
    def space(self) -> str:
        """``"normalised"`` (per-channel mean/std of [0, 1] pixels), ``"zca"`` (whitened) or ``"given"`` (a user's
        tensors, taken as they are: model space and pixel space coincide)."""
        return (self.extra.get("preprocessing") or {}).get("space") or self.extra.get("space", "normalised")

    def source_meta(self) -> dict[str, Any]:
        """What an artifact records about its source data."""
        source = {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "num_train": int(self.y_train.numel()),
            "num_test": int(self.y_test.numel()),
            "num_classes": self.num_classes,
            "image_shape": list(self.x_train.shape[1:]),
            "mean": list(self.mean),
            "std": list(self.std),
            "subsample": self.subsample,
        }
        for key in ("file", "image_size", "channels"):
            if self.extra.get(key) is not None:
                source[key] = self.extra[key]
        if self.space == "given":
            source["space"] = "given"
        return source

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, train={list(self.x_train.shape)}, test={list(self.x_test.shape)}, "
                f"classes={self.num_classes})")


# -- raw readers ----------------------------------------------------------------------------------------
def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (MNIST format), gzipped or not; checks the magic number and the declared size."""
    path = Path(path)
    with _open(path) as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{str(path)!r} is not an idx file (bad magic {data[:4].hex()})")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{str(path)!r}: unknown idx element type 0x{dtype_code:02x}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=offset)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{str(path)!r} is truncated: header declares {dims}, file holds {arr.size} elements")
    return arr.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(folder / stem)


def _load_idx_dataset(folder: Path):
    x_train = read_idx(_find(folder, "train-images-idx3-ubyte"))
    y_train = read_idx(_find(folder, "train-labels-idx1-ubyte"))
    x_test = read_idx(_find(folder, "t10k-images-idx3-ubyte"))
    y_test = read_idx(_find(folder, "t10k-labels-idx1-ubyte"))
    return x_train[:, None], y_train, x_test[:, None], y_test  # [N, 1, 28, 28] uint8


def _load_cifar(folder: Path, hundred: bool):
    def batch(name: str) -> dict:
        with open(folder / name, "rb") as fh:
            return restricted_load(fh)

    if hundred:
        train, test, meta = batch("train"), batch("test"), batch("meta")
        key = b"fine_labels"
        classes = [c.decode() for c in meta[b"fine_label_names"]]
        xs, ys = [train[b"data"]], [train[key]]
        xt, yt = test[b"data"], test[key]
    else:
        parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
        test, meta = batch("test_batch"), batch("batches.meta")
        classes = [c.decode() for c in meta[b"label_names"]]
        xs, ys = [p[b"data"] for p in parts], [p[b"labels"] for p in parts]
        xt, yt = test[b"data"], test[b"labels"]
    x_train = np.concatenate(xs).reshape(-1, 3, 32, 32)
    y_train = np.concatenate([np.asarray(y) for y in ys])
    x_test = np.asarray(xt).reshape(-1, 3, 32, 32)
    return x_train, y_train, x_test, np.asarray(yt), classes


def _to_nchw(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"{what} must be [N, H, W], [N, H, W, C] or [N, C, H, W], got shape {arr.shape}")
    chw = arr.shape[1] in (1, 3, 4)
    hwc = arr.shape[3] in (1, 3, 4)
    if hwc and not chw:
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    if chw:
        return arr
    raise ValueError(f"{what}: cannot tell channels in shape {arr.shape} (expected 1, 3 or 4 channels)")


def _pixels01(arr: np.ndarray, what: str) -> np.ndarray:
    """uint8 -> [0, 1] float32; floats must already lie in [0, 1]."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} holds NaN or inf values")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{what}: float images must lie in [0, 1], got range [{arr.min()}, {arr.max()}]")
        return arr.astype(np.float32)
    raise TypeError(f"{what} must be uint8 or float in [0, 1], got dtype {arr.dtype}")


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def from_arrays(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_test: np.ndarray | torch.Tensor,
    y_test: np.ndarray | torch.Tensor,
    *,
    name: str = "arrays",
    classes: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    train_per_class: int | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> ImageData:
    """Build an :class:`ImageData` from arrays (uint8 or [0, 1] floats; [N,H,W], NHWC or NCHW)."""
    arrays = {}
    for what, arr in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        arrays[what] = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    xtr, xte = _to_nchw(arrays["x_train"], "x_train"), _to_nchw(arrays["x_test"], "x_test")
    ytr, yte = arrays["y_train"].reshape(-1), arrays["y_test"].reshape(-1)
    if ytr.size == 0:
        raise ValueError("y_train is empty: a dataset needs training images")
    if xtr.shape[0] != ytr.shape[0]:
        raise ValueError(f"x_train has {xtr.shape[0]} images but y_train has {ytr.shape[0]} labels")
    if xte.shape[0] != yte.shape[0]:
        raise ValueError(f"x_test has {xte.shape[0]} images but y_test has {yte.shape[0]} labels")
    if xtr.shape[1:] != xte.shape[1:]:
        raise ValueError(f"train images {xtr.shape[1:]} and test images {xte.shape[1:]} differ in shape")
    for what, y in (("y_train", ytr), ("y_test", yte)):
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{what} must hold integer class labels, got dtype {y.dtype}")
        if y.size and y.min() < 0:
            raise ValueError(f"{what} holds negative labels (min {y.min()})")
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    num_classes = int(max(ytr.max(), yte.max(initial=0)) + 1)
    if classes is None:
        classes = [str(i) for i in range(num_classes)]
    classes = [str(c) for c in classes]
    if len(classes) < num_classes:
        raise ValueError(f"classes lists {len(classes)} names but labels go up to {num_classes - 1}")
    ptr, pte = _pixels01(xtr, "x_train"), _pixels01(xte, "x_test")
    if mean is None or std is None:
        # statistics of the whole training split, so a subsample does not change the input space
        mean = tuple(float(m) for m in ptr.mean(axis=(0, 2, 3), dtype=np.float64))
        std = tuple(float(s) for s in ptr.std(axis=(0, 2, 3), dtype=np.float64))
    subsample = None
    if train_per_class is not None:
        idx = stratified_subsample(ytr, train_per_class, seed)
        xtr, ytr, ptr = xtr[idx], ytr[idx], ptr[idx]
        subsample = {"train_per_class": train_per_class, "seed": seed}
    fingerprint = _fingerprint(xtr, ytr, xte, yte)
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != ptr.shape[1] or len(std) != ptr.shape[1]:
        raise ValueError(f"mean/std need {ptr.shape[1]} channel values, got {len(mean)}/{len(std)}")
    if min(std) <= 0:
        raise ValueError(f"std must be positive per channel, got {std}")
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ImageData(
        name=name,
        x_train=torch.from_numpy((ptr - m) / s),
        y_train=torch.from_numpy(ytr.astype(np.int64)),
        x_test=torch.from_numpy((pte - m) / s),
        y_test=torch.from_numpy(yte.astype(np.int64)),
        mean=mean,
        std=std,
        classes=list(classes),
        fingerprint=fingerprint,
        subsample=subsample,
        extra=dict(extra or {}),
    )


def _dataset_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"dataset item {i} must be (image, label), got {type(item).__name__}")
        img, label = item[0], item[1]
        arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        xs.append(arr)
        ys.append(int(label))
    if not xs:
        raise ValueError("dataset is empty")
    x = np.stack(xs)
    if x.ndim == 4 and isinstance(dataset[0][0], torch.Tensor):
        pass  # torch images are CHW already
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # PIL / NumPy images are HWC
    return x, np.asarray(ys, dtype=np.int64)


def _check_pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"images must be a float tensor [N, C, H, W], got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {list(getattr(x, 'shape', []))}")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype != torch.int64 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must be an int64 tensor [N={x.shape[0]}], got "
                         f"{getattr(y, 'dtype', type(y).__name__)} {list(getattr(y, 'shape', []))}")
    if x.shape[0] == 0:
        raise ValueError("images is empty: distillation needs real training images")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("images hold NaN or inf values")
    return x, y


def as_image_data(data: Any, *, num_classes: int | None = None, name: str = "tensors") -> ImageData:
    """The :class:`ImageData` a method distils, from what a user has.

    * an :class:`ImageData` is returned as it is;
    * a pair ``(images [N, C, H, W] float, labels [N] int64)`` is taken **as given**: the images are what a model
      sees, and the set distilled from them lives in the same space (no normalisation is applied or recorded);
    * a ``torch.utils.data.Dataset`` of ``(image, label)`` is read once into such a pair (tensors [C, H, W] as
      given; uint8 arrays or PIL images become [0, 1] floats).

    ``num_classes`` defaults to the largest label + 1. The result has an empty test split; evaluation then needs
    your test data (``condense.evaluate(artifact, data=...)``).
    """
    if isinstance(data, ImageData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
    elif isinstance(data, torch.utils.data.Dataset):
        if not hasattr(data, "__len__"):
            raise TypeError("an iterable-style Dataset has no length; pass a map-style Dataset or (images, labels)")
        arr, labels = _dataset_arrays(data)
        x = torch.from_numpy(arr.astype(np.float32) / 255.0) if arr.dtype == np.uint8 else torch.as_tensor(arr).float()
        y = torch.from_numpy(labels)
        name = getattr(data, "name", None) if isinstance(getattr(data, "name", None), str) else "dataset"
    else:
        raise TypeError(f"data must be an ImageData, a pair (images, labels) of tensors or a torch Dataset of "
                        f"(image, label), got {type(data).__name__}")
    x, y = _check_pair(x, y)
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes, got range [{int(y.min())}, {int(y.max())}]")
    from condense.artifacts import content_digest

    channels = x.shape[1]
    return ImageData(name=name, x_train=x, y_train=y, x_test=x.new_zeros((0, *x.shape[1:])),
                     y_test=y.new_zeros(0), mean=(0.0,) * channels, std=(1.0,) * channels,
                     classes=[str(c) for c in range(k)], fingerprint=content_digest({"x": x, "y": y})[:16],
                     extra={"space": "given"})


def from_datasets(train, test, *, name: str = "dataset", classes: Sequence[str] | None = None,
                  train_per_class: int | None = None, seed: int = 0) -> ImageData:
    """Build an :class:`ImageData` from two ``torch.utils.data.Dataset`` objects yielding ``(image, label)``.

    Images may be tensors [C, H, W] (floats in [0, 1] or uint8), NumPy arrays or PIL images.
    """
    xtr, ytr = _dataset_arrays(train)
    xte, yte = _dataset_arrays(test)
    if classes is None:
        classes = getattr(train, "classes", None)
    return from_arrays(xtr, ytr, xte, yte, name=name, classes=classes, train_per_class=train_per_class, seed=seed)


def load_images(
    dataset: str | os.PathLike = "digits",
    *,
    data_root: str | os.PathLike | None = None,
    train_per_class: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    stream: bool | None = None,
) -> ImageData:
    """Load an image dataset by catalogue name (``mnist``, ``cifar10-subset``, ``digits``, ``tiny-imagenet``, ...),
    ``.npz`` path or image-folder path.

    ``train_per_class`` keeps a seeded, stratified subsample of the training split (recorded in metadata).
    ``image_size`` and ``stream`` apply to image folders (:func:`load_folder`).
    """
    root = resolve_data_root(data_root)
    path = Path(dataset).expanduser()
    if path.is_dir():
        return load_folder(path, image_size=image_size, train_per_class=train_per_class, seed=seed, stream=stream)
    if str(dataset).endswith(".npz"):
        if not path.is_file():
            raise DatasetNotFound(str(dataset), [path.parent], [path.name])
        return _from_npz(path, name=path.stem, train_per_class=train_per_class, seed=seed)
    name = canonical_name(str(dataset))
    d = info(name)
    if d.family != "image":
        raise ValueError(f"dataset {name!r} is a {d.family} dataset, not an image dataset")
    if name in FOLDER_IMAGE_SIZE:
        mean, std = NORMALISATION[name]
        size = FOLDER_IMAGE_SIZE[name] if image_size is None else image_size
        return load_folder(d.require(root), name=name, image_size=size, train_per_class=train_per_class, seed=seed,
                           stream=stream, mean=mean, std=std)
    if image_size is not None or stream is not None:
        raise ValueError(f"image_size and stream apply to image folders, not to {name!r}")
    if name == "digits":
        return _digits(train_per_class, seed)
    folder = d.locate(root)
    if folder is None and name in ("cifar10", "cifar100"):
        folder = _extract_tarball(root, name)
    if folder is None:
        raise DatasetNotFound(name, d.searched(root), d.expected())
    mean, std = NORMALISATION[name]
    if name in ("mnist", "fashion-mnist"):
        xtr, ytr, xte, yte = _load_idx_dataset(folder)
        classes = MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
        return from_arrays(xtr, ytr, xte, yte, name=name, classes=classes, mean=mean, std=std,
                           train_per_class=train_per_class, seed=seed)
    if name in ("cifar10", "cifar100"):
        xtr, ytr, xte, yte, classes = _load_cifar(folder, hundred=name == "cifar100")
        return from_arrays(xtr, ytr, xte, yte, name=name, classes=classes, mean=mean, std=std,
                           train_per_class=train_per_class, seed=seed)
    if name == "cifar10-subset":
        return _from_npz(folder / "cifar10_subset_5k.npz", name=name, mean=mean, std=std,
                         train_per_class=train_per_class, seed=seed)
    raise ValueError(f"no image loader for {name!r}")


def _extract_tarball(root: Path, name: str) -> Path | None:
    """Use a downloaded ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` if it sits in the root."""
    tar = root / ("cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz")
    if not tar.is_file():
        return None
    from condense.data import cache_dir, is_writable_dir

    dest = root if is_writable_dir(root) else cache_dir() / "extracted"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    return info(name).locate(dest)


def _from_npz(path: Path, *, name: str, mean=None, std=None, train_per_class=None, seed=0) -> ImageData:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
        if missing:
            raise ValueError(f"{str(path)!r} lacks arrays {missing}; an image .npz needs x_train, y_train, x_test, y_test")
        classes = [str(c) for c in z["classes"]] if "classes" in z.files else None
        return from_arrays(z["x_train"], z["y_train"], z["x_test"], z["y_test"], name=name, classes=classes,
                           mean=mean, std=std, train_per_class=train_per_class, seed=seed,
                           extra={"file": str(path)})


def _digits(train_per_class: int | None, seed: int) -> ImageData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)  # 0..16 integer intensities -> [0, 1]
    y = bunch.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return from_arrays(xtr, ytr, xte, yte, name="digits", classes=[str(i) for i in range(10)],
                       train_per_class=train_per_class, seed=seed)



def load_folder(path: str | os.PathLike, *, name: str | None = None, image_size: int | None = None,
                channels: int | None = None, train_per_class: int | None = None, seed: int = 0,
                stream: bool | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> ImageData:
    """An image folder (a layout of :mod:`condense.vision.folders`) as an :class:`ImageData`.

    The folder is decoded once into its uint8 cache (reused while the source is unchanged). ``stream=True`` reads
    batches from that cache (:class:`~condense.vision.store.ImageStore`; memory follows the batch size),
    ``False`` holds both splits in memory as float32, and ``None`` streams when the training split would take
    more than :data:`STREAM_ABOVE_BYTES` in float32. Both give identical batches. ``mean``/``std`` default to the
    training pixels' statistics, computed in one streaming pass when the cache is built.
    """
    from condense.vision.folders import build_cache
    from condense.vision.store import ImageStore

    if stream not in (None, True, False):
        raise ValueError(f"stream must be True, False or None (automatic), got {stream!r}")
    cache, meta = build_cache(path, image_size=image_size, channels=channels)
    if std is None and min(meta["std"]) <= 0:
        raise ValueError(f"channel {int(np.argmin(meta['std']))} of the training pixels of {meta['source']!r} is "
                         "constant (std 0), so it cannot be normalised; pass std=... (and mean=...) or channels=1")
    mean = tuple(float(m) for m in (meta["mean"] if mean is None else mean))
    std = tuple(float(s) for s in (meta["std"] if std is None else std))
    y_train = torch.from_numpy(np.load(cache / "train_labels.npy"))
    y_test = torch.from_numpy(np.load(cache / "test_labels.npy"))
    x_train = ImageStore(cache / "train.npy", mean, std)
    x_test = ImageStore(cache / "test.npy", mean, std)
    fingerprint, subsample = meta["fingerprint"], None
    if train_per_class is not None:
        idx = stratified_subsample(y_train.numpy(), train_per_class, seed)
        x_train, y_train = x_train.subset(idx), y_train[idx]
        subsample = {"train_per_class": train_per_class, "seed": seed}
        fingerprint = hashlib.sha256(f"{fingerprint}:{_fingerprint(idx)}".encode()).hexdigest()[:16]
    if stream is None:
        stream = x_train.numel() * x_train.element_size() > STREAM_ABOVE_BYTES
    if not stream:
        x_train, x_test = x_train.materialise(), x_test.materialise()
    extra = {"file": meta["source"], "image_size": image_size, "channels": meta["image_shape"][0],
             "layout": meta["layout"], "cache": str(cache)}
    return ImageData(name=name or Path(meta["source"]).name, x_train=x_train, y_train=y_train, x_test=x_test,
                     y_test=y_test, mean=mean, std=std, classes=list(meta["classes"]), fingerprint=fingerprint,
                     subsample=subsample, extra=extra)

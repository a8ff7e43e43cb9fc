"""Image folders — a class-per-folder tree, Tiny-ImageNet, ImageNet — decoded once into a uint8 cache.

**Layouts** (detected from the folder's contents, in this order):

* **Tiny-ImageNet**: ``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` and
  ``val/val_annotations.txt`` (one line per validation image: file name, wnid, bounding box). The validation
  split is the test split (Tiny-ImageNet's ``test/`` has no labels and is ignored).
* **train/val tree** (the ImageNet layout, and any ImageFolder with its own test split):
  ``train/<class>/<image>`` and ``val/<class>/<image>`` (or ``test/<class>/<image>``). ImageNet's ``val/``
  must be sorted into class folders, as torchvision's and timm's loaders expect.
* **class-per-folder tree** (torchvision's ImageFolder): ``<class>/<image>``. Every image is labelled by its
  folder; a stratified :data:`HOLDOUT_FRACTION` of each class (seed :data:`HOLDOUT_SEED`) is held out as the
  test split, so evaluation has real images the set never saw.

Classes are the class-folder names sorted (ImageFolder's order; Tiny-ImageNet's wnids sorted likewise), and
images within a class are taken in sorted file-name order. Files with the extensions of :data:`EXTENSIONS`
count as images; other files are ignored. A class folder with no image is an error, as is a file Pillow
cannot decode (the error names it).

**Decoding and resizing** (deterministic; Pillow): each image is converted to RGB (``channels=3``) or to 8-bit
grey (``channels=1``; by default 1 when the first training image is grey, else 3). With ``image_size=S`` the
shorter side is resized to S with Pillow's bicubic filter (antialiased when shrinking) and the centre S×S
is cropped (the left/top offset is ``(side − S) // 2``). Without ``image_size`` no image is resized, and every
image must have the first one's size.

**The cache** lives under ``<cache>/images/<name>-<key>/`` (``<cache>`` as in :func:`condense.data.cache_dir`;
the key hashes the folder's absolute path, the layout, the size and the channels): ``train.npy`` and
``test.npy`` (uint8 ``[N, C, S, S]``, memory-mappable), ``train_labels.npy`` and ``test_labels.npy`` (int64),
and ``meta.json`` (classes, counts, the source listing's fingerprint, a content fingerprint of the decoded
arrays, and the per-channel mean/std of the training pixels from one streaming pass). ``meta.json`` is written
last, so a cache without it is incomplete and is rebuilt. A rerun whose source listing (every image's relative
path, size and modification time, and the annotation files) matches reuses the cache; any change rebuilds it.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from condense.artifacts import atomic_target, write_atomic
from condense.data import cache_dir

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
#: share of each class held out as the test split of a plain class-per-folder tree
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0
#: images decoded per task of the worker pool
DECODE_CHUNK = 512
#: below this many images decoding stays in the calling process (a pool's start-up would cost more)
POOL_ABOVE = 2048
#: bump when the decoding or the cache layout changes, so old caches are rebuilt
CACHE_VERSION = 1
LAYOUTS = ("tiny-imagenet", "train-val", "class-folders")


class ImageDecodeError(ValueError):
    """An image file Pillow cannot read; the message names the file."""


@dataclass
class FolderListing:
    """What a folder holds: its layout, classes, and (file, label) lists of both splits."""

    root: Path
    layout: str
    classes: list[str]
    train: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    annotation_files: list[Path]

    def fingerprint(self) -> str:
        """Hash of every image's relative path, size and modification time, and the annotation files' bytes."""
        h = hashlib.sha256(f"{self.layout}\n".encode())
        for split, items in (("train", self.train), ("test", self.test)):
            for path, label in items:
                st = path.stat()
                h.update(f"{split}\t{path.relative_to(self.root)}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        for path in self.annotation_files:
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _class_tree(folder: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, (file, label) pairs) of a class-per-folder tree; every class must hold an image."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if classes is None else list(classes)
    if not names:
        raise ValueError(f"{str(folder)!r} holds no class folders (expected <class>/<image> files)")
    items = []
    for label, name in enumerate(names):
        sub = folder / name
        files = _images_in(sub) if sub.is_dir() else []
        if not files:
            raise ValueError(f"class {name!r} has no images in {str(sub)!r} (extensions: {', '.join(EXTENSIONS)})")
        items.extend((f, label) for f in files)
    return names, items


def _holdout(items: list[tuple[Path, int]], num_classes: int) -> tuple[list, list]:
    """Stratified split of a plain class tree: ⌊fraction·n_c⌋ images of class c (at least one when n_c ≥ 2) go
    to the test split, drawn with a fixed seed."""
    rng = np.random.default_rng(HOLDOUT_SEED)
    labels = np.asarray([label for _, label in items])
    test_mask = np.zeros(len(items), dtype=bool)
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        take = int(HOLDOUT_FRACTION * idx.size)
        if idx.size >= 2:
            take = max(take, 1)
        test_mask[rng.choice(idx, size=take, replace=False)] = True
    train = [it for it, t in zip(items, test_mask) if not t]
    test = [it for it, t in zip(items, test_mask) if t]
    return train, test


def detect_layout(root: Path) -> str:
    """``tiny-imagenet``, ``train-val`` or ``class-folders`` (see the module docstring)."""
    if (root / "wnids.txt").is_file() and (root / "val" / "val_annotations.txt").is_file():
        return "tiny-imagenet"
    if (root / "train").is_dir() and ((root / "val").is_dir() or (root / "test").is_dir()):
        return "train-val"
    return "class-folders"


def list_folder(root: str | os.PathLike) -> FolderListing:
    """Read a folder's layout, classes and labelled files (nothing is decoded)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    layout = detect_layout(root)
    if layout == "tiny-imagenet":
        wnids = sorted(w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip())
        index = {w: i for i, w in enumerate(wnids)}
        train = []
        for label, wnid in enumerate(wnids):
            sub = root / "train" / wnid / "images"
            files = _images_in(sub) if sub.is_dir() else []
            if not files:
                raise ValueError(f"class {wnid!r} has no images in {str(sub)!r}")
            train.extend((f, label) for f in files)
        test = []
        annotations = root / "val" / "val_annotations.txt"
        for n, line in enumerate(annotations.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise ValueError(f"{str(annotations)!r} line {n}: expected '<file>\\t<wnid>\\t...' with a wnid of "
                                 f"wnids.txt, got {line!r}")
            path = root / "val" / "images" / parts[0]
            if not path.is_file():
                raise FileNotFoundError(f"{str(annotations)!r} line {n} names {str(path)!r}, which does not exist")
            test.append((path, index[parts[1]]))
        test.sort(key=lambda item: item[0].name)
        return FolderListing(root, layout, wnids, train, test, [root / "wnids.txt", annotations])
    if layout == "train-val":
        classes, train = _class_tree(root / "train")
        test_dir = root / "val" if (root / "val").is_dir() else root / "test"
        extra = sorted(p.name for p in test_dir.iterdir() if p.is_dir() and p.name not in classes)
        if extra:
            raise ValueError(f"{str(test_dir)!r} has class folders that train/ lacks: {extra[:5]}")
        present = [c for c in classes if (test_dir / c).is_dir()]
        test = []
        for c in present:
            test.extend((f, classes.index(c)) for f in _images_in(test_dir / c))
        return FolderListing(root, layout, classes, train, test, [])
    classes, items = _class_tree(root)
    train, test = _holdout(items, len(classes))
    return FolderListing(root, layout, classes, train, test, [])


# -- decoding ------------------------------------------------------------------------------------------
def decode_image(path: str | os.PathLike, image_size: int | None, channels: int) -> np.ndarray:
    """One image as uint8 ``[C, S, S]`` by the rule of the module docstring."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if image_size is not None:
                w, h = img.size
                scale = image_size / min(w, h)
                size = (max(image_size, round(w * scale)), max(image_size, round(h * scale)))
                if size != (w, h):
                    img = img.resize(size, Image.Resampling.BICUBIC)
                left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
                img = img.crop((left, top, left + image_size, top + image_size))
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode image {str(path)!r}: {exc}") from None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _decode_chunk(paths: Sequence[str], image_size: int | None, channels: int,
                  shape: tuple[int, int]) -> np.ndarray:
    out = np.empty((len(paths), channels, *shape), dtype=np.uint8)
    for i, path in enumerate(paths):
        arr = decode_image(path, image_size, channels)
        if arr.shape[1:] != shape:
            raise ImageDecodeError(f"image {path!r} is {arr.shape[2]}x{arr.shape[1]} but the first image is "
                                   f"{shape[1]}x{shape[0]}; pass image_size (--image-size) to resize them all")
        out[i] = arr
    return out


def _first_image(listing: FolderListing, image_size: int | None, channels: int | None) -> tuple[int, tuple[int, int]]:
    from PIL import Image

    first = listing.train[0][0]
    if channels is None:
        try:
            with Image.open(first) as img:
                channels = 1 if img.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
        except OSError as exc:
            raise ImageDecodeError(f"cannot decode image {str(first)!r}: {exc}") from None
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    arr = decode_image(first, image_size, channels)
    return channels, tuple(arr.shape[1:])


def _write_split(items: list[tuple[Path, int]], dest: Path, image_size: int | None, channels: int,
                 shape: tuple[int, int], bar, workers: int) -> None:
    """Decode ``items`` into a uint8 ``.npy`` at ``dest``: the header, then each decoded chunk appended in order
    (so memory holds a chunk per worker, never the split), written atomically (:func:`condense.artifacts.atomic_target`)."""
    paths = [str(p) for p, _ in items]
    chunks = [paths[s:s + DECODE_CHUNK] for s in range(0, len(paths), DECODE_CHUNK)]
    decode = partial(_decode_chunk, image_size=image_size, channels=channels, shape=shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (len(items), channels, *shape)}
    with atomic_target(dest) as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        if workers > 1:
            import multiprocessing

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                blocks = pool.map(decode, chunks)  # in submission order
                for block in blocks:
                    fh.write(block.tobytes())
                    bar.update(block.shape[0])
        else:
            for chunk in chunks:
                fh.write(decode(chunk).tobytes())
                bar.update(len(chunk))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def _content_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("train.npy", "train_labels.npy", "test.npy", "test_labels.npy"):
        with open(folder / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()[:16]


def cache_folder(listing: FolderListing, image_size: int | None, channels: int | None) -> Path:
    key = hashlib.sha256(json.dumps([CACHE_VERSION, str(listing.root), listing.layout, image_size, channels])
                         .encode()).hexdigest()[:12]
    return cache_dir() / "images" / f"{listing.root.name}-{key}"


def build_cache(root: str | os.PathLike, *, image_size: int | None = None, channels: int | None = None,
                workers: int | None = None) -> tuple[Path, dict]:
    """Decode the folder ``root`` into its cache (or reuse a cache whose source is unchanged).

    Returns ``(cache folder, meta)``; ``meta`` holds ``classes``, ``layout``, ``image_shape``, ``counts``,
    ``source_fingerprint``, ``fingerprint`` (of the decoded arrays), ``mean``/``std`` (training pixels) and
    ``decode_s`` (seconds the decoding took when it was built)."""
    from condense.progress import Progress
    from condense.vision.store import channel_statistics

    if image_size is not None and (not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}")
    listing = list_folder(root)
    folder = cache_folder(listing, image_size, channels)
    source = listing.fingerprint()
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("source_fingerprint") == source and meta.get("version") == CACHE_VERSION:
            return folder, meta
        meta_path.unlink()  # the source changed: the cache is rebuilt
    folder.mkdir(parents=True, exist_ok=True)
    resolved_channels, shape = _first_image(listing, image_size, channels)
    total = len(listing.train) + len(listing.test)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    workers = workers if total > POOL_ABOVE else 1
    start = time.perf_counter()
    with Progress(total=total, desc=f"decoding {listing.root.name}", unit="img") as bar:
        for split, items in (("train", listing.train), ("test", listing.test)):
            _write_split(items, folder / f"{split}.npy", image_size, resolved_channels, shape, bar, workers)
            _save_npy(folder / f"{split}_labels.npy", np.asarray([label for _, label in items], dtype=np.int64))
    decode_s = time.perf_counter() - start
    mean, std = channel_statistics(folder / "train.npy")
    meta = {
        "version": CACHE_VERSION,
        "source": str(listing.root),
        "layout": listing.layout,
        "classes": listing.classes,
        "image_shape": [resolved_channels, *shape],
        "image_size": image_size,
        "counts": {"train": len(listing.train), "test": len(listing.test)},
        "source_fingerprint": source,
        "fingerprint": _content_fingerprint(folder),
        "mean": list(mean),
        "std": list(std),
        "decode_s": round(decode_s, 2),
    }
    write_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return folder, meta

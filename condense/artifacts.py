"""Artifacts: what a distillation produces, as one ``.safetensors`` file you can trust.

An artifact is a flat ``{name: tensor}`` dictionary plus one JSON metadata block, stored together in a
single safetensors file (the JSON sits in the safetensors header under the key ``"condense"``)::

    {"kind": "ImageSet", "schema_version": 1, "method": "datadam", "config": {...},
     "source": {"name": "mnist", "fingerprint": "...", ...}, "budget": {...}, "seed": 0,
     "library_version": "0.1.0", "device": "cuda:0", "created": "2026-11-28T03:20:00+00:00",
     "content_sha256": "...", "extra": {...}}

Guarantees:

* ``save`` writes to a temporary file in the target folder, flushes it to disk and renames it over the
  target, so a crash or Ctrl-C mid-write never leaves a half-written artifact behind;
* ``load`` never unpickles anything: a ``.pt``/``.pkl`` file (or any file that starts like a pickle or a
  ``torch.save`` zip) is refused with a clear error, as are truncated files, files whose tensor bytes no
  longer match the recorded SHA-256, artifacts of another kind and artifacts written by a newer schema;
* tensors are stored on the CPU, so an artifact made on a GPU loads on a machine without one;
* metadata is normalised through JSON when the artifact is built, so the in-memory object and the
  loaded one compare equal, bit for bit.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

import torch

SCHEMA_VERSION = 1
METADATA_KEY = "condense"
SUFFIX = ".safetensors"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


class ArtifactError(ValueError):
    """An artifact file cannot be used: wrong kind, newer schema, corrupted, truncated or a pickle."""


def _library_version() -> str:
    from condense import __version__

    return __version__


def _jsonable(value: Any) -> Any:
    """Round-trip ``value`` through JSON, so what is kept in memory equals what a load returns."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except TypeError as exc:
        raise TypeError(f"artifact metadata must be JSON-serialisable: {exc}") from None


def content_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and raw bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(repr(tuple(t.shape)).encode())
        # view as bytes: works for every dtype, bfloat16 included
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Artifact:
    """Base class: ``tensors`` (name -> CPU tensor) and ``meta`` (JSON metadata).

    Subclasses set :attr:`kind` and :attr:`required_tensors`; methods fill in the tensors. Build one with
    :meth:`create`, which fills the standard metadata fields.
    """

    kind: ClassVar[str] = "Artifact"
    required_tensors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]):
        if not isinstance(tensors, Mapping):
            raise TypeError(f"tensors must be a mapping of name -> torch.Tensor, got {type(tensors).__name__}")
        clean: dict[str, torch.Tensor] = {}
        for name, t in tensors.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"tensor names must be non-empty strings, got {name!r}")
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"tensor {name!r} must be a torch.Tensor, got {type(t).__name__}")
            # a private, contiguous CPU copy: safetensors refuses shared storage, and the artifact must not
            # change when the caller keeps optimising the tensor it passed in
            clean[name] = t.detach().to("cpu", copy=True).contiguous()
        missing = [n for n in self.required_tensors if n not in clean]
        if missing:
            raise ValueError(f"{self.kind} needs tensors {list(self.required_tensors)}; missing {missing}")
        self.tensors = clean
        meta = dict(_jsonable(dict(meta)))
        meta["kind"] = self.kind
        meta.setdefault("schema_version", SCHEMA_VERSION)
        self.meta = meta
        self.validate()

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        tensors: Mapping[str, torch.Tensor],
        *,
        method: str,
        config: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        budget: Mapping[str, Any] | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        """Build an artifact with the standard metadata block (version, creation time, ...)."""
        meta = {
            "kind": cls.kind,
            "schema_version": SCHEMA_VERSION,
            "method": method,
            "config": dict(config or {}),
            "source": dict(source or {}),
            "budget": dict(budget or {}),
            "seed": seed,
            "library_version": _library_version(),
            "device": None if device is None else str(device),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "extra": dict(extra or {}),
        }
        return cls(tensors, meta)

    def validate(self) -> None:
        """Check the tensors' shapes and dtypes; subclasses extend this."""

    # -- accessors ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{self.kind} has no tensor {name!r}; it has {sorted(self.tensors)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data (what the artifact stores, without the JSON header)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in sorted(self.tensors.items()))
        return f"{self.kind}(method={self.meta.get('method')!r}, {shapes})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.meta == other.meta
            and self.tensors.keys() == other.tensors.keys()
            and all(
                self.tensors[k].dtype == other.tensors[k].dtype
                and self.tensors[k].shape == other.tensors[k].shape
                and torch.equal(self.tensors[k], other.tensors[k])
                for k in self.tensors
            )
        )

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the artifact atomically to ``path`` (which must end in ``.safetensors``)."""
        path = Path(path)
        if path.suffix != SUFFIX:
            raise ValueError(f"path must end in {SUFFIX!r}, got {str(path)!r}")
        meta = dict(self.meta)
        meta["content_sha256"] = content_digest(self.tensors)
        return write_safetensors(path, self.tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Load an artifact; on a subclass, also check that the file holds that kind."""
        tensors, meta = read_file(path)
        kind = meta.get("kind")
        target = _KINDS.get(kind)
        if target is None:
            raise ArtifactError(f"{str(path)!r} holds an unknown artifact kind {kind!r}; known: {sorted(_KINDS)}")
        if cls is not Artifact and target is not cls:
            raise ArtifactError(f"{str(path)!r} holds a {kind}, not a {cls.kind}")
        meta.pop("content_sha256", None)
        obj = target.__new__(target)
        obj.tensors = tensors
        obj.meta = meta
        obj.validate()
        return obj


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success fsync it and rename it over ``path``.

    An interrupted or failed write leaves the previous file (or nothing) in place, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_target`)."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """Atomically write ``tensors`` with ``meta`` (JSON under the header key ``"condense"``) to ``path``."""
    from safetensors.torch import save_file

    header = {METADATA_KEY: json.dumps(dict(meta), sort_keys=True, allow_nan=True)}
    with atomic_target(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=header)
    return Path(path)


def _refuse_pickles(path: Path) -> None:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ArtifactError(
            f"{str(path)!r} looks like a pickle/torch.save file; condense artifacts are {SUFFIX} files "
            "and are never unpickled"
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        raise ArtifactError(f"{str(path)!r} is a pickle stream; condense never unpickles files")
    if head == b"PK\x03\x04":
        raise ArtifactError(f"{str(path)!r} is a zip archive (torch.save format); condense never unpickles files")


def read_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a condense safetensors file: ``(tensors, metadata)``. Never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no artifact at {str(path)!r}")
    _refuse_pickles(path)
    size = path.stat().st_size
    if size < 8:
        raise ArtifactError(f"{str(path)!r} is truncated ({size} bytes): not a safetensors file")
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len > size - 8:
                raise ArtifactError(
                    f"{str(path)!r} is truncated or corrupted: header says {header_len} bytes, "
                    f"file has {size - 8} after the length field"
                )
            header = json.loads(fh.read(header_len))
        tensors = load_file(str(path))
    except ArtifactError:
        raise
    except (SafetensorError, ValueError, UnicodeDecodeError, OSError) as exc:
        raise ArtifactError(f"{str(path)!r} is truncated or corrupted: {exc}") from None
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise ArtifactError(f"{str(path)!r} is a safetensors file but not a condense artifact (no metadata)")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ArtifactError(f"{str(path)!r} has corrupted metadata: {exc}") from None
    version = meta.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{str(path)!r} has no valid schema_version")
    if version > SCHEMA_VERSION:
        raise ArtifactError(
            f"{str(path)!r} was written with artifact schema {version}; this condense reads up to "
            f"{SCHEMA_VERSION}: upgrade condense-kit"
        )
    expected = meta.get("content_sha256")
    if expected is not None and content_digest(tensors) != expected:
        raise ArtifactError(f"{str(path)!r} is corrupted: tensor bytes do not match the recorded SHA-256")
    return tensors, meta


def load(path: str | os.PathLike) -> Artifact:
    """Load any condense artifact (its kind is read from the file)."""
    return Artifact.load(path)


# -- the three kinds ------------------------------------------------------------------------------
class ImageSet(Artifact):
    """A synthetic image set: ``images`` [N, C, H, W] float32 in the model's input space, ``labels`` [N].

    Optional tensors: ``soft_labels`` [N, K] (a teacher's logits, for soft-label evaluation), ``mean``/``std`` [C]
    (the dataset's per-channel normalisation of [0, 1] pixels),
    ``zca_mean`` [D], ``zca_matrix`` [D, D] and ``zca_inverse`` [D, D] (a ZCA transform fitted on [0, 1] pixels;
    when present, the model space is the whitened one and mean/std only describe the dataset), and ``syn_lr`` (a
    learned evaluation learning rate, MTT). A set distilled from a user's own tensors carries neither: it lives in
    the space of those tensors (``meta["extra"]["preprocessing"]["space"] == "given"``).

    Using a set outside the library: :meth:`to_pixels` (back to [0, 1] pixels), :meth:`preprocess` (your own real
    images into the set's space, as a model trained on the set expects them), :meth:`dataset` (a
    ``torch.utils.data.Dataset`` of what a model should see), :meth:`export_folder` (an ImageFolder of PNGs) and
    :meth:`to_hf_dataset` (a Hugging Face ``datasets.Dataset``).
    """

    kind = "ImageSet"
    required_tensors = ("images", "labels")

    def validate(self) -> None:
        x, y = self.tensors["images"], self.tensors["labels"]
        if x.dim() != 4 or not x.is_floating_point():
            raise ArtifactError(f"ImageSet images must be a float [N, C, H, W] tensor, got {x.dtype} {list(x.shape)}")
        if y.dim() != 1 or y.shape[0] != x.shape[0] or y.dtype != torch.int64:
            raise ArtifactError(f"ImageSet labels must be int64 [N={x.shape[0]}], got {y.dtype} {list(y.shape)}")
        soft = self.tensors.get("soft_labels")
        if soft is not None:
            k = int(y.max()) + 1 if y.numel() else 0
            if soft.dim() != 2 or soft.shape[0] != x.shape[0] or soft.shape[1] < k or not soft.is_floating_point():
                raise ArtifactError(f"ImageSet soft_labels must be float [N={x.shape[0]}, K>={k}] logits, got "
                                    f"{soft.dtype} {list(soft.shape)}")
            if not bool(torch.isfinite(soft).all()):
                raise ArtifactError("ImageSet soft_labels hold NaN or inf values")

    @property
    def images(self) -> torch.Tensor:
        return self.tensors["images"]

    @property
    def labels(self) -> torch.Tensor:
        return self.tensors["labels"]

    @property
    def soft_labels(self) -> torch.Tensor | None:
        """A teacher's logits [N, K] for the images, when the set carries them (``meta["extra"]["soft_labels"]``
        says how they were made); train with a temperature-scaled KL divergence to them."""
        return self.tensors.get("soft_labels")

    @property
    def learned_lr(self) -> float | None:
        """The learning rate the set was distilled to be trained with (MTT's learned step size), or None: train
        on :meth:`dataset` with SGD at this rate, as the method's evaluation does."""
        t = self.tensors.get("syn_lr")
        return None if t is None else float(t)

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        names = (self.meta.get("extra") or {}).get("classes")
        k = int(self.labels.max()) + 1 if self.labels.numel() else 0
        return [str(c) for c in names] if names else [str(c) for c in range(k)]

    def _zca(self):
        from condense.vision.zca import ZCA  # the transform's maths lives with the image toolkit

        return ZCA.from_tensors(self.tensors, tuple(self.images.shape[1:]))

    def _mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if "mean" not in self.tensors or "std" not in self.tensors:
            return None
        shape = (1, -1, 1, 1)
        return self.tensors["mean"].to(x).view(shape), self.tensors["std"].to(x).view(shape)

    def to_pixels(self, images: torch.Tensor | None = None) -> torch.Tensor:
        """``images`` (default: the set's own) mapped from the set's space to [0, 1] pixels: the ZCA inverse,
        else ``x·std + mean``, else unchanged (a set made from given tensors). Values are not clipped."""
        x = (self.images if images is None else images).float()
        zca = self._zca()
        if zca is not None:
            return zca.to(x.device).inverse(x)
        norm = self._mean_std(x)
        return x if norm is None else x * norm[1] + norm[0]

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """Real images in [0, 1] pixel space ([N, C, H, W]) mapped into the set's space, exactly as the set's own
        training data was: what a model trained on the set must be fed at test time."""
        if not isinstance(pixels, torch.Tensor) or pixels.dim() != 4 or tuple(pixels.shape[1:]) != tuple(
                self.images.shape[1:]):
            raise ValueError(f"pixels must be images [N, {', '.join(map(str, self.images.shape[1:]))}] in [0, 1], "
                             f"got {getattr(pixels, 'shape', type(pixels).__name__)}")
        x = pixels.float()
        zca = self._zca()
        if zca is not None:
            return zca.to(x.device).transform(x)
        norm = self._mean_std(x)
        return x if norm is None else (x - norm[0]) / norm[1]

    def dataset(self) -> "torch.utils.data.TensorDataset":
        """A ``TensorDataset`` of ``(image, label)`` in the set's space (what a model trained on it sees; feed real
        test images through :meth:`preprocess`). Train with SGD at :attr:`learned_lr` when the set has one."""
        from torch.utils.data import TensorDataset

        return TensorDataset(self.images.float(), self.labels)

    def _pixels_uint8(self) -> tuple[torch.Tensor, float]:
        """8-bit pixels [N, H, W, C] and the fraction of values that lay outside [0, 1] (clipped for export)."""
        if self.images.shape[1] not in (1, 3):
            raise ValueError(f"only 1- or 3-channel images can be exported as pictures, got {self.images.shape[1]}")
        p = self.to_pixels()
        outside = float(((p < 0) | (p > 1)).float().mean()) if p.numel() else 0.0
        return (p.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous(), outside

    def export_folder(self, folder: str | os.PathLike) -> dict[str, Any]:
        """Write the set as an ImageFolder: ``folder/<label>_<class>/<index>.png`` (8-bit, [0, 1] pixels via
        :meth:`to_pixels`), plus ``folder/condense.json`` (source, method, classes, learned lr).

        Class folders are numbered with zero-padded labels, so any ImageFolder reader that sorts them recovers the
        labels. Values outside [0, 1] cannot be stored in a PNG: they are clipped, and the fraction is returned
        and recorded. The folder is written to a temporary sibling and renamed, so it never exists half-written;
        an existing ``folder`` is an error."""
        from PIL import Image

        folder = Path(folder)
        if folder.exists():
            raise FileExistsError(f"{str(folder)!r} exists; export into a new folder")
        pixels, outside = self._pixels_uint8()
        if outside:
            import warnings

            warnings.warn(f"{outside:.2%} of the pixel values lie outside [0, 1] and are clipped in the PNGs",
                          stacklevel=2)
        names = self.classes
        width = len(str(max(len(names) - 1, 0)))
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            labels = self.labels.tolist()
            dirs = {c: f"{c:0{width}d}" + ("" if names[c] == str(c) else "_" + _safe(names[c]))
                    for c in sorted(set(labels))}
            for d in dirs.values():
                (tmp / d).mkdir()
            arr = pixels.numpy()
            for i, c in enumerate(labels):
                img = arr[i, :, :, 0] if arr.shape[3] == 1 else arr[i]
                Image.fromarray(img).save(tmp / dirs[c] / f"{i:05d}.png")  # 2-D: mode L, H x W x 3: RGB
            info = {"folder": str(folder), "images": len(labels), "classes": len(dirs),
                    "class_folders": [dirs[c] for c in sorted(dirs)], "clipped_fraction": outside,
                    "method": self.meta.get("method"), "source": self.meta.get("source"),
                    "learned_lr": self.learned_lr}
            (tmp / "condense.json").write_text(json.dumps(info, indent=1))
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return info

    def to_hf_dataset(self):
        """The set as a Hugging Face ``datasets.Dataset`` with an ``image`` (8-bit, [0, 1] pixels, clipped as in
        :meth:`export_folder`) and a ``label`` (``ClassLabel`` with the class names) column; save it with
        ``.save_to_disk(path)``. Needs the ``hf`` extra (``pip install 'condense-kit[hf]'``)."""
        try:
            import datasets
        except ImportError as exc:
            raise ImportError("to_hf_dataset needs the Hugging Face datasets package: "
                              "pip install 'condense-kit[hf]'") from exc
        from PIL import Image

        pixels, _ = self._pixels_uint8()
        arr = pixels.numpy()
        images = [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in arr]
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=self.classes)})
        return datasets.Dataset.from_dict({"image": images, "label": self.labels.tolist()}, features=features)


def _safe(name: str) -> str:
    """A class name usable as a folder name."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "class"


class TreeSet(Artifact):
    """A Mirage distilled set: computation trees (as label/parent/edge arrays) and per-class itemsets.

    Trees are concatenated with ``tree_ptr``; itemsets list tree ids through ``itemset_ptr``/``itemset_tree``
    with their ``itemset_class`` and ``itemset_support`` (see the Mirage method for the full layout).
    """

    kind = "TreeSet"
    required_tensors = (
        "tree_ptr",
        "node_code",
        "parent",
        "edge_code",
        "itemset_ptr",
        "itemset_tree",
        "itemset_class",
        "itemset_support",
    )

    def validate(self) -> None:
        t = self.tensors
        for name in self.required_tensors:
            if t[name].dim() != 1 or t[name].dtype != torch.int64:
                raise ArtifactError(f"TreeSet {name} must be a 1-D int64 tensor, got {t[name].dtype} {list(t[name].shape)}")
        tree_ptr, itemset_ptr = t["tree_ptr"], t["itemset_ptr"]
        n, T, I = t["node_code"].numel(), tree_ptr.numel() - 1, itemset_ptr.numel() - 1
        if T < 0 or int(tree_ptr[0]) != 0 or int(tree_ptr[-1]) != n or bool((tree_ptr.diff() < 1).any()):
            raise ArtifactError(f"TreeSet tree_ptr must start at 0, grow by >= 1 per tree and end at len(node_code)={n}")
        if t["parent"].numel() != n or t["edge_code"].numel() != n - T:
            raise ArtifactError(f"TreeSet needs parent[{n}] and edge_code[{n - T}] for {n} nodes in {T} trees")
        if I < 0 or int(itemset_ptr[0]) != 0 or int(itemset_ptr[-1]) != t["itemset_tree"].numel() \
                or bool((itemset_ptr.diff() < 0).any()):
            raise ArtifactError("TreeSet itemset_ptr must start at 0, not decrease and end at len(itemset_tree)")
        if t["itemset_class"].numel() != I or t["itemset_support"].numel() != I:
            raise ArtifactError(f"TreeSet needs itemset_class[{I}] and itemset_support[{I}]")
        items = t["itemset_tree"]
        if items.numel() and (int(items.min()) < 0 or int(items.max()) >= T):
            raise ArtifactError(f"TreeSet itemset_tree must index the {T} stored trees")

    def to_data_list(self) -> list:
        """The training view as PyG ``Data`` objects, one per itemset: the disjoint union of its trees (edges child
        -> parent), ``x`` from the codebooks (scaled like real graphs), ``edge_attr`` where edges are coded,
        ``y`` = the class, ``weight`` = the support, ``root_mask`` (the readout pools the roots only) and ``deg``
        when degrees are coded. A PyG model trains on them with :func:`condense.graph.nets.root_readout` as its
        readout; real graphs go through :func:`condense.graph.mirage.real_graphs` into the same feature space."""
        from condense.graph.mirage import to_data_list  # the tree layout's maths lives with the graph toolkit

        return to_data_list(self)


class Student(Artifact):
    """A distilled MLP student: weights under ``model.<param>`` plus its config and feature normalisation.

    The MLP is ``model.layers.<i>.weight`` [out, in] and ``model.layers.<i>.bias`` [out] for i = 0..L-1:
    :math:`h_{i+1} = \\mathrm{ReLU}(h_i W_i^\\top + b_i)` for i < L-1 and logits :math:`h_{L-1} W_{L-1}^\\top +
    b_{L-1}` (dropout is a training-time operation and does not appear). ``meta["extra"]["feature_norm"]`` says
    how raw features are normalised first: ``"none"`` or ``"row"`` (each row divided by its sum; zero rows stay 0).
    """

    kind = "Student"
    _FEATURE_NORMS = ("none", "row")

    def validate(self) -> None:
        layers = self._layer_tensors()
        for i, (w, b) in enumerate(layers):
            if w.dim() != 2 or not w.is_floating_point() or b.shape != (w.shape[0],):
                raise ArtifactError(f"Student layer {i}: weight must be float [out, in] and bias [out], got "
                                    f"{list(w.shape)} and {list(b.shape)}")
            if i and w.shape[1] != layers[i - 1][0].shape[0]:
                raise ArtifactError(f"Student layer {i} takes {w.shape[1]} inputs but layer {i - 1} gives "
                                    f"{layers[i - 1][0].shape[0]}")
        norm = self.feature_norm
        if norm not in self._FEATURE_NORMS:
            raise ArtifactError(f"Student feature_norm must be one of {self._FEATURE_NORMS}, got {norm!r}")

    def _layer_tensors(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        count = sum(1 for k in self.tensors if k.startswith("model.layers.") and k.endswith(".weight"))
        if count == 0:
            raise ArtifactError(f"a Student needs MLP tensors model.layers.<i>.weight/bias; it has {sorted(self.tensors)}")
        try:
            return [(self.tensors[f"model.layers.{i}.weight"], self.tensors[f"model.layers.{i}.bias"])
                    for i in range(count)]
        except KeyError as exc:
            raise ArtifactError(f"Student MLP layers must be numbered 0..{count - 1} with a weight and a bias "
                                f"each; missing {exc.args[0]}") from None

    @property
    def feature_norm(self) -> str:
        return (self.meta.get("extra") or {}).get("feature_norm", "none")

    @property
    def in_features(self) -> int:
        return int(self._layer_tensors()[0][0].shape[1])

    @property
    def num_classes(self) -> int:
        return int(self._layer_tensors()[-1][0].shape[0])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [N, K] for raw node features ``x`` [N, F] (normalised as stored); no graph is needed."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise TypeError(f"x must be a [N, F] tensor of node features, got "
                            f"{type(x).__name__ if not isinstance(x, torch.Tensor) else list(x.shape)}")
        layers = self._layer_tensors()
        if x.shape[1] != layers[0][0].shape[1]:
            raise ValueError(f"x has {x.shape[1]} features per node; this student expects {layers[0][0].shape[1]}")
        dtype = layers[0][0].dtype
        h = x.to(dtype)
        if self.feature_norm == "row":
            h = row_normalise(h)
        with torch.no_grad():
            for i, (w, b) in enumerate(layers):
                h = torch.addmm(b.to(h.device), h, w.to(h.device).t())
                if i < len(layers) - 1:
                    h = torch.relu(h)
        return h

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class ids [N] for raw node features ``x`` [N, F] (argmax of :meth:`logits`)."""
        return self.logits(x).argmax(dim=1)

    def to_module(self) -> torch.nn.Sequential:
        """The student as a plain ``torch.nn.Sequential`` (feature normalisation, then Linear/ReLU layers) holding
        copies of the weights: fine-tune it, script it or export it (``torch.onnx.export``) like any module. Its
        output equals :meth:`logits` on raw features."""
        layers: list[torch.nn.Module] = [RowNormalise()] if self.feature_norm == "row" else []
        pairs = self._layer_tensors()
        for i, (w, b) in enumerate(pairs):
            linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
            with torch.no_grad():
                linear.weight.copy_(w)
                linear.bias.copy_(b)
            layers.append(linear)
            if i < len(pairs) - 1:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)


def row_normalise(x: torch.Tensor) -> torch.Tensor:
    """Each row of ``x`` [N, F] divided by its sum; rows summing to 0 stay 0 (the ``row`` feature normalisation of a
    Student, as DGL's citation loaders normalise features)."""
    s = x.sum(dim=1, keepdim=True)
    return torch.where(s > 0, x / s.clamp_min(torch.finfo(x.dtype).tiny), x)


class RowNormalise(torch.nn.Module):
    """:func:`row_normalise` as a module (the first layer of :meth:`Student.to_module` for ``row`` students)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return row_normalise(x)


_KINDS: dict[str, type[Artifact]] = {c.kind: c for c in (ImageSet, TreeSet, Student)}

"""Images kept as uint8 on disk and read a batch at a time: memory follows the batch, not the dataset.

An :class:`ImageStore` stands where an :class:`~condense.vision.data.ImageData` holds a float32 tensor
``[N, C, H, W]``. It holds a uint8 ``.npy`` file (``[N, C, H, W]``, written once by the image-folder cache of
:mod:`condense.vision.folders`) and the constants of the model's input space, and indexing it returns the rows
asked for, converted on the fly:

    x[idx] = (u8[idx] / 255 − mean_c) / std_c          (normalised space)
    x[idx] = W (u8[idx] / 255 − μ)                     (ZCA space, after :meth:`ImageStore.with_zca`)

The conversion runs in NumPy float32 in exactly the order the in-memory loaders use
(:func:`condense.vision.data.from_arrays`), so a batch drawn from a store equals, bit for bit, the same rows of
the in-memory tensor: a seed gives the same run on either path.

The file is mapped for each read and unmapped after it, so pages of the dataset never pile up in the process's
resident memory: a distillation touching every image of a 100,000-image set still holds one batch. The store
answers the parts of the tensor interface that the methods use (``shape``, ``dim()``, ``numel()``, ``device``,
``dtype``, ``to(device)``, integer/slice/index-tensor ``[...]``), so DataDAM, MTT, the coresets and evaluation
take it unchanged.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

#: rows converted per chunk by whole-store passes (statistics, materialising, ZCA transforms)
CHUNK_ROWS = 4096
#: rows per chunk of the statistics pass (its int64 working copy is 8 bytes per pixel)
STATS_ROWS = 512


@dataclass(frozen=True)
class ImageStore:
    """uint8 images ``[N, C, H, W]`` in a ``.npy`` file, read as float32 model-space batches (module docstring).

    ``rows`` (optional) selects and orders the file's rows this store shows (a subsample); ``device`` is where
    batches are delivered; ``zca`` (a :class:`~condense.vision.zca.ZCA`) whitens them instead of normalising.
    """

    path: Path
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rows: np.ndarray | None = None
    device: torch.device = torch.device("cpu")
    zca: Any = None
    file_shape: tuple[int, ...] = field(init=False, repr=False)
    data_offset: int = field(init=False, repr=False)  # where the pixels start in the file (after the .npy header)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.rows is not None:
            object.__setattr__(self, "rows", np.asarray(self.rows, dtype=np.int64).reshape(-1))
        header = _header(self.path)
        if header[1] != np.uint8 or len(header[0]) != 4:
            raise ValueError(f"{str(self.path)!r} must hold uint8 images [N, C, H, W], got {header[1]} {list(header[0])}")
        object.__setattr__(self, "file_shape", header[0])
        object.__setattr__(self, "data_offset", header[2])
        channels = header[0][1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean/std need {channels} channel values, got {len(self.mean)}/{len(self.std)}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive per channel, got {self.std}")
        if self.rows is not None and self.rows.size and (self.rows.min() < 0 or self.rows.max() >= header[0][0]):
            raise ValueError(f"rows index outside the file's {header[0][0]} images")

    # -- the tensor interface the methods use --------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        n, *rest = self.file_shape
        return torch.Size([n if self.rows is None else int(self.rows.size), *rest])

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def dim(self) -> int:
        return 4

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self) -> int:
        return int(self.shape[0])

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def element_size(self) -> int:
        """Bytes per element of the float32 batches (what the set would take in memory)."""
        return 4

    @property
    def stored_bytes(self) -> int:
        """Bytes the shown rows take in the uint8 file."""
        return int(np.prod(self.shape))

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "ImageStore":
        """The same store delivering batches on ``device`` (float32 only)."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        if dtype is not None and dtype != torch.float32:
            raise ValueError(f"an ImageStore delivers float32 batches, got dtype={dtype}")
        return self if device is None else replace(self, device=torch.device(device))

    def __getitem__(self, key) -> torch.Tensor:
        rows = self._file_rows(key)
        return torch.from_numpy(self._convert(self._read(rows))).to(self.device)

    # -- views ------------------------------------------------------------------------------------------
    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> "ImageStore":
        """A store showing rows ``index`` of this one (in that order), still on disk."""
        return replace(self, rows=self._file_rows(index))

    def with_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> "ImageStore":
        return replace(self, mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))

    def with_zca(self, zca) -> "ImageStore":
        """Batches whitened by ``zca`` (fitted on [0, 1] pixels) instead of mean/std normalised."""
        return replace(self, zca=zca.to("cpu"))

    # -- whole-store passes, a chunk at a time ----------------------------------------------------------
    def pixels(self, key) -> torch.Tensor:
        """Rows ``key`` as [0, 1] float32 pixels (on the store's device)."""
        return torch.from_numpy(_unit(self._read(self._file_rows(key)))).to(self.device)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, batch)`` over the whole store in order, ``rows`` images at a time."""
        for start in range(0, len(self), rows):
            yield start, self[start:start + rows]

    def materialise(self) -> torch.Tensor:
        """The whole store as one float32 tensor (the in-memory fast path for sets that fit)."""
        out = torch.empty(tuple(self.shape), dtype=torch.float32)
        for start, batch in self.to("cpu").chunks():
            out[start:start + batch.shape[0]] = batch
        return out.to(self.device)

    # -- internals --------------------------------------------------------------------------------------
    def _file_rows(self, key) -> np.ndarray:
        n = len(self)
        if isinstance(key, torch.Tensor):
            key = key.detach().cpu().numpy()
        if isinstance(key, (int, np.integer)):
            if not -n <= int(key) < n:
                raise IndexError(f"index {int(key)} is out of range for a store of {n} images")
            key = np.asarray([int(key) % n])
        if isinstance(key, slice):
            key = np.arange(n)[key]
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(f"a boolean index must have shape [{n}], got {list(key.shape)}")
            key = np.flatnonzero(key)
        if key.ndim != 1 or not np.issubdtype(key.dtype, np.integer):
            raise IndexError(f"an ImageStore takes an int, a slice or a 1-D integer index, got {key.dtype} {list(key.shape)}")
        if key.size and (key.min() < -n or key.max() >= n):
            raise IndexError(f"index out of range for a store of {n} images")
        key = key % n if key.size else key.astype(np.int64)
        return key if self.rows is None else self.rows[key]

    def _read(self, rows: np.ndarray) -> np.ndarray:
        return _read_rows(self.path, rows, self.file_shape, self.data_offset)

    def _convert(self, u8: np.ndarray) -> np.ndarray:
        m = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        # in place, one float32 buffer: the same operations in the same order as (u8 / 255 - m) / s
        normalised = _unit(u8)
        normalised -= m
        normalised /= s
        if self.zca is None:
            return normalised
        # back to pixels as ImageData.to_pixels does, then whitened: the in-memory path's order of operations
        pixels = torch.from_numpy(normalised) * torch.from_numpy(s) + torch.from_numpy(m)
        return self.zca.transform(pixels).numpy()


def _unit(u8: np.ndarray) -> np.ndarray:
    """uint8 -> [0, 1] float32, the conversion every loader uses (one new buffer, divided in place)."""
    out = u8.astype(np.float32)
    out /= np.float32(255.0)
    return out


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, offset of the data)`` of a ``.npy`` file."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran:
            raise ValueError(f"{str(path)!r} is stored in Fortran order; an image store needs C order")
        return tuple(int(s) for s in shape), np.dtype(dtype), fh.tell()


def _read_rows(path: Path, rows: np.ndarray, shape: tuple[int, ...], offset: int) -> np.ndarray:
    """Rows ``rows`` of the uint8 ``.npy`` file of ``shape`` whose pixels start at ``offset`` (:func:`_header`), in
    the order asked for, gathered straight into the output through a mapping that is closed before returning (so
    the pages read do not stay in the process's resident set)."""
    out = np.empty((rows.size, *shape[1:]), dtype=np.uint8)
    if rows.size == 0:
        return out
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        images = np.frombuffer(mapped, dtype=np.uint8, count=int(np.prod(shape)), offset=offset).reshape(shape)
        np.take(images, rows, axis=0, out=out)
        del images  # the mapping can only close once no array views it
    return out


def channel_statistics(path: str | os.PathLike, rows: int = STATS_ROWS) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (population) of the [0, 1] pixels of a uint8 ``[N, C, H, W]`` file, in one
    streaming pass with exact integer sums: Σx and Σx² per channel, std = √(Σx²/n − (Σx/n)²)."""
    path = Path(path)
    shape, _, offset = _header(path)
    n, c, h, w = shape
    total = np.zeros(c, dtype=np.float64)
    squares = np.zeros(c, dtype=np.float64)
    for start in range(0, n, rows):
        v = _read_rows(path, np.arange(start, min(start + rows, n)), shape, offset).astype(np.int64)
        total += v.sum(axis=(0, 2, 3))
        squares += (v * v).sum(axis=(0, 2, 3))
    count = float(n * h * w) * 255.0 ** 2
    mean = total / (n * h * w) / 255.0
    var = squares / count - mean ** 2
    return tuple(float(m) for m in mean), tuple(float(s) for s in np.sqrt(np.maximum(var, 0.0)))

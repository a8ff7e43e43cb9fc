"""Where data is looked up, and the catalogue of datasets condense knows by name.

**The data-root rule** (the same for every command and loader)::

    explicit argument (--data-root)  >  $CONDENSE_DATA  >  the user cache folder

The cache folder is ``$CONDENSE_CACHE`` if set, else ``$XDG_CACHE_HOME/condense``, else ``~/.cache/condense``.
Loaders read the raw layouts torchvision and PyTorch Geometric use; where a dataset is missing,
:class:`DatasetNotFound` names the dataset, the folders searched and the files expected.

This module imports neither torch nor the method packages, so ``condense datasets`` answers fast.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable


class DatasetNotFound(FileNotFoundError):
    """A dataset's files are not under the data root. The message says where it looked and for what."""

    def __init__(self, dataset: str, searched: Iterable[Path | str], expected: Iterable[str], hint: str = ""):
        self.dataset = dataset
        self.searched = [str(p) for p in searched]
        self.expected = list(expected)
        lines = [f"dataset {dataset!r} not found."]
        lines.append("  searched: " + ", ".join(self.searched))
        lines.append("  expected files: " + ", ".join(self.expected))
        lines.append("  set --data-root or $CONDENSE_DATA to the folder that holds them" + (f"; {hint}" if hint else ""))
        super().__init__("\n".join(lines))


def cache_dir() -> Path:
    """The user cache folder (writable copies of read-only datasets, downloads)."""
    if os.environ.get("CONDENSE_CACHE"):
        return Path(os.environ["CONDENSE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "condense"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: ``explicit`` > ``$CONDENSE_DATA`` > :func:`cache_dir` ``/ "data"``."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get("CONDENSE_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"


def is_writable_dir(path: Path) -> bool:
    """True if we may create files in ``path``.

    Beyond ``os.access`` (which says yes to root everywhere) this honours the folder's mode bits: a folder
    marked read-only (no write bit for its owner), like the shared data folder, is treated as read-only even
    for root, so the library never writes next to files it was asked only to read.
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not (st.st_mode & stat.S_IWUSR):
        return False
    return os.access(path, os.W_OK)


# -- the catalogue -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """A dataset known by name: which family loads it, where its files may sit under the root, and which."""

    name: str
    family: str  # "image", "graph-classification", "node-classification"
    description: str
    folders: tuple[str, ...]  # candidate folders relative to the root (first match wins)
    files: tuple[tuple[str, ...], ...]  # each required file as alternatives (gzipped or not); "name/" is a folder
    builtin: bool = False  # needs no files (ships with a dependency)
    loader: str = ""  # "module:function" that loads it

    def locate(self, root: Path) -> Path | None:
        """The folder under ``root`` that holds every required file, or None."""
        if self.builtin:
            return root
        for rel in self.folders:
            folder = root / rel
            if folder.is_dir() and all(any(_present(folder / alt, alt.endswith("/")) for alt in alts)
                                       for alts in self.files):
                return folder
        return None

    def searched(self, root: Path) -> list[Path]:
        return [root / rel for rel in self.folders]

    def expected(self) -> list[str]:
        return [" or ".join(alts) for alts in self.files]

    def layout(self) -> str:
        """Where its files go under the data root, in one line (``built in`` for built-in datasets)."""
        if self.builtin:
            return "built in"
        return f"{' or '.join(f + '/' for f in self.folders)} with {', '.join(self.expected())}"

    def require(self, root: Path, hint: str = "") -> Path:
        found = self.locate(root)
        if found is None:
            raise DatasetNotFound(self.name, self.searched(root), self.expected(), hint)
        return found


def _present(path: Path, folder: bool) -> bool:
    return path.is_dir() if folder else path.is_file()


def _idx(prefix: str) -> tuple[tuple[str, ...], ...]:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple((f"{n}", f"{n}.gz") for n in names)


def _tu(name: str, extra: tuple[str, ...] = ("node_labels",)) -> DatasetInfo:
    files = tuple((f"{name}_{suffix}.txt",) for suffix in ("A", "graph_indicator", "graph_labels") + extra)
    return DatasetInfo(
        name=name,
        family="graph-classification",
        description=f"TU dataset {name} (Morris et al. 2020)",
        folders=(f"tu/{name}/raw", f"TUDataset/{name}/raw", f"{name}/raw"),
        files=files,
        loader="condense.graph.data:load_tu",
    )


def _planetoid(name: str) -> DatasetInfo:
    key = name.lower()
    files = tuple((f"ind.{key}.{s}",) for s in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"))
    return DatasetInfo(
        name=key,
        family="node-classification",
        description=f"{name} citation graph, Planetoid public split (Yang et al. 2016)",
        folders=(f"planetoid/{name}/raw", f"Planetoid/{name}/raw", f"{name}/raw"),
        files=files,
        loader="condense.graph.data:load_planetoid",
    )


def _pyg_npz(name: str, folder: str, file: str, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        family="node-classification",
        description=description,
        folders=(f"{folder}/raw", f"{folder.split('/')[-1]}/raw"),
        files=((file,),),
        loader="condense.graph.data:load_npz_graph",
    )


#: the OGB release the catalogue's OGB folders hold (the ``RELEASE_v<n>.txt`` marker OGB writes into each)
OGB_RELEASE = 1


def _ogb(name: str, family: str, raw: tuple[str, ...], split: str, description: str) -> DatasetInfo:
    """An OGB dataset in the folder its zip file unpacks to (``ogbg_molhiv/``: ``raw/*.csv.gz``,
    ``split/<split>/{train,valid,test}.csv.gz``, ``RELEASE_v1.txt``), under ``ogb/`` or the root itself."""
    folder = name.replace("-", "_")
    files = ((f"RELEASE_v{OGB_RELEASE}.txt",),) + tuple((f"raw/{f}.csv.gz",) for f in raw) + tuple(
        (f"split/{split}/{part}.csv.gz",) for part in ("train", "valid", "test"))
    loader = "condense.graph.ogb:load_ogbg" if family == "graph-classification" else "condense.graph.ogb:load_ogbn"
    return DatasetInfo(name=name, family=family, description=f"{description}; needs the ogb extra",
                       folders=(f"ogb/{folder}", folder), files=files, loader=loader)


_OGB_MOLECULE_FILES = ("edge", "edge-feat", "node-feat", "graph-label", "num-node-list", "num-edge-list")


CATALOGUE: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("digits", "image", "scikit-learn's 1797 real 8x8 digits (built in; 1437/360 stratified split)",
                    (), (), builtin=True, loader="condense.vision.data:load_images"),
        DatasetInfo("mnist", "image", "MNIST 28x28 digits, 60k/10k (raw idx files)", ("MNIST/raw",), _idx("mnist"),
                    loader="condense.vision.data:load_images"),
        DatasetInfo("fashion-mnist", "image", "Fashion-MNIST 28x28, 60k/10k (raw idx files)", ("FashionMNIST/raw",),
                    _idx("fashion"), loader="condense.vision.data:load_images"),
        DatasetInfo("cifar10", "image", "CIFAR-10 32x32, 50k/10k (cifar-10-batches-py)", ("cifar-10-batches-py",),
                    tuple((f"data_batch_{i}",) for i in range(1, 6)) + (("test_batch",), ("batches.meta",)),
                    loader="condense.vision.data:load_images"),
        DatasetInfo("cifar100", "image", "CIFAR-100 32x32, 50k/10k (cifar-100-python)", ("cifar-100-python",),
                    (("train",), ("test",), ("meta",)), loader="condense.vision.data:load_images"),
        DatasetInfo("cifar10-subset", "image", "CIFAR-10, first 4000 train / 1000 test images (.npz)",
                    ("cifar10_subset",), (("cifar10_subset_5k.npz",),), loader="condense.vision.data:load_images"),
        DatasetInfo("tiny-imagenet", "image", "Tiny-ImageNet 64x64, 200 classes, 100k/10k (tiny-imagenet-200: wnids.txt, "
                    "train/<wnid>/images, val/val_annotations.txt); decoded once into a uint8 cache",
                    ("tiny-imagenet-200", "tiny-imagenet"), (("wnids.txt",), ("train/",), ("val/val_annotations.txt",)),
                    loader="condense.vision.data:load_images"),
        DatasetInfo("imagenet", "image", "ImageNet-1K (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), resized to 64x64 "
                    "unless --image-size; decoded once into a uint8 cache",
                    ("imagenet", "ILSVRC2012", "imagenet-1k"), (("train/",), ("val/",)),
                    loader="condense.vision.data:load_images"),
        _tu("MUTAG", ("node_labels", "edge_labels")),
        _tu("NCI1"),
        _tu("PTC_MR", ("node_labels", "edge_labels")),
        _tu("ENZYMES", ("node_labels", "node_attributes")),
        _tu("PROTEINS", ("node_labels",)),
        _tu("DD"),
        _tu("IMDB-BINARY", ()),
        _planetoid("Cora"),
        _planetoid("CiteSeer"),
        _planetoid("PubMed"),
        _pyg_npz("amazon-photo", "amazon/Photo", "amazon_electronics_photo.npz",
                 "Amazon-Photo co-purchase graph (Shchur et al. 2018), random 20/class splits"),
        _pyg_npz("coauthor-cs", "coauthor/CS", "ms_academic_cs.npz",
                 "Coauthor-CS co-authorship graph (Shchur et al. 2018), random 20/class splits"),
        _pyg_npz("coauthor-physics", "coauthor/Physics", "ms_academic_phy.npz",
                 "Coauthor-Physics co-authorship graph (Shchur et al. 2018), random 20/class splits"),
        DatasetInfo("karate", "node-classification", "networkx's Zachary karate club (built in; 34 nodes, 2 factions)",
                    (), (), builtin=True, loader="condense.graph.data:load_karate"),
        _ogb("ogbg-molhiv", "graph-classification", _OGB_MOLECULE_FILES, "scaffold",
             "OGB ogbg-molhiv: 41,127 molecules, HIV inhibition (binary), scaffold split, ROC-AUC"),
        _ogb("ogbg-molbace", "graph-classification", _OGB_MOLECULE_FILES, "scaffold",
             "OGB ogbg-molbace: 1,513 molecules, BACE-1 inhibition (binary), scaffold split, ROC-AUC"),
        _ogb("ogbg-molbbbp", "graph-classification", _OGB_MOLECULE_FILES, "scaffold",
             "OGB ogbg-molbbbp: 2,039 molecules, blood-brain barrier penetration (binary), scaffold split, ROC-AUC"),
        _ogb("ogbn-arxiv", "node-classification",
             ("edge", "node-feat", "node-label", "node_year", "num-node-list", "num-edge-list"), "time",
             "OGB ogbn-arxiv: 169,343 papers, directed citations, 40 subject areas, split by year, accuracy"),
        _ogb("ogbn-products", "node-classification",
             ("edge", "node-feat", "node-label", "num-node-list", "num-edge-list"), "sales_ranking",
             "OGB ogbn-products: 2,449,029 products, co-purchases, 47 categories, split by sales rank, accuracy"),
    )
}

_ALIASES = {
    "fmnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "cifar10_subset": "cifar10-subset",
    "tiny-imagenet-200": "tiny-imagenet",
    "tinyimagenet": "tiny-imagenet",
    "imagenet-1k": "imagenet",
    "imdb-b": "IMDB-BINARY",
    "photo": "amazon-photo",
    "cs": "coauthor-cs",
    "physics": "coauthor-physics",
    "molhiv": "ogbg-molhiv",
    "molbace": "ogbg-molbace",
    "molbbbp": "ogbg-molbbbp",
    "ogbg_molhiv": "ogbg-molhiv",
    "ogbg_molbace": "ogbg-molbace",
    "ogbg_molbbbp": "ogbg-molbbbp",
    "arxiv": "ogbn-arxiv",
    "ogbn_arxiv": "ogbn-arxiv",
    "ogbn_products": "ogbn-products",
}


def canonical_name(name: str) -> str:
    """The catalogue name for ``name`` (case-insensitive, common aliases accepted)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset must be a non-empty string, got {name!r}")
    if name in CATALOGUE:
        return name
    low = name.lower()
    if low in _ALIASES:
        return _ALIASES[low]
    for key in CATALOGUE:
        if key.lower() == low:
            return key
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(CATALOGUE)} (or a path to an .npz file or an "
                     "image folder)")


def info(name: str) -> DatasetInfo:
    return CATALOGUE[canonical_name(name)]


def status(root: str | os.PathLike | None = None) -> list[dict]:
    """For every catalogue dataset: name, family, description, found (bool) and where."""
    base = data_root(root)
    rows = []
    for d in CATALOGUE.values():
        where = d.locate(base)
        rows.append({
            "name": d.name,
            "family": d.family,
            "description": d.description,
            "found": where is not None,
            "location": "built in" if d.builtin else (str(where) if where else None),
            "layout": d.layout(),
        })
    return rows


def resolve_loader(name: str) -> Callable:
    import importlib

    d = info(name)
    module, _, func = d.loader.partition(":")
    return getattr(importlib.import_module(module), func)


def stratified_subsample(labels, per_class: int, seed: int = 0):
    """Indices of a seeded, stratified subsample: ``per_class`` items of every class (sorted).

    Raises ``ValueError`` naming the class when a class has fewer than ``per_class`` items, rather than
    silently returning an unbalanced set.
    """
    import numpy as np

    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"train_per_class must be a positive integer, got {per_class!r}")
    y = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if idx.size < per_class:
            raise ValueError(f"train_per_class={per_class} but class {c} has only {idx.size} training items")
        chosen.append(rng.choice(idx, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

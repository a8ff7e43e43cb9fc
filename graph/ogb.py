"""Open Graph Benchmark datasets (Hu et al., "Open Graph Benchmark: Datasets for Machine Learning on Graphs",
NeurIPS 2020) through the ``ogb`` package, an optional extra (``pip install 'condense-kit[ogb]'``), read from a
local folder in OGB's layout. Nothing is ever downloaded.

* ``ogbg-molhiv``, ``ogbg-molbace``, ``ogbg-molbbbp``: molecules (9 integer atom features, 3 integer bond
  features, every bond stored both ways) with one binary label each, as a :class:`~condense.graph.data.GraphSet`
  whose ``split`` is the scaffold split. Mirage trains, selects and tests on it (never a random split), and its
  evaluation adds OGB's Evaluator score (ROC-AUC, :func:`graph_metric`) beside the library's metrics. The integer
  features become float columns; Mirage codes them by exact value.
* ``ogbn-arxiv``, ``ogbn-products``: one graph whose split (by publication year / by sales rank) becomes
  ``train_mask``/``val_mask``/``test_mask``, like Planetoid's public split, so FF-G2M uses it (``split="auto"``);
  a stored student's evaluation adds OGB's Evaluator accuracy (:func:`node_metric`). ogbn-arxiv's citations are
  directed and are kept as OGB ships them; FF-G2M symmetrises every graph it trains on (its ``symmetrise=True``
  default, the usual practice for arxiv, recorded as ``symmetrised`` in the artifact's source). ogbn-products is
  stored with both directions already.

**Layout.** The folder OGB's zip file unpacks to, named like the dataset with ``_`` for ``-``, under
``ROOT/ogb/`` or ``ROOT`` itself::

    ogbg_molhiv/RELEASE_v1.txt
    ogbg_molhiv/raw/{edge,edge-feat,node-feat,graph-label,num-node-list,num-edge-list}.csv.gz
    ogbg_molhiv/split/scaffold/{train,valid,test}.csv.gz
    ogbn_arxiv/raw/{edge,node-feat,node-label,node_year,num-node-list,num-edge-list}.csv.gz
    ogbn_arxiv/split/time/{train,valid,test}.csv.gz      (ogbn_products: no node_year, split/sales_ranking)

``mapping/`` (ids back to molecules, papers, products) may be there too; it is not read.

**No prompt, no download.** OGB's dataset classes ask on the terminal whether to delete and re-download a folder
that lacks the ``RELEASE_v<version>.txt`` of the release the installed ``ogb`` names, and download the dataset
when a raw file is missing. Before OGB sees the folder, the loader checks the catalogue's required files and that
release marker (a missing one raises :class:`~condense.data.DatasetNotFound` naming it), and the OGB classes it
uses raise instead of downloading; ogb's PyPI version check on import is skipped too. OGB writes ``processed/``
into the folder on first load; a read-only folder is first copied to the cache
(:func:`~condense.graph.data.writable_copy`). OGB's own prints are kept off stdout (where ``--json`` output goes)
and logged at debug level.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from condense.data import DatasetNotFound, canonical_name, info
from condense.data import data_root as resolve_data_root
from condense.graph.classify import ExtraMetric
from condense.graph.data import GraphSet, fingerprint, writable_copy
from condense.progress import get_logger

log = get_logger("condense.ogb")

#: the catalogue loaders of this module start with this
_LOADER_PREFIX = "condense.graph.ogb:"
#: the library's split names and the file names OGB gives the same parts (``split/<kind>/<file>.csv.gz``)
SPLIT_FILES = {"train": "train", "val": "valid", "test": "test"}
INSTALL_HINT = "pip install 'condense-kit[ogb]'"
_ABSENT = object()  # no such entry in sys.modules


def is_ogb(name: Any) -> bool:
    """True for the catalogue name of an OGB dataset; False for every other name, your own graphs' included."""
    try:
        return info(name).loader.startswith(_LOADER_PREFIX)
    except ValueError:
        return False


@contextlib.contextmanager
def _no_version_check():
    """On its first import ``ogb`` starts a thread that asks PyPI whether a newer ogb exists (through the
    ``outdated`` package, without a timeout, which can hold the process for minutes where the network drops
    packets). ogb skips that check when ``outdated`` cannot be imported, so it is hidden for that first import."""
    if "ogb.version" in sys.modules:
        yield
        return
    hidden = sys.modules.get("outdated", _ABSENT)
    sys.modules["outdated"] = None  # makes `import outdated` raise ImportError
    try:
        yield
    finally:
        if hidden is _ABSENT:
            sys.modules.pop("outdated", None)
        else:
            sys.modules["outdated"] = hidden


@contextlib.contextmanager
def _quiet(dataset: str):
    """What ogb prints (and DGL, which ogb imports where it is installed) goes to the debug log, not stdout; the
    warning torch gives when OGB turns the read-only NumPy rows it parsed into tensors (which it only reads) is
    dropped."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            yield
    finally:
        if printed.getvalue().strip():
            log.debug("%s (ogb): %s", dataset, printed.getvalue().strip())


def _package(kind: str, dataset: str) -> ModuleType:
    """``ogb.graphproppred`` or ``ogb.nodeproppred``, imported only now (without its PyPI version check); without
    ``ogb`` an ImportError saying how to install it."""
    try:
        with _no_version_check(), _quiet(dataset):
            return importlib.import_module(f"ogb.{kind}")
    except ImportError as exc:
        raise ImportError(f"dataset {dataset!r} is read with the ogb package, which is not installed: "
                          f"{INSTALL_HINT}") from exc


def _meta(package: ModuleType, dataset: str) -> dict[str, str]:
    """The dataset's row of the ``master.csv`` the installed ``ogb`` ships (task, metric, release, split, files)."""
    import pandas as pd  # an ogb dependency

    table = pd.read_csv(Path(package.__file__).parent / "master.csv", index_col=0, keep_default_na=False)
    if dataset not in table:
        raise ValueError(f"the installed ogb does not list {dataset!r}; upgrade it ({INSTALL_HINT})")
    return {key: str(value) for key, value in table[dataset].items()}


@lru_cache(maxsize=None)
def _offline(cls: type) -> type:
    """``cls`` (an OGB PyG dataset class) with its download replaced by an error."""

    def download(self):
        raise RuntimeError(f"{self.name}: OGB asked to download it because a raw file is missing under {self.root}; "
                           "condense reads OGB data from local folders only")

    return type(f"Offline{cls.__name__}", (cls,), {"download": download})


def _pyg_classes_loadable():
    """OGB reads its processed file with a plain ``torch.load``, which loads weights only by default since torch
    2.6; the PyG storage classes that file holds are allowed for the duration (nothing else is unpickled)."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    allow = getattr(torch.serialization, "safe_globals", None)
    return allow([DataEdgeAttr, DataTensorAttr, GlobalStorage]) if allow is not None else contextlib.nullcontext()


def _ogb_names(family: str) -> list[str]:
    from condense.data import CATALOGUE

    return [n for n, d in CATALOGUE.items() if is_ogb(n) and d.family == family]


def _open(name: str, data_root: str | os.PathLike | None, kind: str, class_name: str, family: str):
    """The OGB dataset ``name`` of ``family`` from its folder under the data root (see the module docstring)."""
    key = canonical_name(name)
    d = info(key)
    if not is_ogb(key) or d.family != family:
        raise ValueError(f"dataset {key!r} is not an OGB {family} dataset; those are {', '.join(_ogb_names(family))}")
    package = _package(kind, key)
    folder = d.require(resolve_data_root(data_root))
    meta = _meta(package, key)
    release = f"RELEASE_v{meta['version']}.txt"
    if not (folder / release).is_file():
        raise DatasetNotFound(key, [folder], [release], f"the installed ogb reads release {meta['version']} of {key}, "
                              "and that folder holds another one")
    folder = writable_copy(folder, "ogb", skip=("processed",))
    if not (folder / "processed").is_dir():
        log.info("%s: OGB processes the raw files once, into %s", key, folder / "processed")
    with _pyg_classes_loadable(), _quiet(key):
        return _offline(getattr(package, class_name))(key, meta_dict={**meta, "dir_path": str(folder)})


def _official_split(dataset, size: int, key: str) -> dict[str, torch.Tensor]:
    """OGB's split as ``{"train", "val", "test"}`` index tensors, in the files' order; an index outside
    ``[0, size)`` raises naming the file."""
    with _quiet(key):
        parts = dataset.get_idx_split()
    split = {}
    for ours, theirs in SPLIT_FILES.items():
        idx = torch.as_tensor(parts[theirs], dtype=torch.long).view(-1)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= size):
            raise ValueError(f"{key}: split/{dataset.meta_info['split']}/{theirs}.csv.gz holds indices in "
                             f"[{int(idx.min())}, {int(idx.max())}], outside the dataset's {size} items")
        split[ours] = idx
    return split


def _single_label(dataset, key: str) -> None:
    """Refuse a dataset with several tasks or missing labels (OGB stores those as float NaN)."""
    if dataset.num_tasks != 1 or dataset[0].y.is_floating_point():
        raise ValueError(f"{key} has {dataset.num_tasks} task(s) or missing labels; condense reads OGB datasets "
                         "with exactly one class label per item")


def load_ogbg(name: str, *, data_root: str | os.PathLike | None = None):
    """An OGB molecule set as OGB's ``PygGraphPropPredDataset`` (its ``get_idx_split()`` is the scaffold split)."""
    return _open(name, data_root, "graphproppred", "PygGraphPropPredDataset", "graph-classification")


def load_ogbg_set(name: str, *, data_root: str | os.PathLike | None = None, train_per_class: int | None = None,
                  seed: int = 0) -> GraphSet:
    """An OGB molecule set as a :class:`GraphSet`: integer atom and bond features as float columns, one label per
    graph, and the official split (``scaffold``) as ``split``."""
    from condense.graph.nets import PackedGraphs

    key = canonical_name(name)
    ds = load_ogbg(key, data_root=data_root)
    _single_label(ds, key)
    pack = PackedGraphs.from_graphs(ds)
    pack = pack.with_features(pack.x.float(), None if pack.edge_attr is None else pack.edge_attr.float())
    source = {"name": key, "fingerprint": fingerprint(ds), "num_graphs": pack.num_graphs,
              "split": ds.meta_info["split"]}
    return GraphSet(key, pack, int(ds.num_classes), source, 0, train_per_class, seed,
                    split=_official_split(ds, pack.num_graphs, key))


def load_ogbn(name: str, *, data_root: str | os.PathLike | None = None):
    """An OGB node-classification graph as a PyG ``Data``: float features ``x``, labels ``y`` [N], the official
    split as ``train_mask``/``val_mask``/``test_mask``, ``num_classes``, and OGB's other node fields (arxiv's
    ``node_year``). Edges as OGB stores them (ogbn-arxiv: directed citations)."""
    key = canonical_name(name)
    ds = _open(key, data_root, "nodeproppred", "PygNodePropPredDataset", "node-classification")
    _single_label(ds, key)
    data = ds[0]
    n = int(data.num_nodes)
    for part, idx in _official_split(ds, n, key).items():
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        setattr(data, f"{part}_mask", mask)
    data.x = data.x.float()
    data.y = data.y.view(-1)
    data.num_classes = int(ds.num_classes)
    return data


def graph_metric(name: str) -> ExtraMetric:
    """OGB's Evaluator for a molecule set as a further test metric (``ogb_rocauc``): it scores the softmax
    probability of class 1. A test split with one class only gives NaN (OGB raises there; the library's own
    ROC-AUC is NaN with a warning)."""
    key = canonical_name(name)
    evaluator = _package("graphproppred", key).Evaluator(key)
    metric = evaluator.eval_metric

    def score(probs: torch.Tensor, y: torch.Tensor) -> float:
        if int(torch.unique(y).numel()) < 2:
            return math.nan
        return float(evaluator.eval({"y_true": y.view(-1, 1), "y_pred": probs[:, 1:]})[metric])

    return ExtraMetric(f"ogb_{metric}", score)


def node_metric(name: str) -> ExtraMetric:
    """OGB's Evaluator for a node-classification graph as a further test metric (``ogb_acc``) of predicted class
    ids against labels."""
    key = canonical_name(name)
    evaluator = _package("nodeproppred", key).Evaluator(key)
    metric = evaluator.eval_metric

    def score(pred: torch.Tensor, y: torch.Tensor) -> float:
        return float(evaluator.eval({"y_true": y.view(-1, 1), "y_pred": pred.view(-1, 1)})[metric])

    return ExtraMetric(f"ogb_{metric}", score)

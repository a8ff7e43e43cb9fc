"""Graph datasets through PyTorch Geometric's loaders, with the data-root rule and read-only roots handled.

* TU graph-classification sets (``MUTAG``, ``NCI1``, ``PTC_MR``, ``ENZYMES``, ...) from ``ROOT/tu/NAME/raw``;
* Planetoid citation graphs (``cora``, ``citeseer``, ``pubmed``) from ``ROOT/planetoid/NAME/raw``;
* Amazon-Photo / Coauthor-CS / Coauthor-Physics from ``ROOT/amazon/Photo/raw`` / ``ROOT/coauthor/CS/raw`` ...;
* ``karate``: networkx's Zachary karate club, built in;
* OGB sets (``ogbg-molhiv``, ``ogbg-molbace``, ``ogbg-molbbbp``, ``ogbn-arxiv``, ``ogbn-products``) with their
  official splits, through :mod:`condense.graph.ogb` (the ``ogb`` extra);
* DGL graphs convert with :func:`from_dgl` (the ``dgl`` extra).

PyG writes a ``processed/`` folder next to ``raw/`` on first load. When the dataset folder is read-only (the
shared data folder in CI, or any folder without the owner's write bit) the raw files are first copied to
``<cache>/pyg/<source-hash>/NAME/raw`` (OGB sets: the whole dataset folder to ``<cache>/ogb/<source-hash>/``,
see :func:`writable_copy`) and PyG processes that copy, so nothing is ever written next to data the library was
only asked to read.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from condense.artifacts import row_normalise
from condense.data import DatasetNotFound, cache_dir, canonical_name, info, is_writable_dir, resolve_loader
from condense.data import data_root as resolve_data_root


def _path_digest(path: Path) -> str:
    """A short hash of a source folder's path: its copies in the cache live under it."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:12]


def _mirror(src: Path, dest: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Copy every file under ``src`` to the same place under ``dest`` (sub-folders too, except the entries of
    ``src`` named in ``skip``). A file already there with the same size is kept; each copy is written under a
    temporary name and renamed, so an interrupted copy never looks whole."""
    for item in src.iterdir():
        if item.name in skip:
            continue
        target = dest / item.name
        if item.is_dir():
            _mirror(item, target)
        elif item.is_file() and (not target.is_file() or target.stat().st_size != item.stat().st_size):
            dest.mkdir(parents=True, exist_ok=True)
            tmp = dest / f".{item.name}.tmp"
            shutil.copyfile(item, tmp)
            os.replace(tmp, target)


def writable_root(raw_folder: Path) -> tuple[Path, str]:
    """``(root, name)`` for a PyG loader whose files sit in ``raw_folder`` (= ``root/name/raw``).

    If ``root/name`` is not writable, the raw files are copied to the cache and that copy is returned.
    """
    raw_folder = Path(raw_folder).resolve()
    dataset_dir = raw_folder.parent
    name = dataset_dir.name
    if is_writable_dir(dataset_dir):
        return dataset_dir.parent, name
    root = cache_dir() / "pyg" / _path_digest(raw_folder)
    _mirror(raw_folder, root / name / "raw")
    return root, name


def writable_copy(folder: Path, kind: str, *, skip: tuple[str, ...] = ()) -> Path:
    """``folder`` itself if it is writable, else a copy of everything in it (but the entries named in ``skip``)
    at ``<cache>/<kind>/<source-hash>/<folder name>``, for loaders that read more than ``raw/`` (OGB's ``split/``,
    ``mapping/`` and release file) and write next to it."""
    folder = Path(folder).resolve()
    if is_writable_dir(folder):
        return folder
    dest = cache_dir() / kind / _path_digest(folder) / folder.name
    _mirror(folder, dest, skip=skip)
    return dest


def _locate(name: str, data_root) -> tuple[str, Path]:
    key = canonical_name(name)
    d = info(key)
    root = resolve_data_root(data_root)
    folder = d.locate(root)
    if folder is None:
        raise DatasetNotFound(key, d.searched(root), d.expected())
    return key, folder


def load_tu(name: str, *, data_root: str | os.PathLike | None = None, use_node_attr: bool = True,
            use_edge_attr: bool = True):
    """A TU dataset as a PyG ``TUDataset`` (``x`` = [continuous attributes, one-hot node labels]).

    ``use_node_attr`` keeps continuous node attributes (ENZYMES has 18) in front of the one-hot labels;
    ``use_edge_attr`` keeps one-hot edge labels as ``edge_attr`` where the dataset has them.
    """
    from torch_geometric.datasets import TUDataset

    key, folder = _locate(name, data_root)
    if not info(key).loader.endswith(":load_tu"):
        raise ValueError(f"dataset {key!r} is not a TU graph-classification dataset")
    root, folder_name = writable_root(folder)
    return TUDataset(str(root), folder_name, use_node_attr=use_node_attr, use_edge_attr=use_edge_attr)


@dataclass
class GraphSet:
    """A graph-classification dataset, packed: every graph of it (``pack``), its classes, where it came from
    (``source``: name, fingerprint, graph count), how many leading feature columns are continuous attributes
    (the rest are one-hot labels), the training subsample asked for (applied to the training split), and the
    dataset's official split where it has one (``split``: ``{"train", "val", "test"}`` graph-index tensors, as
    the dataset's files list them; OGB's scaffold split). Without one the method's protocol draws the split."""

    name: str
    pack: Any  # condense.graph.nets.PackedGraphs
    num_classes: int
    source: dict[str, Any]
    num_node_attributes: int = 0
    train_per_class: int | None = None
    subsample_seed: int = 0
    split: dict[str, torch.Tensor] | None = None


def load_graph_set(name: str, *, data_root: str | os.PathLike | None = None, train_per_class: int | None = None,
                   seed: int = 0) -> GraphSet:
    """A graph-classification dataset as a :class:`GraphSet`: a TU set (continuous node attributes and edge labels
    kept, no official split) or an OGB molecule set (its scaffold split kept, :func:`condense.graph.ogb.load_ogbg_set`)."""
    from condense.graph.nets import PackedGraphs
    from condense.graph.ogb import is_ogb, load_ogbg_set

    key = canonical_name(name)
    if is_ogb(key):
        return load_ogbg_set(key, data_root=data_root, train_per_class=train_per_class, seed=seed)
    ds = load_tu(key, data_root=data_root)
    pack = PackedGraphs.from_graphs(ds)
    source = {"name": key, "fingerprint": fingerprint(ds), "num_graphs": pack.num_graphs}
    return GraphSet(key, pack, int(ds.num_classes), source, int(getattr(ds, "num_node_attributes", 0)),
                    train_per_class, seed)


def load_planetoid(name: str = "cora", *, data_root: str | os.PathLike | None = None,
                   normalize_features: bool = False):
    """A Planetoid graph (public split masks included) as a PyG ``Data``; optionally row-normalised."""
    from torch_geometric.datasets import Planetoid

    key, folder = _locate(name, data_root)
    if not info(key).loader.endswith("load_planetoid"):
        raise ValueError(f"dataset {key!r} is not a Planetoid dataset (cora, citeseer, pubmed)")
    root, folder_name = writable_root(folder)
    dataset = Planetoid(str(root), folder_name, split="public")
    data = dataset[0]
    if normalize_features:
        data.x = row_normalise(data.x)
    data.num_classes = dataset.num_classes
    return data


def load_npz_graph(name: str, *, data_root: str | os.PathLike | None = None):
    """Amazon-Photo / Coauthor-CS / Coauthor-Physics as a PyG ``Data`` (no split: draw one per seed)."""
    from torch_geometric.datasets import Amazon, Coauthor

    key, folder = _locate(name, data_root)
    root, folder_name = writable_root(folder)
    cls = Amazon if key.startswith("amazon") else Coauthor
    dataset = cls(str(root), folder_name)
    data = dataset[0]
    data.num_classes = dataset.num_classes
    return data


def load_karate():
    """Zachary's karate club as a PyG ``Data``: identity features, the two factions as labels (built in)."""
    import networkx as nx
    from torch_geometric.data import Data

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    edges = torch.tensor(list(g.edges()), dtype=torch.long).t()
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    y = torch.tensor([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(n)], dtype=torch.long)
    data = Data(x=torch.eye(n), edge_index=edge_index, y=y)
    data.num_classes = 2
    return data


def load_graph(name: str, *, data_root: str | os.PathLike | None = None, **kwargs: Any):
    """Load any catalogue graph dataset by name (dispatches to the loaders above)."""
    key = canonical_name(name)
    d = info(key)
    if d.family not in ("graph-classification", "node-classification"):
        raise ValueError(f"dataset {key!r} is a {d.family} dataset, not a graph dataset")
    if key == "karate":
        return load_karate()
    from condense.graph.ogb import is_ogb

    if is_ogb(key):
        return resolve_loader(key)(key, data_root=data_root, **kwargs)
    func = {"load_tu": load_tu, "load_planetoid": load_planetoid, "load_npz_graph": load_npz_graph}
    return func[d.loader.partition(":")[2]](key, data_root=data_root, **kwargs)


def fingerprint(data) -> str:
    """A short SHA-256 of a graph or graph dataset's tensors (x, edge_index, edge_attr, y, batch layout)."""
    h = hashlib.sha256()
    store = getattr(data, "_data", None)
    if store is None:
        store = data
    slices = getattr(data, "slices", None) or {}
    for key in ("x", "edge_index", "edge_attr", "y"):
        t = getattr(store, key, None)
        if isinstance(t, torch.Tensor):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for key in sorted(slices):
        h.update(key.encode())
        h.update(slices[key].cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def from_dgl(g, *, feat: str = "feat", label: str = "label", edge_feat: str | None = None):
    """Convert a ``dgl.DGLGraph`` (homogeneous) with node features/labels to a PyG ``Data``.

    Node data ``feat``/``label`` become ``x``/``y``; masks named ``train_mask``/``val_mask``/``test_mask`` are kept;
    ``edge_feat`` (if given) becomes ``edge_attr``. Needs the ``dgl`` extra.
    """
    try:
        import dgl  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("from_dgl needs DGL: pip install 'condense-kit[dgl]' and set DGLBACKEND=pytorch") from exc
    from torch_geometric.data import Data

    if len(g.ntypes) != 1 or len(g.etypes) != 1:
        raise ValueError(f"from_dgl expects a homogeneous graph, got node types {g.ntypes} and edge types {g.etypes}")
    src, dst = g.edges()
    data = Data(edge_index=torch.stack([src, dst]).long(), num_nodes=g.num_nodes())
    if feat in g.ndata:
        data.x = g.ndata[feat]
    else:
        raise ValueError(f"the DGL graph has no node data {feat!r}; it has {sorted(g.ndata.keys())}")
    if label in g.ndata:
        data.y = g.ndata[label].long()
    for mask in ("train_mask", "val_mask", "test_mask"):
        if mask in g.ndata:
            setattr(data, mask, g.ndata[mask].bool())
    if edge_feat is not None:
        if edge_feat not in g.edata:
            raise ValueError(f"the DGL graph has no edge data {edge_feat!r}; it has {sorted(g.edata.keys())}")
        data.edge_attr = g.edata[edge_feat]
    return data

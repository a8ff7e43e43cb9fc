"""Mirage: model-agnostic graph distillation by frequent computation trees (Gupta, Manchanda, Kodamana, Ranu,
"Mirage: Model-Agnostic Graph Distillation for Graph Classification", ICLR 2024, arXiv 2310.09486).

A message-passing GNN with J <= L layers sees a graph only through the depth-L computation trees of its
nodes, and a sum readout only through their multiset. Mirage therefore distils a graph-classification
training set without training any GNN:

1. **Codes.** Node and edge features become discrete codes (exact tuples, degree, or a quantile / k-means
   discretiser for continuous attributes), fitted on the training graphs only (:mod:`condense.graph.trees`).
2. **Tree ids.** Every node's depth-L computation tree gets an exact id by iterated relabelling
   :math:`c^l_v = \\mathrm{rank}_l(\\mathrm{code}(v), \\{\\!\\{(e_{uv}, c^{l-1}_u)\\}\\!\\})`, jointly over the dataset.
3. **Transactions.** Graph g becomes the *set* items(g) = {c^L_v : v in g, v not isolated}.
4. **Mining.** For each class c, all itemsets I with
   :math:`\\mathrm{supp}_c(I) = |\\{g \\in T_c : I \\subseteq \\mathrm{items}(g)\\}| \\ge \\theta_c`
   (exact Eclat, :mod:`condense.graph.mining`); optionally only itemsets frequent in no other class (``exclusive``).
5. **Tree store.** The trees used by some itemset are materialised once from the relabelling's key tables
   (BFS layout, children in key order) into a :class:`~condense.artifacts.TreeSet` with the itemsets, their
   supports and classes, the codebooks and the byte accounting (:mod:`condense.graph.accounting`).

Training view: each itemset of class c is one graph, the disjoint union of its trees with edges child ->
parent, label c and weight supp(I); the readout sums the tree roots only (:mod:`condense.graph.nets`). Models are
evaluated on the real validation/test graphs (:mod:`condense.graph.classify`): those of the dataset's official split
where it has one (OGB's scaffold split, scored with OGB's Evaluator too, :mod:`condense.graph.ogb`), else of the
configured protocol's split.

Library choices where the reference code differs: exact relabelling instead of digit
concatenation, an exact miner instead of pyfpgrowth, any number of classes, discretisers for continuous
features (an extension), support-proportional sampling that really samples, and mean ± std over all seeds.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from condense.artifacts import TreeSet
from condense.config import apply_overrides, build_config, from_dict, require, to_dict
from condense.graph.accounting import graph_set_bytes, treeset_bytes
from condense.graph.classify import ExtraMetric, TrainConfig, split_indices, summarise, train_run, train_runs
from condense.graph.data import GraphSet
from condense.graph.floors import FLOORS, majority_floor, node_count_floor, untrained_floor
from condense.graph.mining import Transactions, mine_classes
from condense.graph.nets import PackedGraphs
from condense.graph.presets import MIRAGE_PRESETS, TREE_EVAL_PRESETS
from condense.graph.trees import clean_edges, computation_trees, dense_rank_rows, discretise, first_index
from condense.method import Method
from condense.progress import get_logger
from condense.runtime import Meter, resolve_device

log = get_logger("condense.mirage")

NODE_CODES = ("exact", "degree", "quantile", "kmeans")
#: The baselines of an evaluation: the full training split, and random or herding selections of real training
#: graphs at the TreeSet's byte budget or at ``baseline_per_class`` graphs per class.
BASELINE_SETS = ("full", "random_bytes", "random_per_class", "herding_bytes", "herding_per_class")
EDGE_CODES = ("exact", "quantile", "kmeans", "constant")


@dataclass
class MirageConfig:
    """Mirage distillation settings (defaults follow the reference; ``support`` has no default)."""

    depth: int = 2  # L, hops of the computation trees
    support: float | tuple[float, ...] | None = None  # θ per class: a count >= 1 or a fraction in (0, 1)
    target_itemsets_per_class: int | None = None  # budget mode: the largest θ_c giving >= k itemsets
    node_codes: Literal["exact", "degree", "quantile", "kmeans"] = "exact"
    edge_codes: Literal["exact", "quantile", "kmeans", "constant"] = "exact"
    allow_float_exact: bool = False  # code continuous features by exact value
    n_bins: int = 4  # quantile bins per dimension
    n_codes: int = 16  # k-means codes
    degree_in_code: bool = False  # code = (features, degree): makes GCN exact on trees
    feature_scaling: Literal["auto", "none"] = "auto"  # auto: z-score continuous feature columns
    keep_single_node_trees: bool = False  # isolated nodes' one-node trees join transactions
    exclusive: bool = False  # drop itemsets frequent in another class too
    output: Literal["all", "closed", "maximal"] = "all"
    max_itemset_size: int | None = None
    max_itemsets: int = 100_000  # per class; more raises (suggesting a higher θ)
    max_tree_nodes: int = 10_000_000  # total nodes of the materialised trees; more raises (suggesting a smaller L)
    allow_missing_classes: bool = False
    symmetrise: bool = False  # add missing reverse edges instead of raising
    remove_self_loops: bool = False  # drop self-loops instead of raising
    use_node_attr: bool = True  # TU continuous node attributes
    use_edge_attr: bool = True
    protocol: Literal["split", "kfold"] = "split"  # datasets with an official split (OGB) always use it
    split_seed: int = 0
    folds: int = 10
    fold: int = 0
    threshold_grid: tuple[tuple[float, ...], ...] = ()  # run(): distil at each θ, keep the best by validation
    grid_model: str = "gin"  # the GNN that scores each grid point on the validation split
    grid_runs: int = 3

    def __post_init__(self) -> None:
        require(isinstance(self.depth, int) and not isinstance(self.depth, bool) and self.depth >= 1, "depth",
                f"L must be an integer >= 1, got {self.depth!r}")
        require(self.node_codes in NODE_CODES, "node_codes", f"must be one of {NODE_CODES}, got {self.node_codes!r}")
        require(self.edge_codes in EDGE_CODES, "edge_codes", f"must be one of {EDGE_CODES}, got {self.edge_codes!r}")
        require(self.n_bins >= 1, "n_bins", f"must be >= 1, got {self.n_bins!r}")
        require(self.n_codes >= 1, "n_codes", f"must be >= 1, got {self.n_codes!r}")
        require(self.max_itemsets >= 1, "max_itemsets", f"must be >= 1, got {self.max_itemsets!r}")
        require(self.max_tree_nodes >= 1, "max_tree_nodes", f"must be >= 1, got {self.max_tree_nodes!r}")
        require(self.max_itemset_size is None or self.max_itemset_size >= 1, "max_itemset_size",
                f"must be >= 1 or None, got {self.max_itemset_size!r}")
        require(self.target_itemsets_per_class is None or self.target_itemsets_per_class >= 1,
                "target_itemsets_per_class", f"must be >= 1 or None, got {self.target_itemsets_per_class!r}")
        if isinstance(self.support, list):
            self.support = tuple(self.support)
        self.threshold_grid = tuple(tuple(t) if isinstance(t, (list, tuple)) else (t,) for t in self.threshold_grid)
        require(self.grid_runs >= 1, "grid_runs", f"must be >= 1, got {self.grid_runs!r}")
        for v in self.support if isinstance(self.support, tuple) else (self.support,):
            require(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0), "support",
                    f"thresholds must be > 0 (a count >= 1 or a fraction in (0, 1)), got {self.support!r}")


# -- the method -----------------------------------------------------------------------------------------
def _continuous_columns(x: torch.Tensor) -> torch.Tensor:
    if x.numel() == 0 or not x.is_floating_point():
        return torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
    return ~(x == torch.round(x)).all(0)


def degree_features(pack: PackedGraphs, dim: int) -> torch.Tensor:
    """One-hot node degrees of width ``dim`` (the features featureless graphs get in ``degree`` mode)."""
    deg = torch.bincount(pack.edge_index[1], minlength=pack.num_nodes)
    if pack.num_nodes and int(deg.max()) >= dim:
        raise ValueError(f"degree_dim={dim} is too small for a node of degree {int(deg.max())}")
    return torch.nn.functional.one_hot(deg, dim).float()


class Mirage(Method):
    """``Mirage(config).fit(graphs) -> TreeSet`` (see the module docstring).

    ``graphs``: a :class:`~condense.graph.data.GraphSet` (a catalogue dataset: the training part of its official
    split, OGB's scaffold split, or else of the configured protocol's split is distilled, and ``threshold_grid``
    scores its points on the validation part), or your own training
    graphs: a PyG dataset, a list of ``Data`` with graph labels ``y``, or a :class:`PackedGraphs` (all of them are
    distilled). Inputs: ``num_classes`` (default: the largest label + 1). ``run_dir`` is accepted for the
    protocol; distillation takes seconds and writes no checkpoints.
    """

    name = "mirage"
    config_class = MirageConfig
    presets = MIRAGE_PRESETS
    inputs = ("num_classes",)

    @classmethod
    def load_data(cls, name, *, data_root=None, train_per_class=None, seed=0) -> GraphSet:
        from condense.graph.data import load_graph_set

        return load_graph_set(name, data_root=data_root, train_per_class=train_per_class, seed=seed)

    def fit(self, graphs, *, device: str | torch.device = "auto", seed: int = 0, run_dir=None,
            num_classes: int | None = None) -> TreeSet:
        """Distil ``graphs`` into a :class:`TreeSet`; ``seed`` seeds the k-means discretiser."""
        cfg = self.config
        device = resolve_device(device)
        degree_dim, source = None, {}
        if isinstance(graphs, GraphSet):
            if cfg.support is None and cfg.target_itemsets_per_class is None:
                raise ValueError(
                    f"no published support thresholds for {graphs.name!r}: give support (e.g. --support 0.1 for 10% "
                    "of each class, or --set support=40,60 as per-class counts) or target_itemsets_per_class; "
                    "presets exist for " + ", ".join(sorted(MIRAGE_PRESETS)))
            pack, num_classes, source = prepared_pack(graphs, cfg)
            train, val, _ = split_for(pack.y, cfg, train_per_class=graphs.train_per_class, seed=graphs.subsample_seed,
                                      official=graphs.split, dataset=graphs.name)
            source.update(protocol=cfg.protocol, split_seed=cfg.split_seed, folds=cfg.folds, fold=cfg.fold,
                          train_per_class=graphs.train_per_class, subsample_seed=graphs.subsample_seed,
                          train_graphs=int(train.size), train_index_sha=_index_digest(train))
            degree_dim = source.get("degree_dim")
            log.info("mirage: %s, %d training graphs, L=%d", source["name"], train.size, cfg.depth)
            train_pack = pack.select(torch.as_tensor(train))
            if cfg.threshold_grid:
                cfg, grid = _select_threshold(cfg, train_pack, pack.select(torch.as_tensor(val)), num_classes,
                                              source, device, seed)
                source["threshold_grid"] = grid
            graphs = train_pack
        elif cfg.threshold_grid:
            raise ValueError("threshold_grid scores each point on a validation split: distil a catalogue dataset, "
                             "or choose the threshold on your own validation graphs and pass support")
        pack = graphs if isinstance(graphs, PackedGraphs) else PackedGraphs.from_graphs(graphs)
        if not source:
            source = {"name": "graphs", "fingerprint": _pack_digest(pack), "num_graphs": pack.num_graphs}
        return _distil_artifact(cfg, pack.to(device), num_classes, source, degree_dim, device, seed)


def _pack_digest(pack: PackedGraphs) -> str:
    from condense.artifacts import content_digest

    tensors = {k: getattr(pack, k) for k in ("x", "edge_index", "node_ptr", "y") if getattr(pack, k) is not None}
    return content_digest(tensors)[:16]


def _distil_artifact(cfg: MirageConfig, pack: PackedGraphs, num_classes: int | None, source: dict,
                     degree_dim: int | None, device: torch.device, seed: int) -> TreeSet:
    """Distil the training ``pack`` with ``cfg`` and build the :class:`TreeSet` with its byte accounting."""
    if pack.num_graphs == 0:
        raise ValueError("graphs is empty: Mirage needs training graphs")
    K = int(num_classes) if num_classes is not None else int(pack.y.max()) + 1
    if int(pack.y.min()) < 0 or int(pack.y.max()) >= K:
        raise ValueError(f"graph labels must lie in [0, {K}), got [{int(pack.y.min())}, {int(pack.y.max())}]")
    with Meter(device) as meter:
        tensors, info = _Distiller(cfg).distil(pack, K, degree_dim, seed)
    timing = {"fit_seconds": meter.result.wall_s, "peak_rss_mb": meter.result.peak_rss_mb}
    original_pack = info.pop("original_pack")
    original = {conv: graph_set_bytes(original_pack, conv) for conv in ("storage", "compact")}
    distilled = {conv: treeset_bytes(tensors, conv) for conv in ("storage", "compact")}
    nbytes = {
        "distilled": distilled, "original": original,
        "ratio": {c: original[c]["total"] / max(distilled[c]["total"], 1) for c in distilled},
    }
    per_class = [int((tensors["itemset_class"] == c).sum()) for c in range(K)]
    summary = {
        "train graphs": pack.num_graphs,
        "depth L": cfg.depth,
        "thresholds": info["thresholds"],
        "distinct trees": info["distinct_trees"],
        "stored trees": int(tensors["tree_ptr"].numel() - 1),
        "itemsets per class": per_class,
        "tree nodes": int(tensors["node_code"].numel()),
        "bytes (storage)": f"{distilled['storage']['total']} vs {original['storage']['total']} "
                           f"({nbytes['ratio']['storage']:.1f}x)",
        "bytes (compact)": f"{distilled['compact']['total']} vs {original['compact']['total']} "
                           f"({nbytes['ratio']['compact']:.1f}x)",
        "fit seconds": round(timing["fit_seconds"], 3),
    }
    return TreeSet.create(
        tensors, method="mirage", config=to_dict(cfg), source=dict(source),
        budget={"depth": cfg.depth, "thresholds": info["thresholds"], "class_sizes": info["class_sizes"],
                "itemsets": int(tensors["itemset_class"].numel())},
        seed=seed, device=str(device),
        extra={"summary": summary, "bytes": nbytes, "timing": timing, "features": info["features"],
               "num_classes": K, "distinct_trees": info["distinct_trees"]},
    )


class _Distiller:
    """Steps 1-5 of the module docstring on one packed training set."""

    def __init__(self, config: MirageConfig):
        self.config = config

    def distil(self, pack: PackedGraphs, K: int, degree_dim: int | None, seed: int):
        cfg = self.config
        N = pack.num_nodes
        # 1. edge codes, graph hygiene, node codes (fitted on these training graphs only)
        edge_attr = pack.edge_attr if cfg.use_edge_attr and cfg.edge_codes != "constant" else None
        ecoding = discretise(edge_attr, cfg.edge_codes if edge_attr is not None else "constant",
                             num_rows=pack.num_edges, allow_float_exact=cfg.allow_float_exact, n_bins=cfg.n_bins,
                             n_codes=cfg.n_codes, seed=seed, argument="edge_codes")
        edge_index, edge_code = clean_edges(pack.edge_index, N, ecoding.codes, symmetrise=cfg.symmetrise,
                                            remove_self_loops=cfg.remove_self_loops)
        deg = torch.bincount(edge_index[1], minlength=N)
        features = {"x": "loader", "use_node_attr": cfg.use_node_attr, "use_edge_attr": edge_attr is not None}
        x = pack.x
        if cfg.node_codes == "degree":
            degree_dim = int(degree_dim) if degree_dim is not None else int(deg.max()) + 1
            x = torch.nn.functional.one_hot(deg, degree_dim).float() if int(deg.max()) < degree_dim else None
            if x is None:
                raise ValueError(f"degree_dim={degree_dim} is too small for a training node of degree {int(deg.max())}")
            features.update(x="degree_onehot", degree_dim=degree_dim)
        coding = discretise(x, cfg.node_codes, num_rows=N, allow_float_exact=cfg.allow_float_exact, n_bins=cfg.n_bins,
                            n_codes=cfg.n_codes, seed=seed, deg=deg, degree_dim=degree_dim or 0)
        node_code, codebook, code_degree = coding.codes, coding.codebook, None
        if cfg.degree_in_code:
            node_code, num = dense_rank_rows([coding.codes, deg])
            rep = first_index(node_code, num)
            codebook, code_degree = codebook[coding.codes[rep]], deg[rep]
        # 2. tree ids and 3. transactions (sets of tree ids per graph)
        trees = computation_trees(node_code, edge_index, cfg.depth, edge_code)
        graph_of_node = pack.batch
        keep = torch.ones(N, dtype=torch.bool, device=deg.device) if cfg.keep_single_node_trees else deg > 0
        T = max(trees.num_trees, 1)
        pairs = torch.unique(graph_of_node[keep] * T + trees.colour[keep])
        tx_graph, tx_item = pairs // T, pairs % T
        ptr = np.zeros(pack.num_graphs + 1, dtype=np.int64)
        np.cumsum(torch.bincount(tx_graph, minlength=pack.num_graphs).cpu().numpy(), out=ptr[1:])
        # 4. mining per class
        mined = mine_classes(
            Transactions(ptr, tx_item.cpu().numpy()), pack.y.cpu().numpy(), K, cfg.support, exclusive=cfg.exclusive,
            max_itemset_size=cfg.max_itemset_size, max_itemsets=cfg.max_itemsets, output=cfg.output,
            target_itemsets_per_class=cfg.target_itemsets_per_class, allow_missing_classes=cfg.allow_missing_classes,
        )
        arrays = {k: torch.as_tensor(v, device=deg.device) for k, v in mined.arrays().items()}
        # 5. tree store: the trees used by some itemset, each stored once
        used = torch.unique(arrays["itemset_items"])
        total_nodes = int(trees.sizes(used).sum()) if used.numel() else 0
        if total_nodes > cfg.max_tree_nodes:
            raise ValueError(
                f"the {used.numel()} mined trees have {total_nodes} nodes in total, above max_tree_nodes="
                f"{cfg.max_tree_nodes} (|T_v| grows like degree^L): use a smaller depth L, a higher support, "
                "or raise max_tree_nodes"
            )
        store = trees.materialise(used)
        node_used, store_code = torch.unique(store.node_code, return_inverse=True)
        edge_used, store_edge = torch.unique(store.edge_code, return_inverse=True)
        tensors = {
            "tree_ptr": store.tree_ptr, "node_code": store_code, "parent": store.parent, "edge_code": store_edge,
            "itemset_ptr": arrays["itemset_ptr"], "itemset_tree": torch.searchsorted(used, arrays["itemset_items"]),
            "itemset_class": arrays["itemset_class"], "itemset_support": arrays["itemset_support"],
            "node_codebook": codebook[node_used].float(),
            "edge_codebook": ecoding.codebook[edge_used].float() if edge_used.numel() else ecoding.codebook[:0].float(),
        }
        if code_degree is not None:
            tensors["node_code_degree"] = code_degree[node_used]
        continuous = _continuous_columns(x)
        if cfg.feature_scaling == "auto" and bool(continuous.any()):
            shift = torch.where(continuous, x.mean(0), torch.zeros_like(x[0]))
            scale = torch.where(continuous, x.std(0, unbiased=False).clamp_min(1e-12), torch.ones_like(x[0]))
            tensors.update(feature_shift=shift.float(), feature_scale=scale.float())
        original = pack.with_features(x, pack.edge_attr if cfg.use_edge_attr else None)
        info = {"thresholds": mined.thresholds, "class_sizes": mined.class_sizes, "distinct_trees": trees.num_trees,
                "features": features, "original_pack": original}
        return tensors, info


# -- data for run() and evaluate_artifact() ---------------------------------------------------------------
def _index_digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]


def prepared_pack(graphs: GraphSet, cfg: MirageConfig) -> tuple[PackedGraphs, int, dict]:
    """Every graph of ``graphs`` with the features ``cfg`` asks for (continuous attributes dropped unless
    ``use_node_attr``, edge features unless ``use_edge_attr``, one-hot degrees in ``degree`` mode), the class count
    and the source metadata."""
    pack, source = graphs.pack, dict(graphs.source)
    x = pack.x if cfg.use_node_attr else pack.x[:, graphs.num_node_attributes:]
    pack = pack.with_features(x, pack.edge_attr if cfg.use_edge_attr else None)
    if cfg.node_codes == "degree":
        dim = int(torch.bincount(pack.edge_index[1], minlength=pack.num_nodes).max()) + 1
        pack = pack.with_features(degree_features(pack, dim), pack.edge_attr)
        source["degree_dim"] = dim
    return pack, graphs.num_classes, source


def split_for(labels: torch.Tensor, cfg: MirageConfig, *, train_per_class: int | None, seed: int,
              official: dict[str, torch.Tensor] | None = None, dataset: str = "graphs"):
    """``(train, val, test)`` sorted index arrays: the dataset's ``official`` split where it has one (a
    :class:`GraphSet`'s ``split``; ``split_seed`` does not apply), else the configured protocol's; the training part
    optionally subsampled per class."""
    from condense.data import stratified_subsample

    if official is not None:
        if cfg.protocol != "split":
            raise ValueError(f"protocol={cfg.protocol!r}: {dataset} has an official split, which Mirage always uses; "
                             "leave protocol at 'split'")
        train, val, test = (np.sort(official[part].cpu().numpy()) for part in ("train", "val", "test"))
    else:
        train, val, test = split_indices(labels.cpu().numpy(), protocol=cfg.protocol, seed=cfg.split_seed,
                                         folds=cfg.folds, fold=cfg.fold)
    if train_per_class is not None:
        train = train[stratified_subsample(labels.cpu().numpy()[train], train_per_class, seed)]
    return train, val, test


def _select_threshold(cfg: MirageConfig, train: PackedGraphs, val: PackedGraphs, K: int, source: dict, device, seed):
    """Distil at every θ of ``cfg.threshold_grid``, train ``cfg.grid_runs`` ``cfg.grid_model`` models on each set and
    keep the θ with the best mean validation metric (the test split is never looked at). Grid points where a class
    has no itemset are skipped."""
    rows = []
    for theta in cfg.threshold_grid:
        point = replace(cfg, support=theta if len(theta) > 1 else theta[0], threshold_grid=())
        try:
            art = _distil_artifact(point, train.to(device), K, source, source.get("degree_dim"), device, seed)
        except ValueError as exc:
            rows.append({"support": list(theta), "skipped": str(exc)})
            continue
        ecfg = tree_eval_config(source["name"], cfg.grid_model, cfg.depth, {"runs": cfg.grid_runs})
        graphs = real_graphs(val, art).to(resolve_device(device))
        summary, _ = train_runs(training_graphs(art, resolve_device(device)), graphs, graphs, ecfg, num_classes=K,
                                seed=seed, sampling=ecfg.sampling, desc=f"grid {list(theta)}")
        rows.append({"support": list(theta), "val": summary["val"]["mean"], "selection": summary["selection"],
                     "itemsets": int(art["itemset_class"].numel())})
    scored = [r for r in rows if "val" in r]
    if not scored:
        raise ValueError(f"no point of threshold_grid={cfg.threshold_grid} gives itemsets for every class")
    best = max(scored, key=lambda r: r["val"])
    log.info("mirage: threshold grid %s -> %s", [(r["support"], r.get("val")) for r in rows], best["support"])
    chosen = best["support"] if len(best["support"]) > 1 else best["support"][0]
    return replace(cfg, support=tuple(chosen) if isinstance(chosen, list) else chosen), rows


# -- training on a TreeSet and evaluation -------------------------------------------------------------
@dataclass
class TreeEvalConfig(TrainConfig):
    """How a TreeSet is evaluated: a :class:`TrainConfig` (the dataset's published settings where they exist)
    plus the baselines' size and the optional discretisation of evaluation features."""

    layers: int | None = None  # None: the TreeSet's depth L (J = L)
    baseline_per_class: int = 10
    baseline_sets: tuple[str, ...] = BASELINE_SETS  # which baselines ``baselines=True`` trains
    discretise_eval: bool = False  # replace real features by their nearest codebook rows

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.baseline_per_class >= 1, "baseline_per_class", f"must be >= 1, got {self.baseline_per_class!r}")
        self.baseline_sets = tuple(self.baseline_sets)
        unknown = [b for b in self.baseline_sets if b not in BASELINE_SETS]
        require(not unknown, "baseline_sets", f"unknown {unknown}; known: {', '.join(BASELINE_SETS)}")


def tree_eval_config(dataset: str | None, model: str, depth: int,
                     overrides: dict[str, Any] | None = None) -> TreeEvalConfig:
    """Library defaults, the dataset's published settings (``<dataset>``, then ``<dataset>-<model>``), ``model``,
    then ``overrides``; J defaults to L."""
    key = (dataset or "").lower()
    chain = [name for name in (key, f"{key}-{model}") if name in TREE_EVAL_PRESETS]
    cfg = build_config(TreeEvalConfig, TREE_EVAL_PRESETS, chain=chain, overrides={"model": model, **(overrides or {})},
                       what="evaluation preset")
    if cfg.layers is None:
        cfg = apply_overrides(cfg, {"layers": depth})
    return cfg


def _scaled(x: torch.Tensor, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    if "feature_shift" not in tensors:
        return x.float()
    return (x.float() - tensors["feature_shift"].to(x.device)) / tensors["feature_scale"].to(x.device)


def training_graphs(artifact: TreeSet, device: str | torch.device = "cpu") -> PackedGraphs:
    """The TreeSet's training view: one graph per itemset, the disjoint union of its trees with edges child ->
    parent, features from the codebooks, ``root_mask`` on the tree roots, label = class, weight = support, and
    ``deg`` (original degrees, for GCN) when the set codes degrees."""
    from condense.graph.trees import TreeArrays

    t = {k: v.to(device) for k, v in artifact.tensors.items()}
    store = TreeArrays(t["tree_ptr"], t["node_code"], t["parent"], t["edge_code"])
    T = store.num_trees
    edge_ptr = t["tree_ptr"] - torch.arange(T + 1, device=device)
    ebook = t["edge_codebook"]
    per_tree = PackedGraphs(
        x=_scaled(t["node_codebook"][t["node_code"]], t), edge_index=store.edges_to_parent(), node_ptr=t["tree_ptr"],
        edge_ptr=edge_ptr, y=torch.zeros(T, dtype=torch.long, device=device),
        edge_attr=ebook[t["edge_code"]] if ebook.shape[1] else None, root_mask=store.root_mask(),
        deg=t["node_code_degree"][t["node_code"]] if "node_code_degree" in t else None,
    )
    trees = per_tree.select(t["itemset_tree"])
    ptr = t["itemset_ptr"]
    return PackedGraphs(trees.x, trees.edge_index, trees.node_ptr[ptr], trees.edge_ptr[ptr], t["itemset_class"],
                        trees.edge_attr, trees.root_mask, trees.deg, t["itemset_support"].float())


def to_data_list(artifact: TreeSet) -> list:
    """:meth:`TreeSet.to_data_list`: the training view (:func:`training_graphs`) as PyG ``Data`` objects."""
    return training_graphs(artifact).to_data_list()


def real_graphs(pack: PackedGraphs, artifact: TreeSet, *, discretise_eval: bool = False) -> PackedGraphs:
    """Real graphs in the TreeSet's feature space: edge features only where the set codes them, continuous
    columns scaled like the codebook, and (``discretise_eval``) features snapped to the nearest codebook row."""
    t = artifact.tensors
    x = pack.x.float()
    edge_attr = pack.edge_attr.float() if pack.edge_attr is not None and t["edge_codebook"].shape[1] else None
    if discretise_eval:
        x = t["node_codebook"].to(x.device)[torch.cdist(x, t["node_codebook"].to(x.device)).argmin(1)]
        if edge_attr is not None:
            book = t["edge_codebook"].to(x.device)
            edge_attr = book[torch.cdist(edge_attr, book).argmin(1)]
    return pack.with_features(_scaled(x, t), edge_attr)


def _fmt_stat(s: dict) -> str:
    if s is None or s.get("mean") is None or math.isnan(s["mean"]):
        return "n/a"
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def evaluate_treeset(artifact: TreeSet, train: PackedGraphs, val: PackedGraphs, test: PackedGraphs, cfg: TreeEvalConfig, *,
                     num_classes: int, device="auto", seed: int = 0, baselines: bool = False,
                     extra_metric: ExtraMetric | None = None) -> dict:
    """Train ``cfg.runs`` models on the TreeSet (and, with ``baselines``, on the full training split, random
    and herding selections at the set's byte budget and at ``cfg.baseline_per_class`` graphs per class); test
    each on the real ``test`` graphs at its best-validation epoch, with ``extra_metric`` (e.g. OGB's Evaluator)
    as well where given. Returns the registry's result dict."""
    from condense.graph.accounting import per_graph_storage_bytes
    from condense.graph.baselines import baseline_selections

    device = resolve_device(device)
    L = int(artifact.meta.get("budget", {}).get("depth", cfg.layers))
    if cfg.layers > L:
        warnings.warn(f"the GNN has {cfg.layers} layers but the trees have depth L={L}: layers beyond L see "
                      "truncated trees", stacklevel=2)
    tree_pack = training_graphs(artifact, device)
    train, val, test = (real_graphs(p, artifact, discretise_eval=cfg.discretise_eval).to(device)
                        for p in (train, val, test))
    dataset = artifact.meta.get("source", {}).get("name", "graphs")
    results, sizes = {}, {}
    results["distilled"], _ = train_runs(tree_pack, val, test, cfg, num_classes=num_classes, seed=seed,
                                         sampling=cfg.sampling, desc=f"mirage {cfg.model}", extra_metric=extra_metric)
    # the floors any condensed set must beat (condense.graph.floors): free, so always reported
    results["node_count"] = node_count_floor(train, test, num_classes)
    results["untrained"] = untrained_floor(train, test, cfg, num_classes=num_classes,
                                           seeds=[seed + r for r in range(cfg.runs)])
    results["majority"] = majority_floor(train, test, num_classes)
    sizes.update({name: {"graphs": None, "bytes": None} for name in FLOORS})
    dist_bytes = {c: treeset_bytes(artifact.tensors, c) for c in ("storage", "compact")}
    full_bytes = {c: graph_set_bytes(train, c)["total"] for c in ("storage", "compact")}
    sizes["distilled"] = {"graphs": tree_pack.num_graphs, "bytes": dist_bytes["storage"]["total"],
                          "bytes_compact": dist_bytes["compact"]["total"]}
    if baselines:
        wanted = cfg.baseline_sets
        embeddings = None
        if "full" in wanted or any(b.startswith("herding") for b in wanted):
            # herding embeds the training graphs with the first full-data model (trained once just for that when
            # the full baseline itself is not asked for)
            full_cfg = cfg if "full" in wanted else apply_overrides(cfg, {"runs": 1})
            full_summary, full_runs = train_runs(train, val, test, full_cfg, num_classes=num_classes, seed=seed,
                                                 desc=f"full {cfg.model}", keep_first_model=True,
                                                 extra_metric=extra_metric)
            if "full" in wanted:
                results["full"] = full_summary
                sizes["full"] = {"graphs": train.num_graphs, "bytes": full_bytes["storage"],
                                 "bytes_compact": full_bytes["compact"]}
            with torch.no_grad():
                embeddings = full_runs[0].model.eval().embed(train)
        budget = dist_bytes["storage"]["total"]
        gbytes = per_graph_storage_bytes(train)
        runs: dict[str, list] = {}
        chosen = [b for b in wanted if b != "full"]
        from condense import distributed
        from condense.progress import Progress

        total = cfg.runs if chosen else 0
        mine = distributed.take(range(total))  # under torchrun each rank trains its share of the runs
        local = []
        with Progress(total=len(mine) * len(chosen) * cfg.epochs, desc=f"baselines {cfg.model}") as bar:
            for r in mine:
                picks = baseline_selections(train, num_classes, budget_bytes=budget, per_class=cfg.baseline_per_class,
                                            seed=seed + r, embeddings=embeddings)
                local.append({name: (train_run(train.select(picks[name]), val, test, cfg, num_classes=num_classes,
                                               seed=seed + r, bar=bar, extra_metric=extra_metric),
                                     int(picks[name].numel()),
                                     int(gbytes[picks[name]].sum()) + 8) for name in chosen})
        for per_run in distributed.gather_in_order(local, total):
            for name, (run, n_graphs, n_bytes) in per_run.items():
                runs.setdefault(name, []).append(run)
                sizes.setdefault(name, {"graphs": [], "bytes": []})
                sizes[name]["graphs"].append(n_graphs)
                sizes[name]["bytes"].append(n_bytes)
        for name, rs in runs.items():
            results[name] = summarise(rs, cfg.report)
            sizes[name] = {"graphs": float(np.mean(sizes[name]["graphs"])), "bytes": float(np.mean(sizes[name]["bytes"]))}
    for name, res in results.items():
        res["graphs"] = sizes[name]["graphs"]
        res["bytes"] = sizes[name]["bytes"]
    compression = {
        "samples": train.num_graphs / max(tree_pack.num_graphs, 1),
        "bytes": full_bytes["storage"] / max(dist_bytes["storage"]["total"], 1),
        "bytes_compact": full_bytes["compact"] / max(dist_bytes["compact"]["total"], 1),
        "distilled_samples": tree_pack.num_graphs, "full_samples": train.num_graphs,
        "distilled_bytes": dist_bytes["storage"]["total"], "full_bytes": full_bytes["storage"],
        "distilled_bytes_compact": dist_bytes["compact"]["total"], "full_bytes_compact": full_bytes["compact"],
        "codebook_bytes": dist_bytes["storage"]["codebook"], "codebook_bytes_compact": dist_bytes["compact"]["codebook"],
    }
    timing = {"distill": artifact.meta.get("extra", {}).get("timing", {}),
              "train_seconds": {k: v["train_seconds"] for k, v in results.items()}}
    text = _table(dataset, cfg, L, results, compression, num_classes, extra_metric.name if extra_metric else None)
    return {"kind": "TreeSet", "method": "mirage", "dataset": dataset, "model": cfg.model, "config": to_dict(cfg),
            "results": results, "compression": compression, "timing": timing, "table": text}


def _table(dataset: str, cfg: TreeEvalConfig, L: int, results: dict, compression: dict, K: int,
           extra: str | None = None) -> str:
    auc = "ROC-AUC" if K == 2 else "macro OvR AUC"
    lines = [
        f"Mirage TreeSet on {dataset} (L={L}): {cfg.model.upper()} J={cfg.layers}, {cfg.runs} runs, "
        f"test at best validation {results['distilled']['selection']}; mean ± std over "
        + ("all seeds" if cfg.report == "all_seeds" else "the TOP 5 OF 10 RUNS BY VALIDATION (reference reporting)"),
        f"compression: {compression['distilled_samples']} itemset graphs vs {compression['full_samples']} graphs; "
        f"{compression['distilled_bytes']} vs {compression['full_bytes']} bytes (storage, {compression['bytes']:.1f}x), "
        f"{compression['distilled_bytes_compact']} vs {compression['full_bytes_compact']} (compact, "
        f"{compression['bytes_compact']:.1f}x); codebook {compression['codebook_bytes']} bytes",
        "",
        f"{'set':<20} {'graphs':>8} {'bytes':>10}  {auc:<18} {'accuracy':<18}" + (f" {extra:<18}" if extra else ""),
    ]
    for name, res in results.items():
        g, b = res["graphs"], res["bytes"]
        ext = (f" {_fmt_stat(res[extra]):<18}" if extra in res else f" {'–':<18}") if extra else ""
        lines.append(f"{name:<20} {'–' if g is None else format(g, '.4g'):>8} {'–' if b is None else format(b, '.0f'):>10}"
                     f"  {_fmt_stat(res['roc_auc']):<18} {_fmt_stat(res['accuracy']):<18}" + ext)
    lines.append("floors (free): node_count scores a graph by its size (sign per class from the training split), "
                 "untrained is the GNN at initialisation, majority predicts the largest training class")
    return "\n".join(lines)


#: config keys renamed since artifacts were first written (old name -> new name), so older TreeSets still evaluate
RENAMED_FIELDS = {"symmetrize": "symmetrise"}


def stored_config(artifact: TreeSet) -> MirageConfig:
    """The :class:`MirageConfig` a TreeSet was distilled with."""
    values = {RENAMED_FIELDS.get(k, k): v for k, v in (artifact.meta.get("config") or {}).items()}
    return from_dict(MirageConfig, values)


def _as_pack(graphs, what: str) -> PackedGraphs:
    if isinstance(graphs, PackedGraphs):
        return graphs
    try:
        return PackedGraphs.from_graphs(graphs)
    except (TypeError, ValueError, AttributeError) as exc:
        raise TypeError(f"{what} must be a PyG dataset, a list of Data with graph labels y, or PackedGraphs: "
                        f"{exc}") from None


def evaluate_artifact(artifact: TreeSet, data=None, *, model: str | None = None, runs: int | None = None,
                      data_root=None, device="auto", seed: int = 0, baselines: bool = False, **overrides) -> dict:
    """Evaluate a TreeSet on real graphs: the split of its catalogue dataset it was distilled from, or ``data`` =
    ``(train, val, test)`` (each a PyG dataset, a list of ``Data`` or :class:`PackedGraphs`, in the features the set
    was distilled from) for a set made from your own graphs.

    ``model``: gcn, gin (default), gat or sage; ``runs``: seeds (default 10); ``overrides``: :class:`TreeEvalConfig`
    fields (e.g. ``epochs``, ``sampling``, ``report``). With ``baselines`` also trains on the full training
    split and on random / herding selections (see :func:`evaluate_treeset`). An OGB dataset is evaluated on its
    scaffold split, and every set's results add OGB's Evaluator score (``ogb_rocauc``).
    """
    if not isinstance(artifact, TreeSet):
        raise TypeError(f"artifact must be a TreeSet, got {type(artifact).__name__}")
    source = artifact.meta.get("source", {})
    values = dict(overrides)
    if runs is not None:
        values["runs"] = runs
    depth = int(artifact.meta["budget"]["depth"])
    if data is not None:
        if not (isinstance(data, (tuple, list)) and len(data) == 3):
            raise TypeError("data must be (train, val, test) graphs for a TreeSet")
        train, val, test = (_as_pack(g, what) for g, what in zip(data, ("train", "val", "test")))
        K = int((artifact.meta.get("extra") or {}).get("num_classes") or int(train.y.max()) + 1)
        cfg = tree_eval_config(None, model or "gin", depth, values)
        return evaluate_treeset(artifact, train, val, test, cfg, num_classes=K, device=device, seed=seed,
                                baselines=baselines)
    from condense.data import canonical_name

    try:
        name = canonical_name(source.get("name") or "")
    except ValueError:
        raise ValueError(f"this TreeSet was distilled from your own graphs (source {source.get('name')!r}): pass "
                         "data=(train, val, test) graphs to evaluate it") from None
    from condense.graph.data import load_graph_set
    from condense.graph.ogb import is_ogb

    mcfg = stored_config(artifact)
    graphs = load_graph_set(name, data_root=data_root)
    if source.get("fingerprint") and graphs.source["fingerprint"] != source["fingerprint"]:
        raise ValueError(f"the {name} files under the data root differ from the ones this TreeSet was "
                         f"distilled from (fingerprint {graphs.source['fingerprint']} vs {source['fingerprint']})")
    pack, K, _ = prepared_pack(graphs, mcfg)
    train, val, test = split_for(pack.y, mcfg, train_per_class=source.get("train_per_class"),
                                 seed=int(source.get("subsample_seed", 0)), official=graphs.split, dataset=name)
    if source.get("train_index_sha") and _index_digest(train) != source["train_index_sha"]:
        raise ValueError("the training split rebuilt for evaluation differs from the one the TreeSet was distilled from")
    cfg = tree_eval_config(name, model or "gin", depth, values)
    sel = lambda idx: pack.select(torch.as_tensor(idx))  # noqa: E731
    extra_metric = None
    if is_ogb(name):
        from condense.graph.ogb import graph_metric

        extra_metric = graph_metric(name)
    return evaluate_treeset(artifact, sel(train), sel(val), sel(test), cfg, num_classes=K, device=device, seed=seed,
                            baselines=baselines, extra_metric=extra_metric)

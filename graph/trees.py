"""Computation trees: exact identities for every node of a graph set, tree sizes and materialisation.

The depth-L computation tree of node v (Mirage, Gupta et al., ICLR 2024, §3) is its backtracking unfolding:
the root carries v's node code, every tree node at depth < L gets one child per graph neighbour (the parent
included), and each tree edge carries the code of the graph edge it unfolds. Two nodes have isomorphic
depth-L unfoldings (as labelled rooted unordered trees) iff the iterated relabelling below gives them the
same colour, so trees are identified without ever being built:

.. math::
    c^0_v = \\mathrm{code}(v), \\qquad
    c^l_v = \\mathrm{rank}_l\\big(\\mathrm{code}(v),\\ \\{\\!\\{(e_{uv},\\, c^{l-1}_u) : u \\in N(v)\\}\\!\\}\\big),
    \\qquad \\mathrm{tree\\_id}(v) = c^L_v,

where :math:`\\mathrm{rank}_l` is the dense id of the key in a dictionary shared by the whole dataset in
round l. The ranking is exact (sorted unique over integer rows, no hashing), vectorised over every node of
every graph at once, and costs :math:`O(L\\,|E| \\log |E|)`. Every round's dictionary is kept as a
:class:`KeyTable` (colour -> node code, [(edge code, child colour)] in key order): it is the grammar the
mined trees are materialised from, and it gives the tree sizes without materialising,
:math:`n_0(c) = 1,\\ n_l(c) = 1 + \\sum_{(e, c') \\in \\mathrm{key}(c)} n_{l-1}(c')`.

Node codes come from discrete features (one-hot labels or integer tuples, ``exact``), node degree
(``degree``), or an explicit discretiser for continuous attributes (``quantile`` bins or ``kmeans`` codes:
a library extension, the reference supports discrete features only); edge codes likewise, or one constant
code without edge features. Graph hygiene (undirected, no self-loops, no duplicate edges) is checked by
:func:`clean_edges` before relabelling.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from condense.runtime import generator

#: Integer keys are packed while their range product stays below this bound (int64 with headroom).
PACK_LIMIT = 2**62
#: Tree node counts n_l(c) must stay below this bound (int64 with headroom).
SIZE_LIMIT = 2**62

DISCRETISERS = ("exact", "degree", "quantile", "kmeans", "constant")


# -- small vectorised helpers -------------------------------------------------------------------------
def expand_ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenated ``arange(s, s + n)`` for every (s, n): the index gather of a batch of segments."""
    counts = counts.long()
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long, device=starts.device)
    seg_start = torch.cumsum(counts, 0) - counts
    shift = torch.repeat_interleave(starts.long() - seg_start, counts, output_size=total)
    return torch.arange(total, device=starts.device) + shift


def dense_rank_rows(columns: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Dense lexicographic rank of the integer rows ``zip(*columns)``: ``(ids [n], number of distinct rows)``.

    Equal rows get equal ids, and ids follow the lexicographic order of the rows; nothing is hashed, so two
    different rows never share an id, whatever the alphabet. Each column is shifted to start at 0 (its range is
    measured with Python integers, so extreme values such as float bit patterns cannot wrap around), or replaced
    by its dense rank when the range alone reaches :data:`PACK_LIMIT`. Columns are then packed into one int64 key
    while the product of the ranges stays below :data:`PACK_LIMIT`. When the next column would overflow it, the
    key so far and, if still needed, the column are replaced by their dense ranks (at most n values each, order
    kept); past ~2^31 rows, where even that cannot be packed, the pair is ranked as two-column rows.
    """
    if not columns:
        raise ValueError("dense_rank_rows needs at least one column")
    n = columns[0].numel()
    device = columns[0].device
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=device), 0

    def rank(t: torch.Tensor) -> tuple[torch.Tensor, int]:
        values, ids = torch.unique(t, return_inverse=True)
        return ids, values.numel()

    acc: torch.Tensor | None = None
    acc_range = 1
    for col in columns:
        col = col.long().reshape(-1)
        if col.numel() != n:
            raise ValueError(f"dense_rank_rows: columns have {n} and {col.numel()} entries")
        lo, hi = int(col.min()), int(col.max())
        width = hi - lo + 1  # exact (Python int)
        if width >= PACK_LIMIT:
            col, width = rank(col)
        else:
            col = col - lo  # the true difference is < 2^62, so int64 arithmetic gives it exactly
        if acc is None:
            acc, acc_range = col, width
            continue
        if acc_range * width >= PACK_LIMIT:
            acc, acc_range = rank(acc)
        if acc_range * width >= PACK_LIMIT:
            col, width = rank(col)
        if acc_range * width >= PACK_LIMIT:
            acc, acc_range = rank_pairs(acc, col)
            continue
        acc = acc * width + col
        acc_range *= width
    return rank(acc)


def rank_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Dense lexicographic rank of the rows ``(a[i], b[i])`` by a row-wise unique (no packing)."""
    values, ids = torch.unique(torch.stack([a, b], 1), dim=0, return_inverse=True)
    return ids, values.shape[0]


def first_index(ids: torch.Tensor, num: int) -> torch.Tensor:
    """For each id in ``range(num)`` the smallest position holding it (every id must occur)."""
    pos = torch.arange(ids.numel(), device=ids.device)
    out = torch.full((num,), ids.numel(), dtype=torch.long, device=ids.device)
    return out.scatter_reduce(0, ids, pos, reduce="amin")


# -- graph hygiene --------------------------------------------------------------------------------------
def clean_edges(
    edge_index: torch.Tensor,
    num_nodes: int,
    edge_code: torch.Tensor | None = None,
    *,
    symmetrise: bool = False,
    remove_self_loops: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check and normalise a (batched) undirected graph: returns ``(edge_index, edge_code)`` sorted by (u, v).

    * self-loops raise ``ValueError`` (a self-loop would make a node its own child in the unfolding) unless
      ``remove_self_loops=True`` drops them;
    * duplicate edges are coalesced; duplicates carrying different edge codes raise;
    * the graph must be undirected: every (u, v) needs (v, u) with the same edge code. A missing reverse edge
      raises unless ``symmetrise=True`` adds it (with the same code).
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    device = edge_index.device
    src, dst = edge_index[0].long(), edge_index[1].long()
    code = torch.zeros_like(src) if edge_code is None else edge_code.long().reshape(-1)
    if code.numel() != src.numel():
        raise ValueError(f"edge_code has {code.numel()} entries for {src.numel()} edges")
    if src.numel() and (int(torch.minimum(src.min(), dst.min())) < 0 or int(torch.maximum(src.max(), dst.max())) >= num_nodes):
        raise ValueError(f"edge_index refers to nodes outside [0, {num_nodes})")
    loops = src == dst
    if bool(loops.any()):
        if not remove_self_loops:
            v = int(src[loops][0])
            raise ValueError(
                f"the graph has {int(loops.sum())} self-loop(s) (first at node {v}); a self-loop would make a node "
                "its own child in its computation tree. Pass remove_self_loops=True to drop them"
            )
        keep = ~loops
        src, dst, code = src[keep], dst[keep], code[keep]
    n = max(int(num_nodes), 1)

    def coalesce(s, d, c):
        key = s * n + d
        order = torch.argsort(key, stable=True)
        key, s, d, c = key[order], s[order], d[order], c[order]
        new = torch.ones_like(key, dtype=torch.bool)
        new[1:] = key[1:] != key[:-1]
        same_pair_other_code = ~new & torch.cat([new.new_zeros(1), c[1:] != c[:-1]])
        if bool(same_pair_other_code.any()):
            i = int(same_pair_other_code.nonzero()[0])
            raise ValueError(f"edge ({int(s[i])}, {int(d[i])}) appears several times with different edge codes")
        return key[new], s[new], d[new], c[new]

    key, src, dst, code = coalesce(src, dst, code)
    rev = dst * n + src
    pos = torch.searchsorted(key, rev).clamp_max(max(key.numel() - 1, 0))
    has_rev = key[pos] == rev if key.numel() else torch.zeros(0, dtype=torch.bool, device=device)
    if bool((has_rev & (code[pos] != code)).any()):
        i = int((has_rev & (code[pos] != code)).nonzero()[0])
        raise ValueError(f"edge ({int(src[i])}, {int(dst[i])}) and its reverse carry different edge codes")
    if not bool(has_rev.all()):
        if not symmetrise:
            i = int((~has_rev).nonzero()[0])
            raise ValueError(
                f"the graph is directed: edge ({int(src[i])}, {int(dst[i])}) has no reverse edge "
                f"({int((~has_rev).sum())} such edges). Computation trees need undirected graphs; pass symmetrise=True"
            )
        miss = ~has_rev
        key, src, dst, code = coalesce(torch.cat([src, dst[miss]]), torch.cat([dst, src[miss]]), torch.cat([code, code[miss]]))
    return torch.stack([src, dst]), code


def degree(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """In-degree of every node (= degree for the undirected graphs :func:`clean_edges` returns)."""
    return torch.bincount(edge_index[1], minlength=num_nodes)


# -- discretisers ---------------------------------------------------------------------------------------
@dataclass
class Coding:
    """Integer codes for a set of feature rows, and the codebook mapping each code back to a feature row."""

    codes: torch.Tensor  # [N] int64, dense in [0, C)
    codebook: torch.Tensor  # [C, F] float


def _is_integral(x: torch.Tensor) -> bool:
    return not x.is_floating_point() or bool(torch.all(x == torch.round(x)))


def exact_codes(x: torch.Tensor, *, allow_float: bool = False, argument: str = "node_codes") -> Coding:
    """Each distinct feature row gets a dense code (rows ordered lexicographically); codebook = the rows.

    One-hot labels reduce to their argmax partition, integer tuples (OGB atoms) to their full tuple. Non-integer
    features raise unless ``allow_float=True``, which codes floats by exact value.
    """
    x = x.reshape(x.shape[0], -1)
    if x.is_floating_point() and bool(torch.isnan(x).any()):
        raise ValueError(f"{argument}='exact': the features contain NaN")
    if not _is_integral(x):
        if not allow_float:
            raise ValueError(
                f"{argument}='exact' needs discrete features, but they hold non-integer values; use {argument}="
                "'quantile' or 'kmeans' for continuous attributes, or allow_float_exact=True to code floats by exact value"
            )
        cols = [(x[:, j].double() + 0.0).view(torch.int64) for j in range(x.shape[1])]  # +0.0 merges -0.0 and 0.0
    else:
        cols = [x[:, j].long() for j in range(x.shape[1])]
    if not cols:  # no feature columns: one code
        return Coding(torch.zeros(x.shape[0], dtype=torch.long, device=x.device), torch.zeros(1, 0, device=x.device))
    codes, num = dense_rank_rows(cols)
    return Coding(codes, x[first_index(codes, num)].float())


def _member_means(x: torch.Tensor, codes: torch.Tensor, num: int) -> torch.Tensor:
    sums = torch.zeros(num, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, codes, x.double())
    counts = torch.bincount(codes, minlength=num).clamp_min(1).unsqueeze(1)
    return (sums / counts).to(torch.float32)


def quantile_codes(x: torch.Tensor, n_bins: int) -> Coding:
    """Per-dimension quantile bins (``n_bins`` each, edges from these rows); code = dense id of the bin tuple.

    The codebook row of a code is the mean feature vector of its rows. (Library extension: the reference
    supports discrete features only.)
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    x = x.reshape(x.shape[0], -1).float()
    if x.shape[0] == 0:
        return Coding(torch.zeros(0, dtype=torch.long, device=x.device), x.new_zeros(0, x.shape[1]))
    probs = torch.linspace(0, 1, n_bins + 1, device=x.device, dtype=torch.float64)[1:-1]
    cols = []
    for j in range(x.shape[1]):
        edges = torch.unique(torch.quantile(x[:, j].double(), probs)) if n_bins > 1 else x.new_zeros(0).double()
        cols.append(torch.bucketize(x[:, j].double(), edges, right=True))
    codes, num = dense_rank_rows(cols) if cols else (torch.zeros(x.shape[0], dtype=torch.long, device=x.device), 1)
    return Coding(codes, _member_means(x, codes, num))


def kmeans_codes(x: torch.Tensor, n_codes: int, *, seed: int = 0, standardize: bool = True) -> Coding:
    """Seeded k-means (k-means++ init, Lloyd iterations; scikit-learn) on the rows; code = cluster id.

    With ``standardize`` the clustering runs on per-dimension z-scores, so attributes on different scales weigh
    alike; the codebook row is the cluster's mean feature vector in the original units. Codes are renumbered
    densely in order of first occurrence-free sorted cluster ids (empty clusters are dropped). (Library
    extension: the reference supports discrete features only.)
    """
    from sklearn.cluster import KMeans

    if n_codes < 1:
        raise ValueError(f"n_codes must be >= 1, got {n_codes}")
    x = x.reshape(x.shape[0], -1).float()
    n = x.shape[0]
    if n == 0:
        return Coding(torch.zeros(0, dtype=torch.long, device=x.device), x.new_zeros(0, x.shape[1]))
    z = x.double()
    if standardize:
        z = (z - z.mean(0)) / z.std(0, unbiased=False).clamp_min(1e-12)
    k = min(n_codes, dense_rank_rows([z[:, j].view(torch.int64) for j in range(z.shape[1])])[1] if z.shape[1] else 1)
    km = KMeans(n_clusters=k, random_state=seed, n_init=1).fit(z.cpu().numpy())
    labels = torch.as_tensor(km.labels_, dtype=torch.long, device=x.device)
    used, codes = torch.unique(labels, return_inverse=True)
    return Coding(codes, _member_means(x, codes, used.numel()))


def degree_codes(deg: torch.Tensor, dim: int) -> Coding:
    """Code = node degree; codebook row = the one-hot degree feature of width ``dim`` the graphs also get."""
    if deg.numel() and int(deg.max()) >= dim:
        raise ValueError(f"degree_dim={dim} is too small for a node of degree {int(deg.max())}")
    return Coding(deg.long(), torch.eye(dim, device=deg.device))


def discretise(
    x: torch.Tensor | None,
    mode: str,
    *,
    num_rows: int,
    allow_float_exact: bool = False,
    n_bins: int = 4,
    n_codes: int = 16,
    seed: int = 0,
    deg: torch.Tensor | None = None,
    degree_dim: int = 0,
    argument: str = "node_codes",
) -> Coding:
    """Codes for ``num_rows`` feature rows ``x`` with discretiser ``mode`` (one of :data:`DISCRETISERS`).

    ``constant`` (and any mode given no features) gives every row code 0 with an empty codebook row.
    """
    if mode not in DISCRETISERS:
        raise ValueError(f"{argument} must be one of {DISCRETISERS}, got {mode!r}")
    if mode == "degree":
        if deg is None:
            raise ValueError(f"{argument}='degree' needs node degrees")
        return degree_codes(deg, degree_dim)
    if mode == "constant" or x is None:
        # features unused: one code, and a codebook row of width 0
        device = x.device if x is not None else (deg.device if deg is not None else None)
        return Coding(torch.zeros(num_rows, dtype=torch.long, device=device), torch.zeros(1, 0, device=device))
    if mode == "exact":
        return exact_codes(x, allow_float=allow_float_exact, argument=argument)
    if mode == "quantile":
        return quantile_codes(x, n_bins)
    return kmeans_codes(x, n_codes, seed=seed)


# -- tree identities ----------------------------------------------------------------------------------
@dataclass
class KeyTable:
    """Round-l dictionary: colour c -> (node code, [(edge code, child colour of round l-1)] in key order).

    Entries of colour c are ``edge[ptr[c]:ptr[c+1]]`` / ``child[ptr[c]:ptr[c+1]]``, sorted by (edge code, child
    colour); ``size[c]`` is the node count n_l(c) of the tree.
    """

    code: torch.Tensor
    ptr: torch.Tensor
    edge: torch.Tensor
    child: torch.Tensor
    size: torch.Tensor

    @property
    def num_colours(self) -> int:
        return self.code.numel()


@dataclass
class TreeArrays:
    """Materialised trees, concatenated: tree t owns nodes ``tree_ptr[t]:tree_ptr[t+1]`` in BFS order (root
    first, children in key order); ``parent`` is the position of the parent within the tree (-1 at the root)
    and ``edge_code`` lists the code of each non-root node's edge to its parent (n_t - 1 per tree)."""

    tree_ptr: torch.Tensor
    node_code: torch.Tensor
    parent: torch.Tensor
    edge_code: torch.Tensor

    @property
    def num_trees(self) -> int:
        return self.tree_ptr.numel() - 1

    def tree_of_node(self) -> torch.Tensor:
        counts = self.tree_ptr[1:] - self.tree_ptr[:-1]
        return torch.repeat_interleave(torch.arange(self.num_trees, device=counts.device), counts)

    def edges_to_parent(self) -> torch.Tensor:
        """Global ``[2, n - T]`` edge index child -> parent over the concatenated nodes (messages flow to roots)."""
        nonroot = (self.parent >= 0).nonzero().squeeze(1)
        par = self.tree_ptr[self.tree_of_node()[nonroot]] + self.parent[nonroot]
        return torch.stack([nonroot, par])

    def root_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.node_code.numel(), dtype=torch.bool, device=self.node_code.device)
        mask[self.tree_ptr[:-1]] = True
        return mask


@dataclass
class ComputationTrees:
    """Depth-L tree ids (``colour`` = c^L per node) and the per-round key tables (``tables[l-1]`` = round l)."""

    depth: int
    colour: torch.Tensor
    degree: torch.Tensor
    tables: list[KeyTable] = field(default_factory=list)
    num_codes: int = 0

    @property
    def num_trees(self) -> int:
        """Distinct depth-L trees over the whole graph set."""
        return self.tables[-1].num_colours

    def sizes(self, colours: torch.Tensor | None = None) -> torch.Tensor:
        """Node counts n_L of depth-L colours (all of them by default)."""
        size = self.tables[-1].size
        return size if colours is None else size[colours]

    def materialise(self, colours: torch.Tensor) -> TreeArrays:
        """Expand depth-L colours top-down from the key tables into :class:`TreeArrays` (identical colours give
        identical arrays)."""
        L = self.depth
        colours = colours.long().reshape(-1)
        device = colours.device
        T = colours.numel()
        trees, parents, edges, codes = [], [], [], []
        lvl_tree = torch.arange(T, device=device)
        lvl_col = colours
        lvl_parent = torch.full((T,), -1, dtype=torch.long, device=device)
        lvl_edge = torch.full((T,), -1, dtype=torch.long, device=device)
        offset = 0
        for k in range(L + 1):
            rnd = L - k  # colours of this level belong to round `rnd`
            lvl_code = self.tables[rnd - 1].code[lvl_col] if rnd >= 1 else lvl_col
            trees.append(lvl_tree)
            parents.append(lvl_parent)
            edges.append(lvl_edge)
            codes.append(lvl_code)
            if rnd == 0:
                break
            table = self.tables[rnd - 1]
            counts = table.ptr[lvl_col + 1] - table.ptr[lvl_col]
            entry = expand_ranges(table.ptr[lvl_col], counts)
            total = entry.numel()
            lvl_parent = torch.repeat_interleave(torch.arange(offset, offset + lvl_col.numel(), device=device), counts,
                                                 output_size=total)
            lvl_tree = torch.repeat_interleave(lvl_tree, counts, output_size=total)
            offset += lvl_col.numel()
            lvl_col = table.child[entry]
            lvl_edge = table.edge[entry]
        tree = torch.cat(trees)
        order = torch.argsort(tree, stable=True)  # levels are concatenated, so this is BFS order per tree
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=device)
        counts = torch.bincount(tree, minlength=T)
        tree_ptr = torch.zeros(T + 1, dtype=torch.long, device=device)
        tree_ptr[1:] = torch.cumsum(counts, 0)
        parent_global = torch.cat(parents)[order]
        tree_sorted = tree[order]
        parent = torch.where(parent_global >= 0, inverse[parent_global.clamp_min(0)] - tree_ptr[tree_sorted], -1)
        edge = torch.cat(edges)[order]
        return TreeArrays(tree_ptr, torch.cat(codes)[order], parent, edge[parent >= 0])


def computation_trees(
    node_code: torch.Tensor,
    edge_index: torch.Tensor,
    depth: int,
    edge_code: torch.Tensor | None = None,
) -> ComputationTrees:
    """Exact depth-``depth`` computation-tree ids of every node of a (batched) undirected graph.

    ``edge_index`` must be clean (symmetric, no self-loops, no duplicates: see :func:`clean_edges`); node
    indices are global over the whole graph set, so the dictionaries are shared by every graph. Round l
    (1..L) maps each (edge code, colour of round l-1) pair to a dense pair id, sorts every node's incoming
    pairs, buckets nodes by degree (the degree is part of the key, so buckets never share a colour) and
    dense-ranks the rows (node code, sorted pair ids) of each bucket. Colours are ordered by (degree, node
    code, pair sequence), so they depend on nothing but the data.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth (L) must be an integer >= 1, got {depth!r}")
    node_code = node_code.long().reshape(-1)
    N = node_code.numel()
    device = node_code.device
    src, dst = edge_index[0].long(), edge_index[1].long()
    ecode = torch.zeros_like(src) if edge_code is None else edge_code.long().reshape(-1)
    num_codes = int(node_code.max()) + 1 if N else 0
    if N and int(node_code.min()) < 0:
        raise ValueError("node codes must be non-negative")
    by_dst = torch.argsort(dst, stable=True)
    src, dst, ecode = src[by_dst], dst[by_dst], ecode[by_dst]
    deg = torch.bincount(dst, minlength=N)
    ptr = torch.zeros(N + 1, dtype=torch.long, device=device)
    ptr[1:] = torch.cumsum(deg, 0)
    # degree buckets, fixed across rounds
    node_by_deg = torch.argsort(deg, stable=True)
    bucket_deg, bucket_size = torch.unique_consecutive(deg[node_by_deg], return_counts=True)
    bucket_bounds = [0] + torch.cumsum(bucket_size, 0).tolist()
    bucket_deg = bucket_deg.tolist()

    tables: list[KeyTable] = []
    prev = node_code
    prev_size = torch.ones(num_codes, dtype=torch.long, device=device)
    for _ in range(depth):
        pair_id, P = dense_rank_rows([ecode, prev[src]])  # dense ids of (edge code, colour), lexicographic
        rep_pair = first_index(pair_id, P)
        pair_edge, pair_child = ecode[rep_pair], prev[src[rep_pair]]
        if N * max(P, 1) < PACK_LIMIT:  # each node's pairs, sorted, in its CSR segment
            order = torch.argsort(dst * P + pair_id)
        else:  # the same order without packing
            by_pair = torch.argsort(pair_id, stable=True)
            order = by_pair[torch.argsort(dst[by_pair], stable=True)]
        seq = pair_id[order]
        colour = torch.empty(N, dtype=torch.long, device=device)
        offset = 0
        for b, d in enumerate(bucket_deg):
            nodes = node_by_deg[bucket_bounds[b]:bucket_bounds[b + 1]]
            cols = [node_code[nodes]] + [seq[ptr[nodes] + j] for j in range(d)]
            ids, num = dense_rank_rows(cols)
            colour[nodes] = ids + offset
            offset += num
        rep = first_index(colour, offset)
        rep_deg = deg[rep]
        tptr = torch.zeros(offset + 1, dtype=torch.long, device=device)
        tptr[1:] = torch.cumsum(rep_deg, 0)
        entries = seq[expand_ranges(ptr[rep], rep_deg)]
        child = pair_child[entries]
        owner = torch.repeat_interleave(torch.arange(offset, device=device), rep_deg, output_size=entries.numel())
        size = _tree_sizes(prev_size, child, owner, offset)
        tables.append(KeyTable(node_code[rep], tptr, pair_edge[entries], child, size))
        prev, prev_size = colour, size
    return ComputationTrees(depth=depth, colour=prev, degree=deg, tables=tables, num_codes=num_codes)


def _tree_sizes(prev_size: torch.Tensor, child: torch.Tensor, owner: torch.Tensor, num: int) -> torch.Tensor:
    """n_l(c) = 1 + sum of the children's n_{l-1}, in int64; raises ``OverflowError`` past 2^62 nodes."""
    size = torch.ones(num, dtype=torch.long, device=child.device).index_add_(0, owner, prev_size[child])
    approx = torch.ones(num, dtype=torch.float64, device=child.device).index_add_(0, owner, prev_size[child].double())
    if num and float(approx.max()) >= float(SIZE_LIMIT):
        raise OverflowError(
            f"a computation tree has about {float(approx.max()):.3g} nodes, past int64's safe range; use a smaller depth"
        )
    return size


def synthetic_graph_set(num_graphs: int, nodes_per_graph: int, *, extra_edges: int = 2, node_labels: int = 20,
                        edge_labels: int = 3, seed: int = 0, device: str | torch.device = "cpu"):
    """A molecule-like random graph set for timing tree ids: every graph is a random recursive tree on
    ``nodes_per_graph`` nodes (node i > 0 joins a uniformly drawn earlier node) plus ``extra_edges`` random
    chords, with uniform node labels; an edge's label is (u + v) mod ``edge_labels``, so a chord that repeats
    an edge repeats its label too. Returns ``(node_code, edge_index, edge_code)`` already passed
    through :func:`clean_edges` (symmetric, no self-loops, no duplicates), global node ids, built without a
    per-graph loop."""
    for key, value, low in (("num_graphs", num_graphs, 1), ("nodes_per_graph", nodes_per_graph, 2),
                            ("extra_edges", extra_edges, 0), ("node_labels", node_labels, 1),
                            ("edge_labels", edge_labels, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
    gen = generator(seed, "cpu")  # drawn on the CPU so a seed gives the same set on every device
    G, n = num_graphs, nodes_per_graph
    base = (torch.arange(G) * n).unsqueeze(1)
    child = torch.arange(1, n).expand(G, n - 1)
    parent = (torch.rand(G, n - 1, generator=gen) * child).long()  # uniform over 0..i-1
    chords = torch.randint(0, n, (2, G, extra_edges), generator=gen)
    src = torch.cat([(child + base).reshape(-1), (chords[0] + base).reshape(-1)])
    dst = torch.cat([(parent + base).reshape(-1), (chords[1] + base).reshape(-1)])
    code = (src + dst) % edge_labels
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]).to(device)
    edge_code = torch.cat([code, code]).to(device)
    node_code = torch.randint(0, node_labels, (G * n,), generator=gen).to(device)
    edge_index, edge_code = clean_edges(edge_index, G * n, edge_code, remove_self_loops=True)
    return node_code, edge_index, edge_code

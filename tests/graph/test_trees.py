"""Computation-tree ids, key tables, sizes, materialisation, graph hygiene and discretisers."""
from __future__ import annotations

import random

import pytest
import torch

from condense.graph.trees import (
    clean_edges,
    computation_trees,
    dense_rank_rows,
    discretise,
    exact_codes,
    expand_ranges,
    kmeans_codes,
    quantile_codes,
    rank_pairs,
    synthetic_graph_set,
)


def random_graph_set(n_graphs: int, seed: int):
    """Random small graphs (2-9 nodes, node codes {0,1,2}, edge codes {0,1}) plus a single-node graph, a graph
    with isolated nodes and a multi-component graph, packed with global node ids."""
    rng = random.Random(seed)
    graphs = []
    for _ in range(n_graphs):
        n = rng.randint(2, 9)
        p = rng.uniform(0.15, 0.6)
        edges = {(u, v): rng.randint(0, 1) for u in range(n) for v in range(u + 1, n) if rng.random() < p}
        graphs.append(([rng.randint(0, 2) for _ in range(n)], edges))
    graphs.append(([1], {}))  # single node
    graphs.append(([0, 1, 2, 0], {(0, 1): 0}))  # two isolated nodes
    graphs.append(([0, 0, 1, 1, 2, 2], {(0, 1): 0, (1, 2): 1, (3, 4): 1, (4, 5): 0}))  # two components
    codes, src, dst, ecode, graph_of = [], [], [], [], []
    offset = 0
    for g, (c, edges) in enumerate(graphs):
        codes += c
        graph_of += [g] * len(c)
        for (u, v), e in edges.items():
            src += [u + offset, v + offset]
            dst += [v + offset, u + offset]
            ecode += [e, e]
        offset += len(c)
    return (torch.tensor(codes), torch.tensor([src, dst], dtype=torch.long).reshape(2, -1), torch.tensor(ecode),
            torch.tensor(graph_of))


def canonical_strings(codes, edge_index, edge_code, depth):
    """The backtracking unfolding of every node as a canonical string: code(sorted 'edge:child' strings)."""
    n = codes.numel()
    nbrs = [[] for _ in range(n)]
    for (u, v), e in zip(edge_index.t().tolist(), edge_code.tolist()):
        nbrs[v].append((u, e))
    c = codes.tolist()

    def canon(v, d):
        if d == 0 or not nbrs[v]:
            return f"{c[v]}"
        return f"{c[v]}(" + ",".join(sorted(f"{e}:{canon(u, d - 1)}" for u, e in nbrs[v])) + ")"

    return [canon(v, depth) for v in range(n)]


def tree_string(arrays, t, depth):
    """Re-canonicalise materialised tree t (as a rooted tree from its parent array)."""
    a, b = int(arrays.tree_ptr[t]), int(arrays.tree_ptr[t + 1])
    kids = [[] for _ in range(b - a)]
    for p in range(1, b - a):
        kids[int(arrays.parent[a + p])].append((p, int(arrays.edge_code[a - t + p - 1])))

    def canon(p, d):
        code = int(arrays.node_code[a + p])
        if d == 0 or not kids[p]:
            return f"{code}"
        return f"{code}(" + ",".join(sorted(f"{e}:{canon(q, d - 1)}" for q, e in kids[p])) + ")"

    return canon(0, depth)


@pytest.fixture(scope="module")
def graph_set():
    codes, ei, ec, graph_of = random_graph_set(300, seed=0)
    ei, ec = clean_edges(ei, codes.numel(), ec)
    return codes, ei, ec, graph_of


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_tree_ids_equal_canonical_strings(graph_set, depth):
    codes, ei, ec, _ = graph_set
    trees = computation_trees(codes, ei, depth, ec)
    strings = canonical_strings(codes, ei, ec, depth)
    colour_of = {}
    string_of = {}
    for v, (s, c) in enumerate(zip(strings, trees.colour.tolist())):
        assert colour_of.setdefault(s, c) == c, f"node {v}: equal unfoldings got different ids"
        assert string_of.setdefault(c, s) == s, f"node {v}: different unfoldings share id {c}"
    assert trees.num_trees == len(colour_of)
    assert sorted(colour_of.values()) == list(range(trees.num_trees))  # dense ids


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_materialised_trees_round_trip(graph_set, depth):
    codes, ei, ec, _ = graph_set
    trees = computation_trees(codes, ei, depth, ec)
    strings = canonical_strings(codes, ei, ec, depth)
    rep = {}
    for v, c in enumerate(trees.colour.tolist()):
        rep.setdefault(c, v)
    colours = torch.arange(trees.num_trees)
    arrays = trees.materialise(colours)
    sizes = trees.sizes(colours)
    assert torch.equal(arrays.tree_ptr.diff(), sizes)
    for c in range(trees.num_trees):
        assert tree_string(arrays, c, depth) == strings[rep[c]]
    # BFS layout: the root first, every parent before its children, levels in order
    assert bool((arrays.parent[arrays.tree_ptr[:-1]] == -1).all())
    local = torch.arange(arrays.parent.numel()) - arrays.tree_ptr[arrays.tree_of_node()]
    nonroot = arrays.parent >= 0
    assert bool((arrays.parent[nonroot] < local[nonroot]).all())
    assert arrays.edge_code.numel() == arrays.parent.numel() - trees.num_trees


def test_materialise_is_deterministic_and_sizes_follow_recursion():
    # path a-b-c at depth 2: b unfolds to b(a(b), c(b)), n_2 = 1 + n_1(a) + n_1(c) = 1 + 2 + 2 = 5;
    # a unfolds to a(b(a, c)), n_2 = 1 + n_1(b) = 1 + 3 = 4
    codes = torch.tensor([0, 1, 2])
    ei, ec = clean_edges(torch.tensor([[0, 1], [1, 2]]).t().contiguous(), 3, torch.tensor([0, 1]), symmetrise=True)
    trees = computation_trees(codes, ei, 2, ec)
    assert trees.sizes(trees.colour).tolist() == [4, 5, 4]
    twice = trees.materialise(trees.colour[[1, 1]])
    n = int(twice.tree_ptr[1])
    assert torch.equal(twice.node_code[:n], twice.node_code[n:])
    assert torch.equal(twice.parent[:n], twice.parent[n:])
    # b's tree in BFS order with children in key order (edge code, child colour): b; a (edge 0), c (edge 1); b, b
    assert twice.node_code[:n].tolist() == [1, 0, 2, 1, 1]
    assert twice.parent[:n].tolist() == [-1, 0, 0, 1, 2]
    assert twice.edge_code[:4].tolist() == [0, 1, 0, 1]


def test_isolated_nodes_get_the_one_node_tree():
    codes = torch.tensor([0, 0, 1])
    ei, ec = clean_edges(torch.tensor([[0], [1]]), 3, symmetrise=True)
    trees = computation_trees(codes, ei, 3, ec)
    assert trees.degree.tolist() == [1, 1, 0]
    assert trees.sizes(trees.colour[2:]).tolist() == [1]
    arrays = trees.materialise(trees.colour[2:])
    assert arrays.node_code.tolist() == [1] and arrays.parent.tolist() == [-1] and arrays.edge_code.numel() == 0


def test_size_overflow_raises():
    n = 60  # complete graph: n_l = 1 + (n - 1) n_{l-1} passes 2^62 by depth 11
    u, v = torch.triu_indices(n, n, 1)
    ei, ec = clean_edges(torch.stack([u, v]), n, symmetrise=True)
    trees = computation_trees(torch.zeros(n, dtype=torch.long), ei, 5, ec)
    assert int(trees.sizes()[0]) == 1 + 59 + 59**2 + 59**3 + 59**4 + 59**5
    with pytest.raises(OverflowError, match="smaller depth"):
        computation_trees(torch.zeros(n, dtype=torch.long), ei, 11, ec)


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        computation_trees(torch.zeros(2, dtype=torch.long), torch.tensor([[0, 1], [1, 0]]), 0)


def test_dense_rank_rows_is_lexicographic_even_when_keys_need_reranking():
    g = torch.Generator().manual_seed(0)
    big = 2**40  # three columns of range 2^40 cannot share one int64 key
    cols = [torch.randint(0, 3, (500,), generator=g) * big // 3 for _ in range(3)]
    cols[1][::7] = big - 1
    ids, num = dense_rank_rows(cols)
    rows = list(zip(*(c.tolist() for c in cols)))
    ordered = sorted(set(rows))
    assert num == len(ordered)
    assert ids.tolist() == [ordered.index(r) for r in rows]


def test_dense_rank_rows_is_exact_for_any_alphabet():
    """Float bit patterns (negative and positive values span the whole int64 range) in many columns: the key
    needs re-ranking of both the prefix and the column (the ENZYMES k-means case), and ids stay lexicographic."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 21, generator=g, dtype=torch.float64)
    x[::5] = x[1::5]  # duplicate rows
    x[3, 4] = 0.0
    x[7, 4] = -0.0
    cols = [x[:, j].view(torch.int64) for j in range(21)]
    wide = torch.randint(0, 2**55, (400,), generator=g)  # 400 distinct rows x 2^55 values cannot share a key
    for columns in (cols, cols[:1] + [wide] + cols[1:3]):
        ids, num = dense_rank_rows(columns)
        rows = list(zip(*(c.tolist() for c in columns)))
        ordered = sorted(set(rows))
        assert num == len(ordered)
        assert ids.tolist() == [ordered.index(r) for r in rows]
    a = torch.tensor([2**62, -(2**63), 5, 2**62, 5])
    b = torch.tensor([1, 2**63 - 1, -7, 1, -8])
    ids, num = rank_pairs(a, b)
    assert ids.tolist() == [3, 0, 2, 3, 1] and num == 4


def test_large_alphabets_give_collision_free_tree_ids():
    """Continuous attributes through k-means (many columns, negative values), a sparse node alphabet and edge
    codes near 2^50: tree ids still equal the canonical strings of the unfoldings."""
    g = torch.Generator().manual_seed(2)
    coding = kmeans_codes(torch.randn(3000, 21, generator=g) - 0.5, 12, seed=0)
    assert coding.codes.unique().numel() == 12
    codes, ei, ec, _ = random_graph_set(60, seed=3)
    ei, ec = clean_edges(ei, codes.numel(), ec)
    trees = computation_trees(codes * 1000 + 7, ei, 3, ec * 2**50 + 3)
    strings = canonical_strings(codes, ei, ec, 3)
    colour = trees.colour.tolist()
    pairs = set(zip(colour, strings))
    assert len(pairs) == len(set(colour)) == len(set(strings))


def test_unpacked_fallbacks_give_the_same_tree_ids(monkeypatch):
    """With a tiny packing limit every key goes through the re-ranking and row-unique fallbacks: same colours."""
    import condense.graph.trees as trees_module

    codes, ei, ec, _ = random_graph_set(80, seed=4)
    ei, ec = clean_edges(ei, codes.numel(), ec)
    packed = computation_trees(codes, ei, 3, ec)
    monkeypatch.setattr(trees_module, "PACK_LIMIT", 16)
    unpacked = computation_trees(codes, ei, 3, ec)
    assert torch.equal(packed.colour, unpacked.colour)
    for a, b in zip(packed.tables, unpacked.tables):
        assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("code", "ptr", "edge", "child", "size"))


def test_expand_ranges():
    assert expand_ranges(torch.tensor([5, 0, 2]), torch.tensor([2, 0, 3])).tolist() == [5, 6, 2, 3, 4]


# -- hygiene ------------------------------------------------------------------------------------------
def test_self_loops_raise_or_are_removed():
    ei = torch.tensor([[0, 1, 1], [1, 0, 1]])
    with pytest.raises(ValueError, match="self-loop.*remove_self_loops=True"):
        clean_edges(ei, 2)
    out, _ = clean_edges(ei, 2, remove_self_loops=True)
    assert out.tolist() == [[0, 1], [1, 0]]


def test_directed_input_raises_or_is_symmetrised():
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="directed.*symmetrise=True"):
        clean_edges(ei, 3, torch.tensor([0, 1]))
    out, code = clean_edges(ei, 3, torch.tensor([0, 1]), symmetrise=True)
    assert out.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert code.tolist() == [0, 0, 1, 1]


def test_duplicates_are_coalesced_and_conflicting_codes_raise():
    ei = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]])
    out, code = clean_edges(ei, 2, torch.tensor([3, 3, 3, 3]))
    assert out.tolist() == [[0, 1], [1, 0]] and code.tolist() == [3, 3]
    with pytest.raises(ValueError, match="different edge codes"):
        clean_edges(ei, 2, torch.tensor([3, 2, 3, 3]))
    with pytest.raises(ValueError, match="reverse carry different"):
        clean_edges(torch.tensor([[0, 1], [1, 0]]), 2, torch.tensor([0, 1]))


# -- discretisers ---------------------------------------------------------------------------------------
def test_exact_codes_of_one_hot_rows_are_the_argmax_partition():
    labels = torch.tensor([2, 0, 2, 1, 0])
    coding = exact_codes(torch.nn.functional.one_hot(labels, 4).float())
    assert coding.codes.tolist() == [0, 2, 0, 1, 2]  # rows in lexicographic order: 0010 < 0100 < 1000
    assert torch.equal(coding.codebook[coding.codes], torch.nn.functional.one_hot(labels, 4).float())


def test_continuous_features_need_a_discretiser():
    x = torch.tensor([[0.5, 1.0], [0.25, 1.0], [0.5, 1.0]])
    with pytest.raises(ValueError, match="node_codes='exact'.*quantile.*kmeans.*allow_float_exact"):
        discretise(x, "exact", num_rows=3)
    coding = discretise(x, "exact", num_rows=3, allow_float_exact=True)
    assert coding.codes.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="edge_codes must be one of"):
        discretise(x, "nearest", num_rows=3, argument="edge_codes")


def test_quantile_codes_bin_each_dimension_and_average_members():
    x = torch.tensor([[0.0, 10.0], [1.0, 10.0], [2.0, 20.0], [3.0, 20.0]])
    coding = quantile_codes(x, 2)  # median split per dimension: (0,1 | 2,3) and (10 | 20)
    assert coding.codes.tolist() == [0, 0, 1, 1]
    assert torch.allclose(coding.codebook, torch.tensor([[0.5, 10.0], [2.5, 20.0]]))


def test_kmeans_codes_are_seeded_and_codebook_rows_are_cluster_means():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 3, generator=g) + 10, torch.randn(30, 3, generator=g) - 10])
    a, b = kmeans_codes(x, 2, seed=1), kmeans_codes(x, 2, seed=1)
    assert torch.equal(a.codes, b.codes)
    assert a.codes[:30].unique().numel() == 1 and a.codes[30:].unique().numel() == 1
    for c in range(2):
        assert torch.allclose(a.codebook[c], x[a.codes == c].mean(0), atol=1e-5)


def test_degree_and_constant_codes():
    deg = torch.tensor([0, 2, 1])
    coding = discretise(None, "degree", num_rows=3, deg=deg, degree_dim=4)
    assert coding.codes.tolist() == [0, 2, 1] and torch.equal(coding.codebook, torch.eye(4))
    with pytest.raises(ValueError, match="degree_dim=2"):
        discretise(None, "degree", num_rows=3, deg=deg, degree_dim=2)
    const = discretise(None, "exact", num_rows=5, argument="edge_codes")  # no edge features: one code
    assert const.codes.tolist() == [0] * 5 and const.codebook.shape == (1, 0)


def test_synthetic_graph_set_is_clean_molecule_like_and_seeded():
    G, n, extra = 50, 12, 3
    node_code, edge_index, edge_code = synthetic_graph_set(G, n, extra_edges=extra, node_labels=5, edge_labels=3, seed=1)
    assert node_code.shape == (G * n,) and int(node_code.max()) < 5
    # already clean: clean_edges leaves it unchanged
    again, again_code = clean_edges(edge_index, G * n, edge_code)
    assert torch.equal(again, edge_index) and torch.equal(again_code, edge_code)
    src, dst = edge_index
    assert torch.equal(src // n, dst // n)  # no edge crosses graphs
    undirected = edge_index.shape[1] // 2
    assert G * (n - 1) <= undirected <= G * (n - 1 + extra)  # the spanning tree, plus at most the chords
    # every graph is connected: its spanning tree reaches node 0 from every node
    parent_edges = (src > dst) & (src % n > 0)
    assert bool(torch.bincount(src[parent_edges], minlength=G * n).reshape(G, n)[:, 1:].ge(1).all())
    assert torch.equal(edge_code, (src + dst) % 3)
    b = synthetic_graph_set(G, n, extra_edges=extra, node_labels=5, edge_labels=3, seed=1)
    assert all(torch.equal(x, y) for x, y in zip((node_code, edge_index, edge_code), b))
    with pytest.raises(ValueError, match="nodes_per_graph must be an integer >= 2"):
        synthetic_graph_set(3, 1)
    with pytest.raises(ValueError, match="num_graphs"):
        synthetic_graph_set(0, 5)

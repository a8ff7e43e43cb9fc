"""OGB datasets from folders this test writes in OGB's layout: the files read exactly (graphs, labels, official
splits), read-only folders copied to the cache, missing files named, no prompt and no download, and small Mirage
(scaffold split, OGB's ROC-AUC) and FF-G2M (time split, OGB's accuracy) runs."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import condense
from condense.data import DatasetNotFound, status
from condense.graph import ogb as ogb_data
from condense.graph.data import load_graph, load_graph_set
from condense.graph.mirage import _index_digest

with ogb_data._no_version_check():  # importing ogb here must not start its PyPI version check either
    pytest.importorskip("ogb")


def write_csv_gz(path: Path, rows) -> None:
    """One comma-separated row per item, gzipped, no header (OGB's raw and split files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(str(v) for v in (row if isinstance(row, (list, tuple)) else [row])) + "\n")


# -- a tiny ogbg-molhiv: 12 path-shaped molecules of 3, 4, 5 atoms ------------------------------------------------------
MOL_SIZES = [3 + i % 3 for i in range(12)]
MOL_LABELS = [i % 2 for i in range(12)]
# the scaffold split as the files list it (not sorted): 4 + 4 training molecules per class, one of each class in
# validation and in test
MOL_SPLIT = {"train": [7, 0, 9, 2, 4, 3, 10, 1], "valid": [8, 5], "test": [11, 6]}


def atom_row(label: int, v: int, n: int) -> list[int]:
    """9 integer atom features: the first atom of a positive molecule is another element (6 instead of 5)."""
    degree = 1 if v in (0, n - 1) else 2
    return [6 if label and v == 0 else 5, 0, degree, 5, v % 3, 0, 2, 0, 0]


def bond_row(v: int) -> list[int]:
    """3 integer bond features of bond (v, v + 1)."""
    return [v % 2, 0, 1]


def write_molhiv(root: Path) -> Path:
    folder = root / "ogb" / "ogbg_molhiv"
    raw = folder / "raw"
    write_csv_gz(raw / "num-node-list.csv.gz", MOL_SIZES)
    write_csv_gz(raw / "num-edge-list.csv.gz", [n - 1 for n in MOL_SIZES])
    write_csv_gz(raw / "edge.csv.gz", [(v, v + 1) for n in MOL_SIZES for v in range(n - 1)])  # local atom ids
    write_csv_gz(raw / "edge-feat.csv.gz", [bond_row(v) for n in MOL_SIZES for v in range(n - 1)])
    write_csv_gz(raw / "node-feat.csv.gz", [atom_row(y, v, n) for n, y in zip(MOL_SIZES, MOL_LABELS) for v in range(n)])
    write_csv_gz(raw / "graph-label.csv.gz", MOL_LABELS)
    for part, idx in MOL_SPLIT.items():
        write_csv_gz(folder / "split" / "scaffold" / f"{part}.csv.gz", idx)
    write_csv_gz(folder / "mapping" / "mol.csv.gz", [(y, "CC") for y in MOL_LABELS])
    (folder / "RELEASE_v1.txt").write_text("ogbg-molhiv release 1\n")
    return folder


# -- a tiny ogbn-arxiv: 30 papers, each citing the next one and the third after it (directed) ----------------------------
N_PAPERS = 30
CITATIONS = [(i, (i + step) % N_PAPERS) for i in range(N_PAPERS) for step in (1, 3)]
PAPER_LABELS = [i % 3 for i in range(N_PAPERS)]
PAPER_YEARS = [2010 + i // 10 for i in range(N_PAPERS)]
# split by year: 2010-2011 train, the first half of 2012 validation, the rest test (files not sorted)
TIME_SPLIT = {"train": list(range(19, -1, -1)), "valid": [22, 20, 24, 21, 23], "test": [29, 25, 26, 27, 28]}


def paper_features(i: int) -> list[float]:
    return [0.5 * (i % 3), -0.25 * (i % 5), 0.125 * i, 1.5]


def write_arxiv(root: Path) -> Path:
    folder = root / "ogb" / "ogbn_arxiv"
    raw = folder / "raw"
    write_csv_gz(raw / "num-node-list.csv.gz", [N_PAPERS])
    write_csv_gz(raw / "num-edge-list.csv.gz", [len(CITATIONS)])
    write_csv_gz(raw / "edge.csv.gz", CITATIONS)
    write_csv_gz(raw / "node-feat.csv.gz", [paper_features(i) for i in range(N_PAPERS)])
    write_csv_gz(raw / "node-label.csv.gz", PAPER_LABELS)
    write_csv_gz(raw / "node_year.csv.gz", PAPER_YEARS)
    for part, idx in TIME_SPLIT.items():
        write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", idx)
    (folder / "RELEASE_v1.txt").write_text("ogbn-arxiv release 1\n")
    return folder


def set_read_only(folder: Path, read_only: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555 if read_only else 0o755)


@pytest.fixture(autouse=True)
def _no_prompt(monkeypatch):
    """OGB would ask on the terminal before re-downloading a folder; no test may ever reach that."""
    def refuse(*args):
        raise AssertionError("OGB asked for terminal input")

    monkeypatch.setattr("builtins.input", refuse)


# -- reading ------------------------------------------------------------------------------------------------------------
def test_molecules_labels_and_the_scaffold_split_are_read_exactly(tmp_path):
    write_molhiv(tmp_path)
    ds = load_graph("molhiv", data_root=tmp_path)  # an alias of ogbg-molhiv
    assert len(ds) == 12 and ds.num_classes == 2
    first = ds[0]  # 3 atoms, bonds 0-1 and 1-2, each stored both ways by OGB
    assert first.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert first.x.tolist() == [atom_row(0, v, 3) for v in range(3)]
    assert first.edge_attr.tolist() == [bond_row(0), bond_row(0), bond_row(1), bond_row(1)]
    assert [ds[i].num_nodes for i in range(12)] == MOL_SIZES

    graphs = load_graph_set("ogbg-molhiv", data_root=tmp_path)
    assert {k: v.tolist() for k, v in graphs.split.items()} == {
        "train": MOL_SPLIT["train"], "val": MOL_SPLIT["valid"], "test": MOL_SPLIT["test"]}
    pack = graphs.pack
    assert pack.num_graphs == 12 and pack.y.tolist() == MOL_LABELS
    assert pack.num_nodes == sum(MOL_SIZES) == 48
    assert pack.num_edges == 2 * sum(n - 1 for n in MOL_SIZES) == 72
    assert pack.x.dtype == torch.float32 and pack.x.shape == (48, 9) and pack.edge_attr.shape == (72, 3)
    assert graphs.num_classes == 2 and graphs.num_node_attributes == 0
    assert graphs.source["split"] == "scaffold" and graphs.source["num_graphs"] == 12


def test_the_time_split_becomes_masks_and_citations_stay_directed(tmp_path):
    write_arxiv(tmp_path)
    data = load_graph("ogbn-arxiv", data_root=tmp_path)
    assert data.num_nodes == N_PAPERS and data.num_classes == 40  # OGB's class count for arxiv
    assert data.edge_index.t().tolist() == [list(e) for e in CITATIONS]
    assert data.x.dtype == torch.float32 and data.x.tolist() == [paper_features(i) for i in range(N_PAPERS)]
    assert data.y.tolist() == PAPER_LABELS and data.node_year.view(-1).tolist() == PAPER_YEARS
    for part, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        assert getattr(data, f"{part}_mask").nonzero().view(-1).tolist() == sorted(TIME_SPLIT[theirs])


def test_the_catalogue_lists_ogb_sets_and_names_the_files_of_a_missing_one(tmp_path):
    write_molhiv(tmp_path)
    rows = {r["name"]: r for r in status(tmp_path)}
    assert rows["ogbg-molhiv"]["found"] and rows["ogbg-molhiv"]["location"] == str(tmp_path / "ogb" / "ogbg_molhiv")
    for name in ("ogbg-molbace", "ogbg-molbbbp", "ogbn-arxiv", "ogbn-products"):
        assert not rows[name]["found"] and "ogb extra" in rows[name]["description"]
    with pytest.raises(DatasetNotFound) as err:
        load_graph("ogbn-products", data_root=tmp_path)
    assert err.value.searched == [str(tmp_path / "ogb" / "ogbn_products"), str(tmp_path / "ogbn_products")]
    for expected in ("RELEASE_v1.txt", "raw/edge.csv.gz", "raw/node-label.csv.gz",
                     "split/sales_ranking/train.csv.gz", "split/sales_ranking/valid.csv.gz"):
        assert expected in err.value.expected


def test_a_folder_without_its_release_file_fails_without_a_prompt(tmp_path):
    folder = write_molhiv(tmp_path)
    (folder / "RELEASE_v1.txt").unlink()
    with pytest.raises(DatasetNotFound, match="RELEASE_v1.txt"):
        load_graph_set("ogbg-molhiv", data_root=tmp_path)
    assert not (folder / "processed").exists()


def test_ogb_classes_never_download(tmp_path):
    from ogb.graphproppred import PygGraphPropPredDataset

    folder = tmp_path / "ogbg_molhiv"
    folder.mkdir()
    (folder / "RELEASE_v1.txt").write_text("1\n")  # the release marker but no raw files: OGB would download
    meta = ogb_data._meta(ogb_data._package("graphproppred", "ogbg-molhiv"), "ogbg-molhiv")
    with pytest.raises(RuntimeError, match="local folders only"):
        ogb_data._offline(PygGraphPropPredDataset)("ogbg-molhiv", meta_dict={**meta, "dir_path": str(folder)})


def test_a_read_only_folder_is_processed_in_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONDENSE_CACHE", str(cache))
    folder = write_molhiv(tmp_path / "ro")
    set_read_only(folder, True)
    try:
        graphs = load_graph_set("ogbg-molhiv", data_root=tmp_path / "ro")
        assert graphs.split["test"].tolist() == MOL_SPLIT["test"]
        assert not (folder / "processed").exists()
    finally:
        set_read_only(folder, False)
    (copy,) = (cache / "ogb").glob("*/ogbg_molhiv")
    for rel in ("RELEASE_v1.txt", "raw/graph-label.csv.gz", "split/scaffold/valid.csv.gz", "mapping/mol.csv.gz",
                "processed/geometric_data_processed.pt"):
        assert (copy / rel).is_file(), rel
    again = load_graph_set("ogbg-molhiv", data_root=tmp_path / "ro")  # the copy is reused as is
    assert again.source["fingerprint"] == graphs.source["fingerprint"]
    writable = write_molhiv(tmp_path / "rw")
    load_graph_set("ogbg-molhiv", data_root=tmp_path / "rw")
    assert (writable / "processed").is_dir()  # a writable folder is used in place


def test_without_ogb_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    write_molhiv(tmp_path)
    monkeypatch.setitem(sys.modules, "ogb.graphproppred", None)  # `import ogb.graphproppred` now fails
    with pytest.raises(ImportError, match=r"pip install 'condense-kit\[ogb\]'"):
        load_graph_set("ogbg-molhiv", data_root=tmp_path)


def test_ogb_is_imported_only_for_an_ogb_dataset_and_without_its_version_check(tmp_path):
    write_molhiv(tmp_path)
    script = (
        "import sys, threading\n"
        "import condense.graph.mirage, condense.graph.g2m, condense.graph.ogb as o\n"
        "assert 'ogb' not in sys.modules and o.is_ogb('ogbg-molhiv') and not o.is_ogb('MUTAG')\n"
        f"o.load_ogbg('ogbg-molhiv', data_root={str(tmp_path)!r})\n"
        "assert 'ogb.graphproppred' in sys.modules and sys.modules.get('outdated') is None\n"
        "waiting = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]\n"
        "assert not waiting, waiting  # ogb's version check would be one\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # OGB's prints stay off stdout


# -- methods ------------------------------------------------------------------------------------------------------------
def test_mirage_distils_the_scaffold_training_split_and_reports_ogb_rocauc(tmp_path):
    write_molhiv(tmp_path)
    art = condense.distill("mirage", "ogbg-molhiv", data_root=tmp_path, depth=1, support=0.5, device="cpu")
    src = art.meta["source"]
    assert src["name"] == "ogbg-molhiv" and src["split"] == "scaffold" and src["train_graphs"] == 8
    assert src["train_index_sha"] == _index_digest(sorted(MOL_SPLIT["train"]))
    assert art.meta["extra"]["presets"]["used"] == ["mirage-ogbg-molhiv"]  # the preset applies, overrides win
    out = condense.evaluate(art, data_root=tmp_path, runs=2, epochs=2, hidden=8, layers=1, device="cpu")
    distilled = out["results"]["distilled"]
    assert out["compression"]["full_samples"] == 8
    # OGB's Evaluator scores P(class 1) on the 2 test molecules, as the library's ROC-AUC does
    assert distilled["ogb_rocauc"]["runs"] == pytest.approx(distilled["roc_auc"]["runs"])
    assert all(v in (0.0, 0.5, 1.0) for v in distilled["ogb_rocauc"]["runs"])
    assert "ogb_rocauc" in out["table"]
    with pytest.raises(ValueError, match="official split"):
        condense.distill("mirage", "ogbg-molhiv", data_root=tmp_path, depth=1, support=0.5, protocol="kfold")


def test_ffg2m_trains_on_the_time_split_and_reports_ogb_accuracy(tmp_path):
    write_arxiv(tmp_path)
    art = condense.distill("ffg2m", "ogbn-arxiv", data_root=tmp_path, seed=0, device="cpu", num_layers=2, hidden=8,
                           max_epochs=5, patience=5, mlp_dropout=0.0, gnn_dropout=0.0)
    assert art.meta["extra"]["split"] == {"kind": "public", "train": 20, "val": 5, "test": 5, "test_ind": 0}
    src = art.meta["source"]
    # 60 directed citations; their 60 reverses are all new edges, so the symmetrised graph has 120
    assert src["symmetrised"] and src["num_edges"] == 120 and src["num_nodes"] == N_PAPERS
    out = condense.evaluate(art, data_root=tmp_path, device="cpu")
    distilled = out["results"]["distilled"]
    assert distilled["ogb_acc"]["mean"] == pytest.approx(distilled["accuracy"]["mean"])
    assert distilled["accuracy"]["mean"] == pytest.approx(art.meta["extra"]["student"]["test_acc"])
    assert "OGB Evaluator ogb_acc" in out["table"]

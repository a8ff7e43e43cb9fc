import shutil

import pytest
import torch

from condense.data import DatasetNotFound
from condense.graph.data import fingerprint, from_dgl, load_graph, load_karate, load_planetoid, load_tu, row_normalise


def test_tu_sets_from_the_read_only_root(data_root):
    mutag = load_tu("MUTAG", data_root=data_root)
    assert len(mutag) == 188 and mutag.num_classes == 2
    assert torch.bincount(mutag.y).tolist() == [63, 125]
    assert mutag[0].edge_attr.shape[1] == 4
    nci1 = load_tu("nci1", data_root=data_root)
    assert len(nci1) == 4110 and nci1.num_node_features == 37
    enz = load_tu("ENZYMES", data_root=data_root)
    assert len(enz) == 600 and enz.num_node_features == 18 + 3  # continuous attributes + one-hot labels
    for name in ("MUTAG", "NCI1", "ENZYMES"):
        assert not (data_root / "tu" / name / "processed").exists()


def test_cora_public_split(data_root):
    cora = load_planetoid("cora", data_root=data_root)
    assert cora.num_nodes == 2708 and cora.num_classes == 7 and cora.edge_index.shape[1] == 10556
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    normed = load_planetoid("cora", data_root=data_root, normalize_features=True)
    assert torch.allclose(normed.x.sum(1), torch.ones(2708))
    assert fingerprint(cora) != fingerprint(normed)
    assert not (data_root / "planetoid" / "Cora" / "processed").exists()


def _copy_writable(src, dst):
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    for folder in [dst, *[p for p in dst.rglob("*") if p.is_dir()]]:
        folder.chmod(0o755)  # copytree keeps the source folders' read-only mode bits


def test_writable_copy_of_a_read_only_folder(tmp_path, data_root):
    src = tmp_path / "ro" / "tu" / "MUTAG"
    _copy_writable(data_root / "tu" / "MUTAG", src)
    src.chmod(0o555)
    try:
        ds = load_tu("MUTAG", data_root=tmp_path / "ro")
        assert len(ds) == 188
        assert not (src / "processed").exists()
    finally:
        src.chmod(0o755)
    src2 = tmp_path / "rw" / "tu" / "MUTAG"
    _copy_writable(data_root / "tu" / "MUTAG", src2)
    load_tu("MUTAG", data_root=tmp_path / "rw")
    assert (src2 / "processed").is_dir()  # a writable folder is used in place


def test_missing_and_wrong_family(tmp_path):
    with pytest.raises(DatasetNotFound, match="'NCI1' not found"):
        load_tu("NCI1", data_root=tmp_path)
    with pytest.raises(ValueError, match="not a graph dataset"):
        load_graph("mnist", data_root=tmp_path)


def test_karate_and_row_normalise():
    k = load_karate()
    assert k.num_nodes == 34 and k.edge_index.shape[1] == 156 and torch.bincount(k.y).tolist() == [17, 17]
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert torch.equal(row_normalise(x), torch.tensor([[0.25, 0.75], [0.0, 0.0]]))


def test_from_dgl_round_trip(monkeypatch):
    monkeypatch.setenv("DGLBACKEND", "pytorch")
    dgl = pytest.importorskip("dgl")
    g = dgl.graph((torch.tensor([0, 1, 1, 2]), torch.tensor([1, 0, 2, 1])), num_nodes=4)
    g.ndata["feat"] = torch.arange(8.0).view(4, 2)
    g.ndata["label"] = torch.tensor([0, 1, 0, 1])
    g.ndata["train_mask"] = torch.tensor([True, False, True, False])
    g.edata["w"] = torch.arange(4.0)
    data = from_dgl(g, edge_feat="w")
    assert data.num_nodes == 4 and torch.equal(data.edge_index, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    assert torch.equal(data.x, g.ndata["feat"]) and data.y.tolist() == [0, 1, 0, 1]
    assert data.train_mask.tolist() == [True, False, True, False] and data.edge_attr.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no node data 'h'"):
        from_dgl(g, feat="h")

import stat

import numpy as np
import pytest

from condense import data


def test_data_root_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("CONDENSE_DATA", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "explicit") == tmp_path / "explicit"  # explicit wins
    assert data.data_root() == tmp_path / "env"  # then $CONDENSE_DATA
    monkeypatch.delenv("CONDENSE_DATA")
    monkeypatch.setenv("CONDENSE_CACHE", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "data"  # then the user cache
    monkeypatch.delenv("CONDENSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_root() == tmp_path / "xdg" / "condense" / "data"


def test_missing_dataset_error_names_dataset_folders_and_files(tmp_path):
    with pytest.raises(data.DatasetNotFound) as info:
        data.info("mnist").require(tmp_path)
    msg = str(info.value)
    assert "'mnist'" in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte or train-images-idx3-ubyte.gz" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_catalogue_names_and_status(tmp_path):
    assert data.canonical_name("MNIST") == "mnist"
    assert data.canonical_name("fmnist") == "fashion-mnist"
    assert data.canonical_name("mutag") == "MUTAG"
    assert data.canonical_name("Cora") == "cora"
    assert data.canonical_name("tiny-imagenet-200") == "tiny-imagenet"
    with pytest.raises(ValueError, match="unknown dataset 'imagenet-21k'"):
        data.canonical_name("imagenet-21k")
    (tmp_path / "tu" / "MUTAG" / "raw").mkdir(parents=True)
    for suffix in ("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels"):
        (tmp_path / "tu" / "MUTAG" / "raw" / f"MUTAG_{suffix}.txt").write_text("1\n")
    found = {r["name"]: r["found"] for r in data.status(tmp_path)}
    assert found["MUTAG"] and found["digits"] and found["karate"]
    assert not found["mnist"] and not found["NCI1"]


def test_real_data_root_reports_the_shared_datasets(data_root):
    found = {r["name"]: r["found"] for r in data.status(data_root)}
    for name in ("mnist", "cifar10-subset", "cora", "MUTAG", "NCI1", "PTC_MR", "ENZYMES"):
        assert found[name], name


def test_writability_honours_mode_bits(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    assert data.is_writable_dir(folder)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        assert not data.is_writable_dir(folder)  # even for root, who could write anyway
    finally:
        folder.chmod(0o755)
    assert not data.is_writable_dir(tmp_path / "missing")


def test_stratified_subsample():
    y = np.array([0] * 10 + [1] * 5 + [2] * 7)
    idx = data.stratified_subsample(y, 3, seed=1)
    assert np.bincount(y[idx]).tolist() == [3, 3, 3]
    assert np.array_equal(idx, np.sort(idx)) and len(set(idx.tolist())) == 9
    assert np.array_equal(idx, data.stratified_subsample(y, 3, seed=1))
    assert not np.array_equal(idx, data.stratified_subsample(y, 3, seed=2))
    with pytest.raises(ValueError, match="class 1 has only 5"):
        data.stratified_subsample(y, 6)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="train_per_class"):
            data.stratified_subsample(y, bad)

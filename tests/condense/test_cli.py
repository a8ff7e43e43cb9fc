import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from condense import ImageSet
from condense.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _json(capsys):
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out  # exactly one JSON object on stdout
    return json.loads(lines[0])


def test_version_via_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "condense", "--version"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.startswith("condense ")



def test_building_the_cli_imports_no_graph_or_vision_stack():
    """Every command's parser (the graph ones included) is built without importing PyTorch Geometric or the
    methods' modules, so ``condense --help`` and each torchrun rank start fast; the lazy exports still resolve."""
    code = ("import sys; from condense.cli import build_parser; build_parser(); "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch_geometric' or m in "
            "('condense.graph.teachers', 'condense.graph.g2m.method', 'condense.vision.datadam')); print(heavy); "
            "from condense.graph import g2m; print(callable(g2m.compare), callable(g2m.speed), g2m.FFG2M.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True True FFG2M"]

def test_datasets_json(capsys, data_root):
    assert main(["datasets", "--data-root", str(data_root), "--json"]) == 0
    payload = _json(capsys)
    found = {d["name"]: d["found"] for d in payload["datasets"]}
    assert payload["data_root"] == str(data_root)
    assert all(found[n] for n in ("mnist", "cifar10-subset", "cora", "MUTAG", "NCI1", "PTC_MR", "ENZYMES"))


def test_datasets_text_lists_missing(capsys, tmp_path):
    assert main(["datasets", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "missing" in out and "digits" in out


def test_info_prints_metadata(capsys, tmp_path):
    art = ImageSet.create({"images": torch.zeros(2, 1, 3, 3), "labels": torch.tensor([0, 1])}, method="m",
                          config={"ipc": 1}, budget={"ipc": 1}, seed=4)
    path = art.save(tmp_path / "a.safetensors")
    assert main(["info", str(path), "--json"]) == 0
    payload = _json(capsys)
    assert payload["meta"]["seed"] == 4 and payload["tensors"]["images"] == {"dtype": "float32", "shape": [2, 1, 3, 3]}
    assert main(["info", str(path)]) == 0
    assert "ImageSet from m" in capsys.readouterr().out


def test_errors_are_one_line_with_status_2(capsys, tmp_path):
    bad = tmp_path / "x.pkl"
    bad.write_bytes(b"\x80\x04N.")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("condense: error:") and "never unpickled" in err
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["distill", "no-such-method", "--out", str(tmp_path)])

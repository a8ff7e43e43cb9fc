"""Every Python block of the README runs, in order, in one namespace (as a reader would paste them), in a fresh
folder. The blocks use the built-in digits and karate data, so this stays fast and needs no data root."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_blocks_for_each_own_data_case():
    text = "\n".join(python_blocks())
    for needle in ("TensorDataset", "nets.register", 'condense.distill("mirage", train', "teacher=MyTeacher",
                   "model=\"linear\"", "export_folder", "to_hf_dataset", "to_module()", "to_data_list()"):
        assert needle in text, needle


def test_every_python_block_runs(tmp_path, monkeypatch):
    pytest.importorskip("datasets")  # one block exports to a Hugging Face dataset (the hf extra)
    monkeypatch.chdir(tmp_path)
    from condense.graph import teachers
    from condense.vision import nets

    namespace: dict = {"__name__": "readme"}
    try:
        for i, block in enumerate(python_blocks()):
            try:
                exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
            except Exception as exc:  # name the block, so a failure points at the README
                raise AssertionError(f"README python block {i + 1} failed:\n{block}") from exc
    finally:
        for name in nets.register.names():
            nets.register.unregister(name)
        for name in teachers.register.names():
            teachers.register.unregister(name)
    assert (tmp_path / "runs" / "own-png").is_dir() and (tmp_path / "runs" / "own-hf").is_dir()

import json
import os
import pickle

import pytest
import torch

from condense import ArtifactError, ImageSet, Student, TreeSet, load
from condense.artifacts import SCHEMA_VERSION, content_digest


def _imageset(**extra) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet.create(
        {
            "images": torch.randn(6, 3, 4, 4, generator=g),
            "labels": torch.tensor([0, 0, 1, 1, 2, 2]),
            "mean": torch.tensor([0.1, 0.2, 0.3]),
            "syn_lr": torch.tensor(0.0123),
            "half": torch.randn(3, generator=g).to(torch.bfloat16),
            "mask": torch.tensor([True, False, True]),
        },
        method="test",
        config={"lr": 0.1, "steps": (1, 2, 3), "nan": float("nan"), "nested": {"a": None}},
        source={"name": "toy", "fingerprint": "abc"},
        budget={"ipc": 2},
        seed=7,
        device="cpu",
        **extra,
    )


def test_round_trip_is_bit_exact(tmp_path):
    art = _imageset()
    path = art.save(tmp_path / "set.safetensors")
    back = load(path)
    assert type(back) is ImageSet
    assert back.tensors.keys() == art.tensors.keys()
    for k in art.tensors:
        assert back[k].dtype == art[k].dtype and back[k].shape == art[k].shape
        assert torch.equal(back[k].view(torch.uint8) if back[k].dtype == torch.bool else back[k], art[k])
    # NaN != NaN, so compare the metadata through its JSON text
    assert json.dumps(back.meta, sort_keys=True) == json.dumps(art.meta, sort_keys=True)
    assert back.meta["config"]["steps"] == [1, 2, 3]
    assert back.meta["kind"] == "ImageSet" and back.meta["schema_version"] == SCHEMA_VERSION
    assert back.learned_lr == pytest.approx(0.0123)


def test_artifact_owns_a_cpu_copy():
    x = torch.zeros(2, 1, 2, 2)
    art = ImageSet.create({"images": x, "labels": torch.tensor([0, 1])}, method="t")
    x += 1
    assert art.images.sum() == 0


def test_typed_load_refuses_wrong_kind(tmp_path):
    path = _imageset().save(tmp_path / "set.safetensors")
    with pytest.raises(ArtifactError, match="holds a ImageSet, not a TreeSet"):
        TreeSet.load(path)
    assert ImageSet.load(path).kind == "ImageSet"


def test_truncated_file_is_refused(tmp_path):
    path = _imageset().save(tmp_path / "set.safetensors")
    data = path.read_bytes()
    for cut in (4, 8 + 10, len(data) // 2, len(data) - 3):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match="truncated|corrupted"):
            load(bad)


def test_flipped_tensor_byte_is_detected(tmp_path):
    path = _imageset().save(tmp_path / "set.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted"):
        load(path)


class _Boom:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_files_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Boom(str(marker)))
    for name in ("evil.pkl", "evil.safetensors", "evil.pt"):
        p = tmp_path / name
        p.write_bytes(payload)
        with pytest.raises(ArtifactError, match="pickle|never unpickles"):
            load(p)
    torch.save({"x": torch.zeros(2)}, tmp_path / "model.safetensors")  # zip format, wrong suffix
    with pytest.raises(ArtifactError, match="zip|never unpickles"):
        load(tmp_path / "model.safetensors")
    assert not marker.exists()


def _rewrite_meta(path, **changes):
    """Rewrite the metadata block of a saved artifact (tensors untouched), as another writer would."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as fh:
        meta = json.loads(fh.metadata()["condense"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    meta.update(changes)
    save_file(tensors, str(path), metadata={"condense": json.dumps(meta)})


def test_newer_schema_is_refused(tmp_path):
    path = _imageset().save(tmp_path / "set.safetensors")
    _rewrite_meta(path, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ArtifactError, match="newer|upgrade|schema"):
        load(path)


def test_unknown_kind_and_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = _imageset().save(tmp_path / "set.safetensors")
    _rewrite_meta(path, kind="Mystery")
    with pytest.raises(ArtifactError, match="unknown artifact kind"):
        load(path)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(ArtifactError, match="not a condense artifact"):
        load(foreign)


def test_interrupted_save_keeps_previous_file(tmp_path, monkeypatch):
    import safetensors.torch as st

    path = _imageset().save(tmp_path / "set.safetensors")
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        _imageset(extra={"v": 2}).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["set.safetensors"]  # no temp file left behind


def test_validation_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="missing \\['labels'\\]"):
        ImageSet.create({"images": torch.zeros(1, 1, 2, 2)}, method="t")
    with pytest.raises(ArtifactError, match="labels must be int64"):
        ImageSet.create({"images": torch.zeros(2, 1, 2, 2), "labels": torch.zeros(2)}, method="t")
    with pytest.raises(ArtifactError, match="float \\[N, C, H, W\\]"):
        ImageSet.create({"images": torch.zeros(2, 4), "labels": torch.zeros(2, dtype=torch.long)}, method="t")
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        Student.create({"model.w": [1, 2]}, method="t")
    with pytest.raises(ValueError, match="must end in"):
        _imageset().save(tmp_path / "set.pt")
    with pytest.raises(TypeError, match="JSON"):
        Student.create({}, method="t", config={"obj": object()})


def test_content_digest_depends_on_dtype_shape_and_bytes():
    a = {"x": torch.zeros(4)}
    assert content_digest(a) == content_digest({"x": torch.zeros(4)})
    assert content_digest(a) != content_digest({"x": torch.zeros(2, 2)})
    assert content_digest(a) != content_digest({"x": torch.zeros(4, dtype=torch.float64)})
    assert content_digest(a) != content_digest({"y": torch.zeros(4)})

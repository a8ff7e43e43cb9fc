import pickle

import numpy as np
import pytest

from condense.safepickle import RestrictedUnpicklingError, restricted_load


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_plain_dataset_batches_load():
    batch = {b"labels": [1, 2, 3], b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"name": "x", "f": 1.5,
             "t": (None, True)}
    for protocol in (2, 4, 5):
        out = restricted_load(pickle.dumps(batch, protocol=protocol))
        assert out[b"labels"] == [1, 2, 3] and out["t"] == (None, True)
        np.testing.assert_array_equal(out[b"data"], batch[b"data"])


def test_code_running_pickle_is_refused_before_running(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"x": _RunsCode(str(marker))})
    with pytest.raises(RestrictedUnpicklingError, match=r"(io|builtins)\.open"):
        restricted_load(payload)
    assert not marker.exists()
    with pytest.raises(RestrictedUnpicklingError, match="os.system"):
        restricted_load(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    assert not marker.exists()


def test_object_arrays_and_foreign_objects_are_refused():
    with pytest.raises(RestrictedUnpicklingError, match="object-dtype"):
        restricted_load(pickle.dumps(np.array([1, "a"], dtype=object)))
    with pytest.raises(RestrictedUnpicklingError):
        restricted_load(pickle.dumps(np.float64(1.0)))  # numpy scalars need another global

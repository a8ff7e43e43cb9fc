"""A restricted unpickler for the few public datasets that ship as pickles (CIFAR-10/100 python batches).

``pickle.load`` can run arbitrary code: a pickle names any importable callable and the unpickler calls it.
:func:`restricted_load` refuses every global except the NumPy names needed to rebuild a plain numeric
array (``numpy.core.multiarray._reconstruct``, ``numpy.core.numeric._frombuffer``, ``numpy.ndarray``,
``numpy.dtype``) and ``_codecs.encode``
(how protocol-2 pickles spell a bytes object); everything else a
dataset batch holds is built from plain opcodes (dicts, lists, tuples, bytes, strings, numbers).
Object-dtype arrays are refused too, since they exist to carry arbitrary Python objects.

Artifacts never go through this: they are safetensors files and are never unpickled.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

import numpy as np

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 arrays
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(text, "latin1")
    ("_codecs", "encode"),
}


class RestrictedUnpicklingError(pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list; nothing was executed."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise RestrictedUnpicklingError(
            f"refusing to load global {module}.{name}: dataset pickles may only hold plain containers, "
            "bytes, strings, numbers and numeric NumPy arrays"
        )


def _check(obj: Any, depth: int = 0) -> None:
    if depth > 100:
        raise RestrictedUnpicklingError("pickle nests deeper than 100 levels")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise RestrictedUnpicklingError("refusing an object-dtype array in a dataset pickle")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check(k, depth + 1)
            _check(v, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _check(v, depth + 1)
    elif not (obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray))):
        raise RestrictedUnpicklingError(f"unexpected {type(obj).__name__} in a dataset pickle")


def restricted_load(source: bytes | BinaryIO, *, encoding: str = "bytes") -> Any:
    """Unpickle ``source`` (bytes or a binary file) admitting only plain data (see module doc)."""
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    obj = _RestrictedUnpickler(fh, encoding=encoding).load()
    _check(obj)
    return obj

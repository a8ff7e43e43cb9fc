"""condense: data-centric distillation.

Four methods behind one core:

* DataDAM and MTT/AST (:mod:`condense.vision`) turn a labelled image set into a tiny synthetic one
  (:class:`ImageSet`);
* Mirage (:mod:`condense.graph`) turns a graph-classification set into frequent computation-tree itemsets
  (:class:`TreeSet`);
* FF-G2M (:mod:`condense.graph`) turns a GNN teacher into a graph-free MLP student (:class:`Student`).

``condense.distill(method, data, ...)`` makes an artifact, ``condense.evaluate(artifact, ...)`` scores it, and
``condense.load(path)`` reads one back. The core never imports ``condense.vision`` or ``condense.graph`` at import
time; method names are resolved when a method is asked for.
"""
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("condense-kit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

from condense.artifacts import Artifact, ArtifactError, ImageSet, Student, TreeSet, load
from condense.registry import distill, evaluate, methods

__all__ = [
    "__version__",
    "Artifact",
    "ArtifactError",
    "ImageSet",
    "TreeSet",
    "Student",
    "load",
    "distill",
    "evaluate",
    "methods",
]

"""condense: data-centric distillation.

Four methods behind one core:

* DataDAM and MTT/AST (``vision``) turn a labelled image set into a tiny synthetic one (:class:`ImageSet`);
* Mirage (``graph``) turns a graph-classification set into frequent computation-tree itemsets (:class:`TreeSet`);
* FF-G2M (``graph``) turns a GNN teacher into a graph-free MLP student (:class:`Student`).

The core never imports ``vision`` or ``graph`` at import time; :func:`distill` resolves method names lazily.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("condense-kit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

from condense.artifacts import Artifact, ArtifactError, ImageSet, Student, TreeSet, load
from condense.registry import distill, methods

__all__ = [
    "__version__",
    "Artifact",
    "ArtifactError",
    "ImageSet",
    "TreeSet",
    "Student",
    "load",
    "distill",
    "methods",
]

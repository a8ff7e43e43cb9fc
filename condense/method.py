"""The method protocol: every method is a class with a typed config and one verb.

::

    artifact = Method(config).fit(data, *, device="auto", seed=0, run_dir=None, **inputs)

* ``config`` is the method's dataclass (:attr:`Method.config_class`); ``None`` means the published defaults.
* ``data`` is what the method distils. Each method accepts its data kinds directly (listed in its registry entry:
  tensors, an ``ImageData`` or any ``torch.utils.data.Dataset`` for images; a PyG dataset or a list of ``Data`` for
  graph classification; a PyG ``Data`` or a DGL graph for node classification). A catalogue dataset *name* is
  turned into such an object by :meth:`Method.load_data`, which :func:`condense.distill` calls for you.
* ``device``, ``seed`` and ``run_dir`` (checkpoints, plots; ``None`` keeps everything in memory) are the same for
  every method. ``inputs`` are the method's own keyword inputs that are not settings (:attr:`Method.inputs`): an
  expert buffer, a teacher network, initial images.

Configs come from one builder, :meth:`Method.configure`: the defaults, the method's preset for the dataset (if it
has one), a named preset, then a config mapping and overrides (see :func:`condense.config.build_config`). Presets
are data in each package's ``presets`` module, named ``<method>-<dataset>[-<budget or teacher>]`` or
``<method>-<variant>``.
"""
from __future__ import annotations

import abc
import os
from typing import Any, ClassVar, Mapping

from condense.config import build_config, field_types, parse_value


class Method(abc.ABC):
    """Base class of the methods (see the module docstring)."""

    #: the registry name, also the first part of every preset name
    name: ClassVar[str]
    #: the typed config (a dataclass whose defaults are the published settings)
    config_class: ClassVar[type]
    #: ``{preset name: {field: value}}``
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: keyword inputs of :meth:`fit` beyond the protocol's (what :func:`condense.distill` routes there)
    inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None):
        if config is None:
            config = self.config_class()
        elif not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    @abc.abstractmethod
    def fit(self, data: Any, *, device: Any = "auto", seed: int = 0, run_dir: str | os.PathLike | None = None,
            **inputs: Any):
        """Distil ``data`` and return the method's artifact."""

    # -- data by name ---------------------------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def load_data(cls, name: str, *, data_root: str | os.PathLike | None = None, train_per_class: int | None = None,
                  seed: int = 0) -> Any:
        """Load catalogue dataset ``name`` as the object :meth:`fit` takes (``train_per_class``: a seeded,
        stratified subsample of the training split, recorded in the artifact)."""

    @classmethod
    def dataset_name(cls, data: Any) -> str | None:
        """The lower-case dataset name presets are keyed by: a catalogue name, or the ``name`` of a loaded dataset
        object; ``None`` for a user's own data."""
        if isinstance(data, str):
            from condense.data import canonical_name

            try:
                return canonical_name(data).lower()
            except ValueError:
                return os.path.splitext(os.path.basename(data))[0].lower()
        name = getattr(data, "name", None)
        return name.lower() if isinstance(name, str) else None

    # -- configs --------------------------------------------------------------------------------------------
    @classmethod
    def preset_chain(cls, dataset: str | None, hint: Any, preset: str | None) -> list[str]:
        """The presets a run applies, in order: ``<method>-<dataset>`` when the table has it, then ``preset``.

        ``hint`` is the config the run would have without presets (methods whose dataset preset depends on a
        setting, such as the IPC, read it there)."""
        chain = []
        if dataset is not None and f"{cls.name}-{dataset}" in cls.presets:
            chain.append(f"{cls.name}-{dataset}")
        if preset is not None:
            chain.append(preset)
        return chain

    @classmethod
    def configure(cls, data: Any = None, *, preset: str | None = None, config: Any = None,
                  **overrides: Any) -> tuple[Any, list[str]]:
        """``(config, presets used)`` for a run on ``data`` (a name, a loaded dataset or ``None``).

        Order: defaults, the dataset's preset, ``preset``, ``config`` (a mapping), ``overrides``. A config *object*
        is complete: no dataset preset applies to it, and a named ``preset`` with it raises ``ConfigError``."""
        if preset is not None and preset not in cls.presets:
            from condense.config import ConfigError

            raise ConfigError(f"unknown {cls.name} preset {preset!r}; known: {', '.join(sorted(cls.presets))}")
        if isinstance(config, cls.config_class):
            chain = [preset] if preset is not None else []
        else:
            hint = build_config(cls.config_class, config=config, overrides=overrides)
            chain = cls.preset_chain(cls.dataset_name(data) if data is not None else None, hint, preset)
        cfg = build_config(cls.config_class, cls.presets, chain=chain, config=config, overrides=overrides,
                           what=f"{cls.name} preset")
        return cfg, chain

    @classmethod
    def split_inputs(cls, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(config overrides, fit inputs)``: a key of :attr:`inputs` goes to :meth:`fit`, unless it is also a config
        field and the value reads as that field's type (FF-G2M's ``teacher="sage"`` is a setting, a module is not)."""
        fields = field_types(cls.config_class)
        settings, inputs = {}, {}
        for key, value in overrides.items():
            if key in cls.inputs and not (key in fields and _reads_as(fields[key], value, key)):
                inputs[key] = value
            else:
                settings[key] = value
        return settings, inputs


def _reads_as(tp: Any, value: Any, key: str) -> bool:
    from condense.config import ConfigError

    try:
        parse_value(tp, value, key)
    except ConfigError:
        return False
    return True

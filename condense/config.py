"""Typed dataclass configs: overrides parsed to each field's type, presets as plain data.

Every method's config is a ``@dataclass`` whose defaults are the published settings. This module turns
``--set key=value`` strings (or Python values) into a validated copy of a config::

    cfg = apply_overrides(DataDAMConfig(), {"iterations": "500", "init": "noise"})

* the value is parsed to the field's annotated type: ``int``, ``float``, ``bool`` (true/false/1/0/yes/no/on/off),
  ``str``, ``Literal[...]``, ``X | None`` (``none``/``null``), ``tuple[...]``/``list[...]`` (comma-separated or
  JSON), nested dataclasses through dotted keys (``dsa.strategy=crop``);
* an unknown key or an unparsable value raises :class:`ConfigError` naming the key, the value and what was
  expected; ints are not silently truncated from floats, and out-of-set literals are not clipped.

Presets are ``{name: {field: value}}`` dictionaries kept in each package's ``presets`` module. Every config in
the library is built by one function, :func:`build_config`::

    defaults  ->  presets in order (a method's dataset preset, then a named one)  ->  config dict  ->  overrides

A config *object* is taken as complete: it replaces the defaults and the presets, and only overrides apply on
top of it. Asking for a named preset together with a config object is an error, as is one key given two
different values by the config dict and the overrides.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Iterable, Literal, Mapping, TypeVar, Union, get_args, get_origin

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f"}
_NONE = {"none", "null", "~"}


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key."""


def parse_set(items: Iterable[str] | None) -> dict[str, str]:
    """Parse ``["a=1", "b.c=x"]`` (the CLI's ``--set``) into ``{"a": "1", "b.c": "x"}``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key] = value.strip()
    return out


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _type_name(tp: Any) -> str:
    if _is_union(tp):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def parse_value(tp: Any, value: Any, key: str) -> Any:
    """Convert ``value`` (a string from the CLI, or a Python value) to type ``tp``; error names ``key``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if _is_union(tp):
        args = get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: cannot read {value!r} as {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if value == choice:
                return choice
            if isinstance(value, str) and not isinstance(choice, str):
                try:
                    if parse_value(type(choice), value, key) == choice:
                        return choice
                except ConfigError:
                    pass
        raise ConfigError(f"{key}: {value!r} is not {_type_name(tp)}")
    if origin in (tuple, list):
        args = get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except ValueError as exc:
                    raise ConfigError(f"{key}: cannot read {value!r} as a list: {exc}") from None
            elif text == "":
                items = []
            else:
                items = [part.strip() for part in text.split(",")]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(f"{key}: expected a sequence, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(items)} ({value!r})")
            return tuple(parse_value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, items)))
        item_tp = args[0] if args else Any
        parsed = [parse_value(item_tp, v, f"{key}[{i}]") for i, v in enumerate(items)]
        return tuple(parsed) if origin is tuple else parsed
    if origin is dict or tp is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"{key}: expected a JSON object, got {value!r}: {exc}") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{key}: expected a boolean (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got the boolean {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got the boolean {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"{key}: expected a JSON object for {tp.__name__}: {exc}") from None
        if isinstance(value, Mapping):
            return apply_overrides(tp(), value, _prefix=f"{key}.")
        raise ConfigError(f"{key}: expected a {tp.__name__} or a mapping, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: cannot read {value!r} as {_type_name(tp)}")


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass's init fields (handles ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def apply_overrides(config: C, overrides: Mapping[str, Any] | None, *, _prefix: str = "") -> C:
    """Return a copy of dataclass ``config`` with ``overrides`` applied (dotted keys reach nested configs)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    if not overrides:
        return config
    types_ = field_types(type(config))
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if head not in types_:
            known = ", ".join(sorted(types_))
            raise ConfigError(f"unknown config key {_prefix + head!r} for {type(config).__name__}; known keys: {known}")
        if dot:
            sub = getattr(config, head)
            if not dataclasses.is_dataclass(sub):
                raise ConfigError(f"{_prefix + head!r} is not a nested config, so {_prefix + key!r} is invalid")
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = parse_value(types_[head], value, _prefix + head)
    for head, sub_overrides in nested.items():
        base = direct.get(head, getattr(config, head))
        direct[head] = apply_overrides(base, sub_overrides, _prefix=f"{_prefix}{head}.")
    try:
        return dataclasses.replace(config, **direct)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{type(config).__name__}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dictionary of a dataclass config (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a config from :func:`to_dict` output (strict: unknown keys raise)."""
    return apply_overrides(cls(), data)


def preset(presets: Mapping[str, Mapping[str, Any]], name: str, *, what: str = "preset") -> dict[str, Any]:
    """Look up preset ``name`` in a ``{name: overrides}`` table, with an error listing the known ones."""
    try:
        return dict(presets[name])
    except KeyError:
        raise ConfigError(f"unknown {what} {name!r}; known: {', '.join(sorted(presets))}") from None


def build_config(cls: type[C], presets: Mapping[str, Mapping[str, Any]] | None = None, *, chain: Iterable[str] = (),
                 config: C | Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                 what: str = "preset") -> C:
    """Build a ``cls`` config: defaults, the presets named in ``chain`` (in order), ``config``, then ``overrides``.

    ``config`` is either a ``cls`` instance, taken as complete (it replaces the defaults, and ``chain`` must be
    empty: a preset would silently rewrite fields the object sets), or a mapping of fields applied after the
    presets. A key that the ``config`` mapping and ``overrides`` both give, with different values, raises
    :class:`ConfigError` naming it. Values may be typed or ``--set`` strings (see :func:`apply_overrides`).
    """
    chain = list(chain)
    overrides = dict(overrides or {})
    if config is not None and not isinstance(config, (cls, Mapping)):
        raise TypeError(f"config must be a {cls.__name__} or a mapping of its fields, got {type(config).__name__}")
    if isinstance(config, cls):
        if chain:
            raise ConfigError(f"a {cls.__name__} object is a complete config and cannot be combined with "
                              f"{what}(s) {chain}; pass the preset alone, or build the object from it")
        return apply_overrides(config, overrides)
    cfg = cls()
    for name in chain:
        cfg = apply_overrides(cfg, preset(presets or {}, name, what=what))
    if config:
        types_ = field_types(cls)
        for key in sorted(set(config) & set(overrides)):
            tp = types_.get(key.partition(".")[0], Any) if "." not in key else Any
            if parse_value(tp, config[key], key) != parse_value(tp, overrides[key], key):
                raise ConfigError(f"{key!r} is given twice with different values: {config[key]!r} in config and "
                                  f"{overrides[key]!r} as an override")
        cfg = apply_overrides(cfg, config)
    return apply_overrides(cfg, overrides)


def require(condition: bool, key: str, message: str) -> None:
    """Raise :class:`ConfigError` ``"<key>: <message>"`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ConfigError(f"{key}: {message}")

"""Progress bars and logging for long loops; everything goes to stderr, and quiet mode silences it.

Quiet mode is on when :func:`set_quiet` says so or the environment has ``CONDENSE_QUIET=1`` (tests set it).

The bar shows it/s and the current loss. A loss passed as a device tensor is only read (``.item()``, a
host sync) when the bar is about to redraw, so a fast GPU loop is not slowed down by the display.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

_quiet: bool | None = None


def set_quiet(value: bool | None) -> None:
    """Force quiet mode on/off; ``None`` returns to the ``CONDENSE_QUIET`` environment variable."""
    global _quiet
    _quiet = value


def is_quiet() -> bool:
    if _quiet is not None:
        return _quiet
    return os.environ.get("CONDENSE_QUIET", "").strip().lower() in {"1", "true", "yes", "on"}


@contextmanager
def quiet(value: bool = True) -> Iterator[None]:
    global _quiet
    prev = _quiet
    _quiet = value
    try:
        yield
    finally:
        _quiet = prev


def get_logger(name: str = "condense") -> logging.Logger:
    """A logger writing ``condense: message`` lines to stderr (silent in quiet mode)."""
    logger = logging.getLogger(name)
    root = logging.getLogger("condense")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.WARNING if is_quiet() else logging.INFO)
    return logger


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """A tqdm bar over ``total`` steps starting at ``initial`` (for resumed runs)::

        with Progress(total=500, desc="datadam", initial=start) as bar:
            for it in range(start, 500):
                ...
                bar.update(loss=loss)       # loss may be a device tensor
    """

    def __init__(self, total: int, desc: str = "", *, initial: int = 0, unit: str = "it", mininterval: float = 0.5):
        self.mininterval = mininterval
        self._last_postfix = 0.0
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            disable=is_quiet(),
            dynamic_ncols=True,
            mininterval=mininterval,
            leave=True,
        )

    def update(self, n: int = 1, **postfix: Any) -> None:
        now = time.monotonic()
        if postfix and not self.bar.disable and now - self._last_postfix >= self.mininterval:
            shown = {}
            for key, value in postfix.items():
                if isinstance(value, torch.Tensor):
                    value = value.detach().float().item()
                shown[key] = _fmt(value)
            self.bar.set_postfix(shown, refresh=False)
            self._last_postfix = now
        self.bar.update(n)

    def write(self, message: str) -> None:
        if not self.bar.disable:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable, desc: str = "", total: int | None = None, unit: str = "it"):
    """Wrap an iterable in a stderr tqdm bar (disabled in quiet mode)."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, disable=is_quiet(), dynamic_ncols=True)

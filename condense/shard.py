"""Splitting work across processes: one convention, ``--shard i/n`` with i counted from 1.

Shard i of n takes the items at positions p (0-based) with ``p mod n == i - 1``: ``1/2`` takes positions 0, 2, 4,
..., ``2/2`` takes 1, 3, 5, ... Every item lands in exactly one shard, and the shards of one split are disjoint
whatever order they run in. ``condense buffer`` shards experts this way and ``condense bench run`` shards
distillations (cells sharing one distillation stay together). Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set),
rank r is shard r + 1 of WORLD_SIZE.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for key in ("index", "count"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"shard {key} must be an integer, got {value!r}")
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"--shard {self.index}/{self.count}: need 1 <= i <= n (shards are numbered from 1)")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"2/4"`` -> ``Shard(2, 4)``."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ValueError(f"--shard must look like i/n with 1 <= i <= n (e.g. 1/2), got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def from_env(cls) -> "Shard | None":
        """This process's shard under ``torchrun`` (``RANK``/``WORLD_SIZE``), or None in a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return cls(int(os.environ.get("RANK", "0")) + 1, world)

    def owns(self, position: int) -> bool:
        """Whether the item at 0-based ``position`` belongs to this shard."""
        return position % self.count == self.index - 1

    def take(self, items: Sequence[T]) -> list[T]:
        """This shard's items, in their order."""
        return [item for p, item in enumerate(items) if self.owns(p)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

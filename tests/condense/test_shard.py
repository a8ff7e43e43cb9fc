"""One shard convention, ``--shard i/n`` counted from 1, for expert buffers and bench suites alike."""
from __future__ import annotations

import argparse

import pytest

from condense.bench.suites import Grid, Suite, expand
from condense.bench.suites import shard as shard_cells
from condense.cli import build_parser
from condense.shard import Shard
from condense.vision.experts import shard_indices


def test_parse_and_bad_shards():
    assert Shard.parse("2/4") == Shard(2, 4) and Shard.parse(" 1 / 1 ") == Shard(1, 1)
    assert str(Shard(3, 5)) == "3/5"
    for bad in ("0/2", "3/2", "1/0", "1-2", "", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)


def test_shards_partition_positions_round_robin():
    items = list(range(7))
    assert Shard(1, 3).take(items) == [0, 3, 6] and Shard(2, 3).take(items) == [1, 4]
    parts = [Shard(i, 3).take(items) for i in (1, 2, 3)]
    assert sorted(x for p in parts for x in p) == items


def test_torchrun_rank_is_shard_rank_plus_one(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert Shard.from_env() == Shard(2, 2)
    assert shard_indices(5) == [1, 3]
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Shard.from_env() is None


def test_both_commands_read_shard_the_same_way():
    """``condense buffer --shard 1/2`` and ``condense bench run --shard 1/2`` parse to the same Shard and take the
    same positions: the first, third, ... expert, and the first, third, ... distillation of a suite."""
    parser = build_parser()
    buffer = parser.parse_args(["buffer", "--dataset", "digits", "--out", "b", "--shard", "1/2"])
    bench = parser.parse_args(["bench", "run", "smoke", "--out", "r.jsonl", "--shard", "1/2"])
    assert buffer.shard == bench.shard == Shard(1, 2)
    assert shard_indices(5, shard=buffer.shard) == [0, 2, 4]
    suite = Suite("s", "", (Grid("m", ("a", "b", "c", "d", "e")),))
    cells = expand(suite)
    assert [c.dataset for c in shard_cells(cells, bench.shard, "cpu")] == ["a", "c", "e"]
    for argv in (["buffer", "--dataset", "digits", "--out", "b", "--shard", "0/2"],
                 ["bench", "run", "smoke", "--out", "r.jsonl", "--shard", "0/2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_shard_arg_is_an_argparse_type():
    from condense.cli import shard_arg

    assert shard_arg("2/3") == Shard(2, 3)
    with pytest.raises(argparse.ArgumentTypeError, match="1 <= i <= n"):
        shard_arg("4/3")

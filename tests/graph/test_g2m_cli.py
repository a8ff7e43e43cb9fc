"""``condense distill ffg2m`` (and its alias ``condense g2m``) and ``condense g2m-speed`` (on the built-in karate graph
and a small random graph)."""
from __future__ import annotations

import json

import pytest

from condense.artifacts import Student
from condense.cli import main

FAST = ["--dataset", "karate", "--set", "split_train_per_class=4", "--set", "split_val=10", "--set", "split_test=10",
        "--set", "num_layers=2", "--set", "hidden=8", "--set", "max_epochs=8", "--quiet"]


def test_g2m_trains_and_saves_the_student(tmp_path, capsys):
    assert main(["g2m", *FAST, "--teacher", "sage", "--mode", "glnn", "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    art = Student.load(tmp_path / "ffg2m.safetensors")
    assert payload["summary"]["teacher"] == "sage" and payload["summary"]["mode"] == "glnn"
    assert art.meta["config"]["teacher"] == "sage" and art.meta["seed"] == 0  # the one CLI default


def test_compare_prints_one_json_object_and_g2m_is_its_alias(tmp_path, capsys):
    assert main(["distill", "ffg2m", *FAST, "--compare", "--runs", "2", "--seed", "2022", "--out",
                 str(tmp_path / "a"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload["results"]) == ["teacher", "mlp", "glnn", "ffg2m"]
    assert payload["seeds"] == [2022, 2023]  # the FF-G2M paper's seed base, asked for
    assert json.loads((tmp_path / "a" / "compare.json").read_text())["results"].keys() == payload["results"].keys()
    assert (tmp_path / "a" / "ffg2m.safetensors").is_file()
    assert main(["g2m", *FAST, "--compare", "--runs", "2", "--seed", "2022", "--out", str(tmp_path / "b"),
                 "--json"]) == 0
    alias = json.loads(capsys.readouterr().out)
    assert [r["accuracy"]["runs"] for r in alias["results"].values()] == \
        [r["accuracy"]["runs"] for r in payload["results"].values()]
    assert main(["distill", "ffg2m", *FAST, "--runs", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--runs counts the seeds of --compare" in capsys.readouterr().err


def test_g2m_compare_human_table(tmp_path, capsys):
    assert main(["g2m", *FAST, "--compare", "--runs", "1", "--setting", "inductive", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "test_ind accuracy" in text and "ffg2m" in text and "±" in text


def test_g2m_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["g2m", *FAST, "--mode", "kd", "--out", str(tmp_path)]) == 2
    assert "mode" in capsys.readouterr().err


def test_g2m_speed_random_graph(capsys):
    assert main(["g2m-speed", "--nodes", "500", "--edges", "2000", "--features", "16", "--set", "hidden=32",
                 "--set", "num_layers=2", "--repeats", "1", "--device", "cpu", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["num_nodes"] == 500 and 500 < r["num_edges"] <= 2 * 2000 + 500  # E+ = both directions + self-loops
    assert r["student"]["nodes_per_s"] > 0 and r["teacher"]["nodes_per_s"] > 0 and r["speedup"] > 0


def test_g2m_speed_needs_nodes_and_edges_together(capsys):
    assert main(["g2m-speed", "--nodes", "500"]) == 2
    assert "--nodes and --edges" in capsys.readouterr().err


def test_trees_speed_reports_every_size_and_depth(tmp_path, capsys):
    png = tmp_path / "trees.png"
    assert main(["trees-speed", "--graphs", "20,40", "--nodes-per-graph", "8", "--depths", "1,2", "--device", "cpu",
                 "--plot", str(png), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [(row["graphs"], row["depth"]) for row in r["rows"]] == [(20, 1), (20, 2), (40, 1), (40, 2)]
    for row in r["rows"]:
        assert row["nodes"] == 8 * row["graphs"] and row["seconds"] > 0 and row["distinct_trees"] >= 1
        assert row["ns_per_edge_round"] == pytest.approx(1e9 * row["seconds"] / (row["directed_edges"] * row["depth"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as exc:
        main(["trees-speed", "--help"])
    assert exc.value.code == 0 and "--nodes-per-graph" in capsys.readouterr().out
    assert main(["trees-speed", "--depths", "0"]) == 2
    assert "--depths must be comma-separated positive integers" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["g2m", "g2m-speed"])
def test_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0 and "--teacher" in capsys.readouterr().out

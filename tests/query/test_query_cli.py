"""`lensdb query` through typer's CliRunner: exit codes, one-line errors, output formats."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lensdb.cli.app import app

runner = CliRunner()


def lensdb(*args: str):
    return runner.invoke(app, list(args))


def test_json_output(store, oracle):
    res = lensdb("query", "count(person) >= 3", "--store", str(store.root), "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "moments" and data["source"] == "best"
    assert data["columns"][:4] == ["video", "start", "end", "frames"]
    assert sum(r["frames"] for r in data["rows"]) == len(
        oracle.select(lambda f: f.c("person") >= 3, ["person"], "best"))
    assert data["estimate"]["basis"] == "held-out"
    assert 0 <= data["estimate"]["precision"]["value"] <= 1


def test_json_aggregate_and_frames(store):
    res = lensdb("query", "avg(count(car)) WHERE count(person) > 0 BY video", "-s",
                 str(store.root), "--format", "json", "--source", "detected")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "aggregate" and data["estimate"]["method"] == "exact"
    assert [r["video"] for r in data["rows"]] == sorted(r["video"] for r in data["rows"])
    res = lensdb("query", "count(car) >= 2", "-s", str(store.root), "--frames", "-f", "json")
    assert json.loads(res.stdout)["kind"] == "frames"


def test_table_output_shows_estimate(store):
    res = lensdb("query", "count(person) > 2", "--store", str(store.root), "--gap", "1")
    assert res.exit_code == 0, res.output
    assert "mean count(person)" in res.stdout
    assert "precision" in res.stdout and "recall" in res.stdout and "95% CI" in res.stdout
    assert "moments" in res.stdout
    res = lensdb("query", "sum(count(car)) BY minute", "--store", str(store.root))
    assert res.exit_code == 0, res.output
    assert "bias" in res.stdout and "street_a.mp4" in res.stdout


def test_csv_to_stdout(store):
    res = lensdb("query", "count(car) >= 1 LIMIT 3 GAP 1s", "--store", str(store.root),
                 "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 3 and set(rows[0]) >= {"video", "start", "end", "frames"}


def test_parquet_and_json_files(store, tmp_path):
    out = tmp_path / "cars.parquet"
    res = lensdb("query", "count(car) >= 2", "--store", str(store.root), "--frames",
                 "--format", "parquet", "--out", str(out))
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert "count(car)" in table.column_names and table.num_rows > 0
    assert "precision" in json.loads(table.schema.metadata[b"lensdb.estimate"])
    out_json = tmp_path / "a.json"
    res = lensdb("query", "frames BY video", "-s", str(store.root), "-o", str(out_json))
    assert res.exit_code == 0, res.output
    assert json.loads(out_json.read_text())["kind"] == "aggregate"
    res = lensdb("query", "frames", "-s", str(store.root), "--format", "parquet")
    assert res.exit_code == 2 and "needs --out" in res.stderr


def test_json_with_out_keeps_the_files_format(store, tmp_path):
    """--json with --out: the file is what its suffix (or --format) says, stdout the JSON of
    what was written."""
    out = tmp_path / "cars.parquet"
    res = lensdb("query", "count(car) >= 1", "-s", str(store.root), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    said = json.loads(res.stdout)
    assert said["format"] == "parquet" and said["rows"] == pq.read_table(out).num_rows > 0
    out_csv = tmp_path / "cars.txt"
    res = lensdb("query", "count(car) >= 1", "-s", str(store.root), "--out", str(out_csv),
                 "--format", "csv", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["format"] == "csv"
    assert next(csv.DictReader(io.StringIO(out_csv.read_text())))["video"]


def _error_lines(res) -> list[str]:
    assert "Traceback" not in res.output
    return res.stderr.rstrip("\n").split("\n")


def test_syntax_error_is_one_line_plus_caret(store):
    query = "count(person) >> 3 AND " + "count(car) > 1 AND " * 8 + "time < 1m"
    res = lensdb("query", query, "--store", str(store.root))
    assert res.exit_code == 2
    lines = _error_lines(res)
    assert len(lines) == 3  # message, the query, the caret; long lines are not wrapped
    assert lines[0].startswith("error: expected a number") and lines[1] == query
    assert lines[2] == " " * 15 + "^"


@pytest.mark.parametrize("query,needle", [
    ("count(persn) > 1", "known classes: bus, car, dog, person"),
    ("count(bus) > 1", "lensdb train-counter"),
    ("count([red]x[/red]) > 1", "unexpected character '/'"),
    ("video = '[/bold]' AND count(person) >> 1", "expected a number"),
])
def test_errors_exit_two_without_traceback(store, query, needle):
    res = lensdb("query", query, "--store", str(store.root))
    assert res.exit_code == 2
    lines = _error_lines(res)
    assert len(lines) == 3 and needle in lines[0]
    assert lines[1] == query and lines[2].endswith("^")


def test_option_errors(store, tmp_path):
    res = lensdb("query", "count(person) > 1", "--store", str(store.root), "--source", "x")
    assert res.exit_code == 2 and "unknown source" in res.stderr
    res = lensdb("query", "count(person) > 1", "--store", str(tmp_path / "nowhere"))
    assert res.exit_code == 2 and "no LensDB store" in res.stderr
    assert len(_error_lines(res)) == 1
    res = lensdb("query", "avg(count(person))", "--store", str(store.root), "--frames")
    assert res.exit_code == 2 and "selections" in res.stderr


def test_help_teaches_the_language():
    res = lensdb("query", "--help")
    assert res.exit_code == 0
    for needle in ("count(person) > 3", "LIMIT 10 GAP 5s", "BY video", "--source",
                   "time BETWEEN 10s AND 2m", "video LIKE"):
        assert needle in res.stdout, needle

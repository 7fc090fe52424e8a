"""Bad input: one-line errors, non-zero exits, and nothing stored changes."""

from __future__ import annotations

import numpy as np
import pytest
from classify_data import install_no_text_embedder, write_csv
from typer.testing import CliRunner

from lensdb.classify.conditions import add_condition_set
from lensdb.classify.registry import list_classifiers
from lensdb.classify.run import ClassifyConfig, classify_store
from lensdb.classify.train import TrainConfig, train_classifier
from lensdb.cli.app import app
from lensdb.errors import LensDBError, QueryError


def _snapshot(store) -> tuple:
    with store.catalog.connect() as con:
        tables = ("detection_attributes", "classifiers", "condition_sets", "counts")
        rows = tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
    return rows, sorted(p.name for p in store.models_dir.iterdir())


def _cli(store, *args: str):
    result = CliRunner().invoke(app, [*args, "--store", str(store.root)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_condition_set_errors(square_store, tmp_path):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    before = _snapshot(square_store)
    assert "detected classes: circle, square" in _cli(
        square_store, "conditions", "add", "x", "--object", "truck", "--values", "a,b")
    assert "at least two values" in _cli(
        square_store, "conditions", "add", "x", "--object", "square", "--values", "a")
    assert "exists already" in _cli(
        square_store, "conditions", "add", "fill", "--object", "circle", "--values", "a,b")
    assert "in the set 'fill' already" in _cli(
        square_store, "conditions", "add", "x", "--object", "square", "--values", "hollow,b")
    (tmp_path / "p.txt").write_text("a photo of {colour}\n")
    assert "{colour}" in _cli(square_store, "conditions", "add", "x", "--object", "circle",
                              "--values", "a,b", "--prompts", str(tmp_path / "p.txt"))
    assert "known sets: fill" in _cli(square_store, "classify", "--conditions", "nope")
    assert "unknown context" in _cli(square_store, "classify", "--conditions", "fill",
                                     "--context", "zoom")
    assert _snapshot(square_store) == before


def test_query_errors_name_the_known_values(tiny_clip, square_store):
    from lensdb.query.execute import run_query

    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    with pytest.raises(QueryError, match="has classified no detection yet"):
        run_query(square_store, "count(square[filled]) > 0", source="detected")
    classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip))
    with pytest.raises(QueryError, match="unknown condition value 'blue' of square; known "
                       "values: filled, hollow") as err:
        run_query(square_store, "count(square) > 0 AND count(square[blue]) > 0",
                  source="detected")
    assert err.value.position == len("count(square) > 0 AND count(")
    with pytest.raises(QueryError, match="no condition set of 'circle'; objects with "
                       "condition sets: square"):
        run_query(square_store, "count(circle[red]) > 0", source="detected")
    with pytest.raises(QueryError, match="']' after the condition value"):
        run_query(square_store, "count(square[filled) > 0", source="detected")
    # every value of the set is known (a value no detection has counts 0); quoted works too
    for text in ("count(square[filled]) >= 0", "count(square[hollow]) >= 0",
                 "count('square[filled]') >= 0"):
        assert len(run_query(square_store, text, source="detected", frames=True).rows) == 12


def test_dataset_errors_store_nothing(tiny_clip, square_store, tmp_path):
    import cv2

    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    before = _snapshot(square_store)
    y = tmp_path / "y"
    (y / "images").mkdir(parents=True)
    (y / "labels").mkdir()
    cv2.imwrite(str(y / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (y / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (y / "data.yaml").write_text("names: [square filled, truck parked]\n")
    assert "class 'truck parked' does not parse as 'square CONDITION'" in _cli(
        square_store, "classify", "train", "--conditions", "fill", "--data", str(y),
        "--embedder", tiny_clip)
    (y / "data.yaml").write_text("names: [square filled, square blue]\n")
    assert "known values: filled, hollow" in _cli(
        square_store, "classify", "train", "--conditions", "fill", "--data", str(y),
        "--embedder", tiny_clip)
    data = write_csv(tmp_path / "c", 4)
    data.write_text(data.read_text().replace("hollow", "blue").replace("filled", "blue"))
    assert "condition 'blue' is not a value of set 'fill'" in _cli(
        square_store, "classify", "train", "--conditions", "fill", "--data", str(data),
        "--embedder", tiny_clip)
    (tmp_path / "bad.csv").write_text("image_path,x1\na.png,1\n")
    assert "lacks the column(s) y1" in _cli(
        square_store, "classify", "train", "--conditions", "fill", "--data",
        str(tmp_path / "bad.csv"), "--embedder", tiny_clip)
    assert "unknown method 'both'" in _cli(square_store, "classify", "train", "--conditions",
                                           "fill", "--data", str(data), "--method", "both")
    assert _snapshot(square_store) == before


def test_no_text_side_and_foreign_classifier_are_refused(tiny_clip, other_tiny_clip,
                                                         square_store, tmp_path):
    no_text = install_no_text_embedder()
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    before = _snapshot(square_store)
    line = _cli(square_store, "classify", "--conditions", "fill", "--embedder", no_text)
    assert "has no text side" in line and "linear probe" in line
    with pytest.raises(LensDBError, match="no text side"):
        train_classifier(square_store, TrainConfig("fill", str(write_csv(tmp_path / "w", 6)),
                                                   embedder=no_text, wise_ft=0.5))
    with pytest.raises(LensDBError, match="linear probe only"):
        train_classifier(square_store, TrainConfig("fill", str(tmp_path / "w" / "data.csv"),
                                                   embedder=no_text, method="vision"))
    assert _snapshot(square_store) == before
    train_classifier(square_store, TrainConfig("fill", str(write_csv(tmp_path / "d", 30)),
                                               embedder=tiny_clip, cs=(1.0,)))
    before = _snapshot(square_store)
    line = _cli(square_store, "classify", "--conditions", "fill", "--embedder",
                other_tiny_clip)
    assert "classifier 1 was trained on embedder" in line
    assert _snapshot(square_store) == before
    assert len(list_classifiers(square_store, "fill")) == 1


def test_linear_probe_works_without_a_text_side(square_store, tmp_path):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    r = train_classifier(square_store, TrainConfig(
        "fill", str(write_csv(tmp_path / "d", 80)), embedder=install_no_text_embedder()))
    assert any("no text side: linear probe only" in n for n in r.notes)
    done = classify_store(square_store, ClassifyConfig("fill"))
    assert done.method == "linear-probe" and done.classified == 36


def test_the_parser_reads_condition_counts():
    from lensdb.query import plan as p
    from lensdb.query.parse import parse_predicate, parse_query

    q = parse_query("count(car[parked]) >= 3 AND count(person [on bike]) > 0")
    assert p.classes(q) == ["car[parked]", "person[on bike]"]
    assert p.classes(parse_predicate("count(car['double parked']) = 0")) == [
        "car[double parked]"]
    with pytest.raises(QueryError, match="a condition value"):
        parse_query("count(car[]) > 1")

"""`lensdb train-counter` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lensdb.cli.app import app
from lensdb.errors import LensDBError

runner = CliRunner()


def test_train_counter_json(store3, tmp_path):
    plot = tmp_path / "counts.png"
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--json",
                                 "--classes", "person", "--seed", "2", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    person = report["classes"]["person"]
    assert report["split"] == "video" and person["method"] in ("interp", "median", "knn",
                                                               "blend", "mlp", "combo")
    assert person["test"]["model"]["mae"] < person["test"]["baseline"]["mae"]
    assert person["fill_in"]["model"]["mae"] < person["fill_in"]["baseline"]["mae"]
    assert person["why"].startswith(person["method"] + ": ") and "out-of-fold MAE" in person["why"]
    assert report["config"]["seed"] == 2 and plot.exists() and report["plot"] == str(plot)


def test_train_counter_method_median_is_stored_and_used(store3):
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--json",
                                 "--classes", "person", "--method", "median"])
    assert result.exit_code == 0, result.output
    person = json.loads(result.stdout)["classes"]["person"]
    assert person["method"] == "median" and person["why"].startswith("median: forced")
    info = runner.invoke(app, ["info", "--store", str(store3.root), "--json"])
    assert info.exit_code == 0, info.output
    assert "median" in info.stdout


def test_train_counter_tables(store3):
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--method", "knn",
                                 "--split", "time", "--train-fraction", "0.5"],
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for text in ("Fill-in: out-of-fold MAE", "New footage", "baseline", "per held-out video",
                 "true \\ pred", "within ±1", "person", "car", "knn", "forced by --method"):
        assert text in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "bus"], "class 'bus' has no detections"),
        (["--size", "huge"], "--size must be one of"),
        (["--train-fraction", "1.5"], "--train-fraction"),
        (["--pretrain-coco", "x.json"], "go together"),
    ],
)
def test_train_counter_bad_input(store3, args, message):
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, LensDBError) and message in str(result.exception)


def test_train_counter_not_coco(store3, tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text('{"hello": 1}')
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root),
                                 "--pretrain-coco", str(bad), "--coco-images", str(tmp_path)])
    assert isinstance(result.exception, LensDBError)
    assert "not a COCO instances file" in str(result.exception)


def test_info_shows_the_winner_and_why(store3):
    assert runner.invoke(app, ["train-counter", "--store", str(store3.root), "--classes",
                               "car"]).exit_code == 0
    info = json.loads(runner.invoke(app, ["info", "--store", str(store3.root), "--json"]).stdout)
    (model,) = info["count_models"]
    assert model["why"].startswith(f"{model['method']}: ")
    assert "out-of-fold MAE" in model["why"]
    shown = runner.invoke(app, ["info", "--store", str(store3.root)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "out-of-fold MAE" in shown.stdout

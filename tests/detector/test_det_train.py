"""`lensdb detector train | eval | predict` end to end on the synthetic shapes, and bad input.

One --fast run per family (1 epoch, 64 px, 24 images): a few seconds each here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def yolo_run(shapes: Path, cli, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "yolo"
    r = cli("detector", "train", shapes, "--model", "yolo11n.yaml", "--fast", "--epochs", "1",
            "--batch", "8", "--device", "cpu", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _check_run_folder(out: Path, epochs: int) -> dict:
    for name in ("config.json", "epochs.csv", "summary.json", "best.pt", "best_loss.pt",
                 "final.pt"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "epochs.csv")))
    assert len(rows) == epochs
    for col in ("epoch", "train_loss", "val_loss", "lr", "map50", "map50_95"):
        assert col in rows[0], col
    assert float(rows[0]["train_loss"]) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert 0 <= summary["eval"]["map50"] <= 1
    config = json.loads((out / "config.json").read_text())
    assert config["fast"] is True and config["imgsz"] == 64
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.pt"))  # no temporaries left
    return summary


def test_yolo_fast_run_writes_the_run_folder(yolo_run: Path):
    summary = _check_run_folder(yolo_run, epochs=1)
    assert summary["kind"] == "ultralytics-yaml" and summary["names"] == [
        "circle", "square", "triangle"]
    assert (yolo_run / "ultralytics" / "weights" / "last.pt").is_file()


def test_eval_reads_the_checkpoint(yolo_run: Path, shapes: Path, cli, tmp_path: Path):
    out = tmp_path / "eval.json"
    r = cli("detector", "eval", yolo_run / "best.pt", shapes, "--split", "val", "--json", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["images"] == 8 and doc["instances"] > 8
    assert set(doc["per_class"]) == {"circle", "square", "triangle"}
    for key in ("map50", "map50_95", "precision", "recall"):
        assert 0 <= doc[key] <= 1


def test_predict_writes_drawn_images_and_yolo_files(yolo_run: Path, shapes: Path, cli,
                                                    tmp_path: Path):
    images = shapes.parent / "images" / "val"
    r = cli("detector", "predict", yolo_run / "final.pt", images, "--conf", "0.0",
            "--max-images", "3", "--out", tmp_path / "p", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["images"] == 3
    assert len(list((tmp_path / "p" / "images").glob("*.jpg"))) == 3
    labels = sorted((tmp_path / "p" / "labels").glob("*.txt"))
    assert len(labels) == 3
    lines = [x.split() for f in labels for x in f.read_text().splitlines()]
    assert len(lines) == doc["boxes"] > 0
    assert all(len(x) == 6 and 0 <= float(x[1]) <= 1 for x in lines)


def test_light_detr_fast_run(shapes: Path, cli, tmp_path: Path):
    out = tmp_path / "detr"
    r = cli("detector", "train", shapes, "--model", "light-detr", "--fast", "--epochs", "1",
            "--subset", "8", "--batch", "8", "--num-queries", "8", "--decoder-layers", "2",
            "--out", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["kind"] == "light-detr"
    _check_run_folder(out, epochs=1)
    ckpt = torch.load(out / "best.pt", weights_only=False)
    assert ckpt["kind"] == "lensdb-light-detr" and ckpt["spec"]["num_queries"] == 8
    r = cli("detector", "eval", out / "best.pt", shapes, "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["images"] == 8
    from lensdb.detector.evaluate import read_rgb
    from lensdb.models.registry import get_detector

    det = get_detector(str(out / "best.pt"), conf=0.0)  # what `lensdb ingest --detector` loads
    assert sorted(det.class_names.values()) == ["circle", "square", "triangle"]
    (found,) = det.detect([read_rgb(next((shapes.parent / "images" / "val").glob("*.png")))])
    assert set(found.class_names) <= {"circle", "square", "triangle"}


def _bad_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text("names: {0: a\n  train: [\n")
    return p


def _missing_dirs(tmp_path: Path) -> Path:
    p = tmp_path / "missing.yaml"
    p.write_text(f"path: {tmp_path}/nowhere\ntrain: images/train\nval: images/val\n"
                 "names: [a, b]\n")
    return p


@pytest.mark.parametrize("case, extra, message", [
    ("bad_yaml", [], "does not parse"),
    ("missing", [], "not there"),
    ("good", ["--model", "yolo99z.pt"], "no such local file"),
    ("good", ["--model", "resnet50"], "unknown --model"),
    ("good", ["--epochs", "0"], "--epochs must be at least 1"),
    ("good", ["--device", "cuda:7"], "device"),
    ("good", ["--model", "light-detr", "--clip-init", "/nonexistent.pt"], "--clip-init"),
])
def test_bad_input_one_line_error_no_run_folder(case, extra, message, shapes: Path, cli,
                                                tmp_path: Path):
    data = {"bad_yaml": _bad_yaml, "missing": _missing_dirs}.get(case, lambda _: shapes)(tmp_path)
    out = tmp_path / "run"
    r = cli("detector", "train", data, "--fast", "--out", out, *extra)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.stderr
    assert not out.exists()


def test_checkpoint_of_unknown_kind_is_refused(shapes: Path, cli, tmp_path: Path):
    odd = tmp_path / "odd.pt"
    torch.save({"weights": torch.zeros(3)}, odd)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    for ckpt in (odd, text, tmp_path / "absent.pt"):
        r = cli("detector", "eval", ckpt, shapes)
        assert r.returncode != 0 and r.stderr.startswith("error:"), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("detector", "train", shapes, "--model", odd, "--fast", "--out", tmp_path / "r")
    assert r.returncode != 0 and "unknown kind" in r.stderr


def test_trained_checkpoint_is_an_ingest_detector(yolo_run: Path, shapes: Path):
    """`lensdb ingest --detector RUN/best.pt` loads it through the detector registry."""
    from lensdb.detector.evaluate import read_rgb
    from lensdb.models.registry import get_detector

    det = get_detector(str(yolo_run / "best.pt"), conf=0.0)
    assert sorted(det.class_names.values()) == ["circle", "square", "triangle"]
    img = read_rgb(next((shapes.parent / "images" / "val").glob("*.png")))
    (found,) = det.detect([img])
    assert set(found.class_names) <= {"circle", "square", "triangle"}


@pytest.mark.slow
def test_rtdetr_fast_run_through_ultralytics(shapes: Path, cli, tmp_path: Path):
    out = tmp_path / "rtdetr"
    r = cli("detector", "train", shapes, "--model", "rtdetr-l.yaml", "--fast", "--epochs", "1",
            "--subset", "8", "--batch", "4", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    _check_run_folder(out, epochs=1)
    r = cli("detector", "eval", out / "best.pt", shapes, "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["images"] == 8, r.stderr

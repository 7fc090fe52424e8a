"""The audit finds each defect planted in a broken copy of a clean dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lensdb.detector.audit import audit
from lensdb.errors import LensDBError


def _kinds(report) -> dict[str, int]:
    return {k: v for k, v in report.counts().items() if v}


def test_clean_dataset_has_no_defects(shapes: Path):
    report = audit(shapes)
    assert report.defects == []
    s = report.splits["train"]
    assert s.images == 24 and s.boxes == sum(s.histogram.values()) > 24
    assert s.box_sizes["side_px_median"] > 5
    assert report.splits["val"].images == 8


def _lbl(data: Path, split: str, i: int) -> Path:
    return data.parent / "labels" / split / f"{split}_{i:05d}.txt"


def _img(data: Path, split: str, i: int) -> Path:
    return data.parent / "images" / split / f"{split}_{i:05d}.png"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


PLANTS = {
    "unknown_class": lambda d: _append(_lbl(d, "train", 0), "7 0.5 0.5 0.1 0.1\n"),
    "image_without_label": lambda d: _lbl(d, "train", 1).unlink(),
    "label_without_image": lambda d: _img(d, "train", 2).unlink(),
    "empty_line": lambda d: _append(_lbl(d, "train", 3), "\n0 0.5 0.5 0.1 0.1\n"),
    "malformed_line": lambda d: _append(_lbl(d, "train", 4), "1 0.5 0.5\n"),
    "box_out_of_range": lambda d: _append(_lbl(d, "train", 5), "0 0.95 0.5 0.2 0.1\n"),
    "zero_area_box": lambda d: _append(_lbl(d, "train", 6), "0 0.5 0.5 0.0 0.1\n"),
    "duplicate_image": lambda d: shutil.copy(_img(d, "train", 7), _img(d, "val", 0)),
    "unreadable_image": lambda d: _img(d, "train", 8).write_bytes(b"not a png"),
}


@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_each_planted_defect_is_found(shapes_copy: Path, kind: str):
    PLANTS[kind](shapes_copy)
    kinds = _kinds(audit(shapes_copy))
    assert kind in kinds, kinds
    assert kinds[kind] == 1, kinds


def test_val_class_missing_from_train(shapes_copy: Path):
    for lbl in (shapes_copy.parent / "labels" / "train").glob("*.txt"):  # no triangles in train
        lbl.write_text("".join(x + "\n" for x in lbl.read_text().splitlines()
                               if not x.startswith("2 ")))
    report = audit(shapes_copy)
    assert _kinds(report) == {"val_class_missing": 1}
    assert report.splits["train"].histogram["triangle"] == 0
    assert report.splits["train"].imbalance_ratio is None
    assert report.splits["train"].absent_classes == ["triangle"]


def test_all_defects_at_once_and_strict_cli(shapes_copy: Path, cli, tmp_path: Path):
    for plant in PLANTS.values():
        plant(shapes_copy)
    assert set(_kinds(audit(shapes_copy))) == set(PLANTS)
    out = tmp_path / "audit.json"
    lax = cli("detector", "audit", shapes_copy, "--json", out)
    assert lax.returncode == 0, lax.stderr
    doc = json.loads(out.read_text())
    assert doc["defect_counts"]["duplicate_image"] == 1
    strict = cli("detector", "audit", shapes_copy, "--strict", "--splits", "train,val")
    assert strict.returncode != 0
    assert strict.stderr.strip().startswith("error:") and len(strict.stderr.splitlines()) == 1
    assert "unknown_class" in strict.stdout


def test_bad_yaml_is_one_line_error(tmp_path: Path, cli):
    bad = tmp_path / "data.yaml"
    bad.write_text("names: [a, b\ntrain: : :\n")
    with pytest.raises(LensDBError, match="does not parse"):
        audit(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a]\n")
    with pytest.raises(LensDBError, match="not there"):
        audit(missing)
    nonames = tmp_path / "nonames.yaml"
    nonames.write_text("train: images/train\n")
    for path in (bad, missing, nonames):
        r = cli("detector", "audit", path)
        assert r.returncode != 0 and r.stderr.startswith("error:"), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

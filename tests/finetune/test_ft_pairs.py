"""Pairs files: reading, validation, the split by image, mismatches, captions from a store."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from lensdb.errors import LensDBError
from lensdb.finetune.pairs import (
    check_disjoint,
    make_mismatches,
    read_pairs,
    split_pairs,
    usable_pairs,
    validate_pairs,
)
from lensdb.finetune.synthetic import make_shapes_dataset


def write(path: Path, rows: list[list], header=("image_path", "text", "label")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def images(tmp_path) -> Path:
    make_shapes_dataset(tmp_path, 6, seed=0)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    return tmp_path


def test_missing_columns_are_refused(tmp_path):
    bad = write(tmp_path / "p.csv", [["a.png", "x"]], header=("path", "text"))
    with pytest.raises(LensDBError, match="missing column.*image_path"):
        read_pairs(bad)
    with pytest.raises(LensDBError, match="missing column"):
        validate_pairs(bad)


def test_bad_rows(images):
    f = write(images / "p.csv", [["img0000.png", "one red circle", "1"],
                                 ["img0001.png", "x", "yes"], ["img0002.png", "", "0"]])
    with pytest.raises(LensDBError, match="line 3: label must be 0 or 1, not 'yes'"):
        read_pairs(f)
    report = validate_pairs(f)
    assert not report.ok and report.rows == 1
    assert any("label must be 0 or 1" in e for e in report.errors)
    assert any("line 4: empty text" in e for e in report.errors)


def test_validate_reports_images_duplicates_and_balance(images):
    rows = [["img0000.png", f"text {i}", "1"] for i in range(6)]
    rows += [["img0000.png", "text 0", "1"], ["img0001.png", "other", "0"],
             ["broken.png", "t", "1"], ["gone.png", "t", "1"], ["img0002.txt", "t", "1"]]
    report = validate_pairs(write(images / "p.csv", rows))
    assert report.duplicates == 1 and report.matches == 10 and report.mismatches == 1
    errors = " ".join(report.errors)
    assert "broken.png: does not decode" in errors and "gone.png: missing" in errors
    assert "not a jpg/jpeg/png/webp" in errors
    assert any("past 5:1" in w for w in report.warnings)
    assert report.captions_per_image["max"] == 7  # img0000: six texts plus the duplicate
    conflict = validate_pairs(write(images / "c.csv", [["img0000.png", "a", "1"],
                                                       ["img0000.png", "a", "0"]]))
    assert any("both 0 and 1" in e for e in conflict.errors)


def test_unreadable_images_skipped_or_refused(images):
    f = write(images / "p.csv", [["img0000.png", "a", "1"], ["broken.png", "b", "1"]])
    pairs, bad = usable_pairs(read_pairs(f))
    assert len(pairs) == 1 and len(bad) == 1
    with pytest.raises(LensDBError, match="1 unreadable image.*--strict"):
        usable_pairs(read_pairs(f), strict=True)


def test_split_by_image(tmp_path):
    make_shapes_dataset(tmp_path / "d", 50, seed=0)  # two captions per image
    result = split_pairs(tmp_path / "d" / "captions.csv", tmp_path / "s", val=0.2, test=0.1,
                         seed=3)
    sides = {name: read_pairs(s["file"]) for name, s in result["splits"].items()}
    assert {n: len(p.images()) for n, p in sides.items()} == {"train": 35, "val": 10, "test": 5}
    assert sum(len(p.pairs) for p in sides.values()) == 100
    for a in sides:
        for b in sides:
            if a < b:
                check_disjoint(a, sides[a].images(), b, sides[b].images())
    assert all(p.image.exists() for p in sides["val"].pairs)  # paths rewritten to resolve
    again = split_pairs(tmp_path / "d" / "captions.csv", tmp_path / "s2", val=0.2, test=0.1,
                        seed=3)
    assert Path(again["splits"]["val"]["file"]).read_text() == \
        Path(result["splits"]["val"]["file"]).read_text()
    with pytest.raises(LensDBError, match="in both train and val"):
        check_disjoint("train", sides["train"].images(), "val",
                       sides["train"].images()[:1] + sides["val"].images())


def test_mismatches_use_other_images_texts(tmp_path):
    make_shapes_dataset(tmp_path, 40, seed=0)
    out = make_mismatches(tmp_path / "captions.csv", per_match=2, seed=1)
    pf = read_pairs(out["file"])
    own: dict = {}
    for p in pf.pairs:
        if p.label == 1:
            own.setdefault(p.image, set()).add(p.text)
    made = [p for p in pf.pairs if p.label == 0]
    assert len(made) == out["made"] == 160 and out["matches"] == 80
    assert all(p.text not in own[p.image] for p in made)
    assert len({(p.image, p.text) for p in made}) == len(made)
    with pytest.raises(LensDBError, match="out must not be the input"):
        make_mismatches(tmp_path / "captions.csv", tmp_path / "captions.csv")


def test_captions_from_store(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "counting"))
    from fake_models import build_scene_store

    from lensdb.finetune.from_store import caption, captions_from_store
    from lensdb.storage import Store

    assert caption({"person": 3, "car": 1}) == "a street with 3 people and 1 car"
    assert caption({"car": 1}) == "a street with 1 car"
    store = Store.open(build_scene_store(tmp_path / "s", detect_every=10, train=False))
    result = captions_from_store(store, tmp_path / "pairs", query="count(person) >= 2",
                                 limit=10)
    pf = read_pairs(result["file"])
    assert len(pf.pairs) == result["images"] == 10
    assert all(p.image.exists() and "people" in p.text for p in pf.pairs)
    assert validate_pairs(result["file"]).ok
    (store.root.parent / "scenes.mp4").unlink()
    with pytest.raises(LensDBError, match="no longer there"):
        captions_from_store(store, tmp_path / "p2", limit=3)

"""The Python API end to end on the real sample video with the real offline pair."""

from __future__ import annotations

import pytest

import lensdb
from lensdb.config import IngestConfig

pytestmark = pytest.mark.slow


def test_ingest_train_query_search_export(tmp_path, bikes, offline_pair):
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(bikes)], IngestConfig(stride=2, detect_every=2, conf=0.4, **offline_pair))
    report = db.train_counter(classes=("car",), split="time", seed=0)
    car = report.classes["car"]
    assert car.test["model"]["mae"] < car.test["baseline"]["mae"]  # beats the constant

    with db.store.catalog.connect() as con:
        unlabelled = con.execute(
            "SELECT count(*) FROM frames f JOIN predictions p USING (frame_id) "
            "WHERE NOT f.labelled AND p.class = 'car'").fetchone()[0]
    assert unlabelled == 62  # every frame without a label got a prediction

    answer = db.query("count(car) >= 2", source="predicted")
    assert answer.kind == "moments" and answer.rows
    assert 0.0 <= answer.estimate["precision"]["value"] <= 1.0

    hits = db.search(like=0, k=4, where="count(car) >= 1")  # frames like the first one
    assert len(hits) == 4

    out = db.export(hits, tmp_path / "shots")
    assert len(list((tmp_path / "shots").glob("*.jpg"))) == 4
    assert (tmp_path / "shots" / "index.html").exists() and out is not None

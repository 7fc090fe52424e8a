"""Frames ingested after `train-counter` get predictions from the active count models,
through the real ingest path (the writer calls the predictors batch by batch)."""

from __future__ import annotations

import numpy as np
from ingest_fakes import install

import lensdb
from lensdb.config import IngestConfig

FAKE = install()


def test_frames_ingested_after_training_get_predictions(tmp_path, make_video):
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(make_video("first.mkv", n_frames=60))],
              IngestConfig(batch_size=16, detect_every=2, codec="Flat", **FAKE))
    report = db.train_counter(classes=("square",), method="knn", split="time")
    model_id = report.classes["square"].model_id

    db.ingest([str(make_video("later.mkv", n_frames=40))],
              IngestConfig(batch_size=16, detect_every=5, codec="Flat", **FAKE))
    with db.store.catalog.connect() as con:
        rows = con.execute(
            "SELECT f.labelled, p.value, p.model_id FROM frames f JOIN videos v USING (video_id) "
            "LEFT JOIN predictions p ON p.frame_id = f.frame_id AND p.class = 'square' "
            "WHERE v.name LIKE '%later.mkv'").fetchall()
    assert len(rows) == 40
    unlabelled = [r for r in rows if not r[0]]
    assert unlabelled and all(r[1] is not None and np.isfinite(r[1]) for r in unlabelled)
    assert {r[2] for r in unlabelled} == {model_id}
    answer = db.query("count(square) >= 0 AND video = 'later.mkv'", source="predicted",
                      frames=True)
    assert len(answer.rows) == 40

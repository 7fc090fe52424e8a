"""train_counters end to end on synthetic stores: registration, predictions, later frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lensdb.counting import (
    ActivePredictors,
    TrainConfig,
    list_count_models,
    predict_for_new_frames,
    train_counters,
)
from lensdb.counting.fit import CANDIDATES
from lensdb.errors import EmbedderMismatchError, LensDBError
from lensdb.storage import Batch, FrameRow
from lensdb.storage.vectors import roundtrip


def _rows(store, sql, params=()):
    with store.catalog.connect() as con:
        return con.execute(sql, list(params)).fetchall()


def test_train_registers_models_and_predicts_every_frame(store3, fast, tmp_path):
    events = []
    report = train_counters(
        store3, TrainConfig(seed=1, plot=tmp_path / "plot.png", **fast),
        progress=lambda *e: events.append(e),
    )
    assert report.split == "video" and set(report.classes) == {"person", "car"}
    assert set(report.train_videos).isdisjoint(report.test_videos)
    json.dumps(report.to_dict())  # JSON-able
    assert (tmp_path / "plot.png").stat().st_size > 1000
    assert any(task.startswith("person: mlp") for task, _, _ in events)
    n_frames = _rows(store3, "SELECT count(*) FROM frames")[0][0]
    for cls, rep in report.classes.items():
        assert rep.method in CANDIDATES and rep.embedding_model in ("mlp", "knn")
        assert set(rep.validation_mae) == {"mlp", "knn", "baseline"}
        assert rep.validation_mae[rep.embedding_model] == min(rep.validation_mae["mlp"],
                                                              rep.validation_mae["knn"])
        assert rep.test["model"]["mae"] < rep.test["baseline"]["mae"]  # new footage
        # fill-in: the winner has the lowest out-of-fold MAE, well below the constant
        assert {"constant", "interp", "knn", "combo"} <= set(rep.fill_in_mae)
        assert ("mlp" in rep.fill_in_mae) == (rep.validation_mae["mlp"] <= rep.validation_mae[
            "knn"])  # the MLP is a fill-in candidate where it won on new footage
        assert rep.fill_in_mae[rep.method] == min(rep.fill_in_mae.get(m, 1e9) for m in CANDIDATES)
        assert rep.fill_in_mae[rep.method] < 0.7 * rep.fill_in_mae["constant"]
        assert rep.method in rep.why and "pessimistic" in rep.why
        assert (store3.models_dir / rep.file).exists()
        preds = _rows(store3, "SELECT count(*), count(DISTINCT frame_id), min(model_id), "
                      "max(model_id), sum(in_train::INT), min(value) FROM predictions "
                      "WHERE class = ?", [cls])[0]
        assert preds[:4] == (n_frames, n_frames, rep.model_id, rep.model_id)
        # refitted on every label; labelled frames carry out-of-fold values (not in train)
        assert rep.train_frames == report.labelled_frames and preds[4] == 0 and preds[5] >= 0
        (metrics,) = [m["metrics"] for m in list_count_models(store3) if m["class"] == cls]
        assert {"fill_in", "new_footage", "fill_in_mae", "why", "mae"} <= set(metrics)
        assert metrics["mae"] == rep.fill_in_mae[rep.method]


def test_newer_model_replaces_older_which_stays_listed(store3, fast):
    first = train_counters(store3, TrainConfig(classes=("person",), method="mlp", **fast))
    second = train_counters(store3, TrainConfig(classes=("person",), method="knn", **fast))
    models = list_count_models(store3)
    assert [(m["model_id"], m["active"]) for m in models] == [
        (second.classes["person"].model_id, True), (first.classes["person"].model_id, False)
    ]
    assert models[0]["method"] == "knn" and models[1]["method"] == "mlp"
    assert models[0]["embedder_id"] == "fake@123" and models[0]["codec"] == "Flat"
    assert models[1]["size"] == "tiny" and "test" in models[1]["metrics"]
    ids = _rows(store3, "SELECT DISTINCT model_id FROM predictions WHERE class='person'")
    assert ids == [(second.classes["person"].model_id,)]


def test_time_split_single_video(make_store, fast):
    store = make_store(videos=1, frames=240, label_every=3, codec="SQ8")
    report = train_counters(store, TrainConfig(**fast))
    assert report.split == "time" and report.labelled_frames == 80 and report.frames == 240
    assert report.classes["person"].test["model"]["mae"] < report.classes["person"].test[
        "baseline"]["mae"]


def test_frames_committed_later_get_predictions(make_store, synth, fast):
    store = make_store(codec="SQ8")
    report = train_counters(store, TrainConfig(**fast))
    predictors = ActivePredictors.load(store)
    assert {m.cls for m in predictors.models} == {"person", "car"}
    rng = np.random.default_rng(77)
    person, car = synth.synthetic_counts(60, rng)
    x = synth.vectors_for(person, car, rng)
    with store.writer():
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name) VALUES (9, 'later.mp4')")
        codec = store.codec()
        for start in range(0, 60, 20):
            decoded = roundtrip(codec, x[start:start + 20])  # as the ingest writer does
            preds = predictors.predict(decoded)
            raw = predictors.predict(x[start:start + 20], raw=True)
            assert all(np.allclose(raw[c][1], preds[c][1], atol=1e-5) for c in preds)
            store.commit_batch(Batch(9, [FrameRow(i, i / 25) for i in range(start, start + 20)],
                                     x[start:start + 20], predictions=preds), codec)
    rows = _rows(store, "SELECT p.class, p.model_id, p.value, p.in_train FROM predictions p "
                 "JOIN frames f USING (frame_id) WHERE f.video_id = 9 ORDER BY f.frame_index")
    for cls, truth in (("person", person), ("car", car)):
        mine = [r for r in rows if r[0] == cls]
        assert len(mine) == 60 and not any(r[3] for r in mine)
        assert {r[1] for r in mine} == {report.classes[cls].model_id}
        values = np.array([r[2] for r in mine])
        assert np.abs(values - truth).mean() < np.abs(truth - truth.mean()).mean()
        # same as predicting from the stored (decoded) vectors
        ids, vecs = store.decoded_vectors()
        new = _rows(store, "SELECT frame_id FROM frames WHERE video_id=9 ORDER BY frame_index")
        again = predictors.predict(vecs[np.searchsorted(ids, [r[0] for r in new])])
        assert np.allclose(again[cls][1], values, atol=1e-4)
    one_off = predict_for_new_frames(store, x[:3], raw=True)
    assert set(one_off) == {"person", "car"} and one_off["car"][1].shape == (3,)


def test_no_active_models_predict_nothing(store3):
    assert ActivePredictors.load(store3).predict(np.zeros((2, 32), np.float32)) == {}


def test_model_for_another_embedder_is_refused(store3, fast):
    train_counters(store3, TrainConfig(classes=("car",), method="knn", **fast))
    with pytest.raises(EmbedderMismatchError, match="trained for embedder 'fake@123'"):
        ActivePredictors.load(store3, embedder_id="clip-vit-b-32@abc")
    with store3.catalog.connect(write=True) as con:
        con.execute("UPDATE count_models SET embedder_id = 'other@999'")
    with pytest.raises(EmbedderMismatchError, match="other@999") as err:
        ActivePredictors.load(store3)
    assert "\n" not in str(err.value)


def test_bad_input_errors(make_store, fast):
    unlabelled = make_store("plain", videos=1, frames=30, label_every=10_000)
    with store_without_labels(unlabelled):
        pass
    with pytest.raises(LensDBError, match="no labelled frames"):
        train_counters(unlabelled, TrainConfig(**fast))
    store = make_store("s", videos=2, frames=40)
    with pytest.raises(LensDBError, match="class 'bus' has no detections.*person"):
        train_counters(store, TrainConfig(classes=("bus",), **fast))
    single = make_store("single", videos=1, frames=40)
    with pytest.raises(LensDBError, match="at least 2 videos"):
        train_counters(single, TrainConfig(split="video", **fast))
    with pytest.raises(LensDBError, match="--size"):
        TrainConfig(size="huge")


class store_without_labels:  # noqa: N801 - a tiny context manager for readability
    """Mark every frame unlabelled (label_every=10000 still labels frame 0)."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        with self.store.catalog.connect(write=True) as con:
            con.execute("UPDATE frames SET labelled = false")
            con.execute("DELETE FROM counts")

    def __exit__(self, *exc):
        return False

"""Loading the active models for an ingest: kNN files carry their vectors (no decode of the
store); interp / combo models predict later frames with their embedding model."""

from __future__ import annotations

import json

import numpy as np

from lensdb.counting import ActivePredictors, TrainConfig, train_counters
from lensdb.counting.knn import KnnPropagator


def _knn_model(store, fast, method="knn"):
    report = train_counters(store, TrainConfig(classes=("person",), method=method, **fast))
    return report.classes["person"]


def test_knn_load_decodes_nothing(store3, fast, monkeypatch):
    rep = _knn_model(store3, fast)
    ids, vectors = store3.decoded_vectors()

    def refuse(*_a, **_k):
        raise AssertionError("the whole store was decoded")

    monkeypatch.setattr(type(store3), "decoded_vectors", refuse)
    monkeypatch.setattr(type(store3), "load_index", refuse)
    monkeypatch.setattr(type(store3.vectors), "read_segment", refuse)
    (model,) = ActivePredictors.load(store3).models
    assert model.model_id == rep.model_id and isinstance(model.predictor, KnnPropagator)
    with store3.catalog.connect() as con:
        lab = [r[0] for r in con.execute("SELECT frame_id FROM frames WHERE labelled "
                                         "ORDER BY frame_id").fetchall()]
    assert len(model.predictor.counts) == len(lab)  # refitted on every label
    want = KnnPropagator(vectors[np.searchsorted(ids, lab)], model.predictor.counts, 5)
    assert np.allclose(model.predictor.predict(vectors[:20]), want.predict(vectors[:20]))


def test_format1_knn_file_reads_only_its_segments(make_store, fast):
    store = make_store(videos=2, frames=120, label_every=4, codec="SQ8")
    rep = _knn_model(store, fast)
    path = store.models_dir / rep.file
    (model,) = ActivePredictors.load(store).models
    with np.load(path) as z:  # SQ8 codes, one byte a dimension; rewrite as an old file
        assert z["codes"].dtype == np.uint8 and z["codes"].shape == (60, 32)
        assert "vectors" not in z.files
        old = {"frame_ids": z["frame_ids"], "counts": z["counts"],
               "meta": np.array(json.dumps(json.loads(str(z["meta"])) | {"format": 1}))}
    with open(path, "wb") as f:
        np.savez(f, **old)
    (legacy,) = ActivePredictors.load(store).models
    ids, vectors = store.decoded_vectors()
    want = KnnPropagator(vectors[np.searchsorted(ids, old["frame_ids"])], old["counts"])
    assert np.allclose(model.predictor.vectors, want.vectors, atol=1e-6)
    assert np.allclose(legacy.predictor.vectors, want.vectors, atol=1e-6)


def test_interp_model_predicts_later_frames_with_its_embedding_model(store3, fast):
    rep = _knn_model(store3, fast, method="interp")
    assert rep.method == "interp" and rep.embedding_model in ("mlp", "knn")
    (model,) = ActivePredictors.load(store3).models
    assert model.method == "interp" and model.predictor.kind == rep.embedding_model
    ids, vectors = store3.decoded_vectors()
    assert model.predictor.predict(vectors[:5]).shape == (5,)

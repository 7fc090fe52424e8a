"""The active count models, loaded once, predicting counts for frames as they are ingested.

    predictors = ActivePredictors.load(store)      # once per ingest run
    batch.predictions = predictors.predict(vectors)  # per batch: {class: (model_id, counts)}

`vectors` are the batch's vectors as the store gives them back (`storage.vectors.roundtrip`
through the codec); pass raw=True to have raw embedder output run through the codec here.
A model trained for another embedder than the store's (or the one named) is refused.

Frames ingested after training lie past the labels the model was refitted on, so every
model predicts them with its embedding model (the MLP or kNN stored with it), whatever
method (interp, combo) won on the stored frames. A kNN model file carries its labelled
vectors (as codec codes), so loading reads no vector segment; an older file without them
reads only the segments that hold its labelled frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lensdb.counting.registry import (
    decode_codes,
    decode_like_store,
    embedding_kind,
    read_model_file,
)
from lensdb.errors import EmbedderMismatchError, StoreError
from lensdb.storage import Store


@dataclass
class LoadedModel:
    model_id: int
    cls: str
    method: str  # deployed on the stored frames: interp, knn, mlp or combo
    predictor: Any  # the embedding model, MlpPredictor or KnnPropagator: .predict(vectors)


class ActivePredictors:
    """The store's active count models, loaded once; `.predict(vectors)` per ingest batch."""

    def __init__(self, models: list[LoadedModel], codec: Any = None):
        self.models = models
        self.codec = codec

    @classmethod
    def load(cls, store: Store, embedder_id: str | None = None) -> ActivePredictors:
        """Load every active model; refuses one trained for another embedder."""
        with store.catalog.connect() as con:
            rows = con.execute(
                "SELECT model_id, class, method, embedder_id, file FROM count_models "
                "WHERE active ORDER BY class"
            ).fetchall()
        if not rows:
            return cls([])
        expected = embedder_id or store.meta().get("embedder_id")
        models: list[LoadedModel] = []
        codec = None
        for model_id, name, method, row_embedder, file in rows:
            meta, payload = read_model_file(store.models_dir / file)
            for trained_for in (row_embedder, meta.get("embedder_id")):
                if trained_for != expected:
                    raise EmbedderMismatchError(
                        f"count model {model_id} for '{name}' was trained for embedder "
                        f"'{trained_for}', these vectors come from '{expected}'; retrain "
                        "with `lensdb train-counter`"
                    )
            if embedding_kind(meta) == "mlp":
                from lensdb.counting.mlp import MlpPredictor

                predictor: Any = MlpPredictor.from_state(payload["state_dict"], meta)
            else:
                from lensdb.counting.knn import KnnPropagator

                if "codes" in payload:
                    codec = codec if codec is not None else store.codec()
                    vectors = decode_codes(codec, payload["codes"])
                elif "vectors" in payload:
                    vectors = payload["vectors"]
                else:  # format 1
                    vectors = _rows_for(store, payload["frame_ids"], model_id)
                predictor = KnnPropagator(vectors, payload["counts"], int(meta["k"]), meta)
            models.append(LoadedModel(int(model_id), name, method, predictor))
        return cls(models, codec if codec is not None else store.codec())

    def __bool__(self) -> bool:
        return bool(self.models)

    def predict(self, vectors: np.ndarray, raw: bool = False) -> dict[str, tuple[int, np.ndarray]]:
        """class -> (model id, counts) per row; `raw`: run the vectors through the codec first."""
        if not self.models:
            return {}
        x = decode_like_store(self.codec, vectors) if raw else vectors
        return {m.cls: (m.model_id, m.predictor.predict(x)) for m in self.models}


def predict_for_new_frames(
    store: Store, vectors: np.ndarray, raw: bool = False
) -> dict[str, tuple[int, np.ndarray]]:
    """One-off `ActivePredictors.load(store).predict(vectors, raw)`; load once per ingest."""
    return ActivePredictors.load(store).predict(vectors, raw=raw)


def _rows_for(store: Store, frame_ids: np.ndarray, model_id: int) -> np.ndarray:
    """Decoded vectors of `frame_ids`, reading only the segments that hold them."""
    from lensdb.storage.vectors import pca_mean_correction

    frame_ids = np.asarray(frame_ids, np.int64)
    with store.catalog.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT s.file FROM frames f JOIN segments s USING (segment_id) "
            "WHERE list_contains(?, f.frame_id)", [frame_ids.tolist()]
        ).fetchall()
    out = np.zeros((len(frame_ids), int(store.meta()["dim"])), np.float32)
    found = np.zeros(len(frame_ids), bool)
    for (file,) in rows:
        seg = store.vectors.read_segment(file)
        have = np.isin(frame_ids, _segment_ids(seg)) & ~found
        for i in np.flatnonzero(have):
            out[i] = seg.reconstruct(int(frame_ids[i]))
        found |= have
        corr = pca_mean_correction(seg.index)
        if corr is not None:
            out[have] += corr
    if not found.all():
        raise StoreError(
            f"kNN count model {model_id} refers to {int((~found).sum())} frames the store no "
            "longer has; retrain with `lensdb train-counter`"
        )
    return out


def _segment_ids(seg: Any) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(seg.id_map).astype(np.int64)

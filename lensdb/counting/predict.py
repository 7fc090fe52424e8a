"""The active count models, loaded once, predicting counts for frames as they are ingested.

    predictors = ActivePredictors.load(store)      # once per ingest run
    batch.predictions = predictors.predict(vectors)  # per batch: {class: (model_id, counts)}

`vectors` are the batch's vectors as the store gives them back (`storage.vectors.roundtrip`
through the codec); pass raw=True to have raw embedder output run through the codec here.
A model trained for another embedder than the store's (or the one named) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lensdb.counting.registry import decode_like_store, read_model_file
from lensdb.errors import EmbedderMismatchError, StoreError
from lensdb.storage import Store


@dataclass
class LoadedModel:
    model_id: int
    cls: str
    method: str
    predictor: Any  # MlpPredictor or KnnPropagator: .predict(vectors) -> counts


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
        labelled: tuple[np.ndarray, np.ndarray] | None = None
        for model_id, name, method, row_embedder, file in rows:
            meta, payload = read_model_file(store.models_dir / file)
            for trained_for in (row_embedder, meta.get("embedder_id")):
                if trained_for != expected:
                    raise EmbedderMismatchError(
                        f"count model {model_id} for '{name}' was trained for embedder "
                        f"'{trained_for}', these vectors come from '{expected}'; retrain "
                        "with `lensdb train-counter`"
                    )
            if method == "mlp":
                from lensdb.counting.mlp import MlpPredictor

                predictor: Any = MlpPredictor.from_state(payload["state_dict"], meta)
            else:
                from lensdb.counting.knn import KnnPropagator

                if labelled is None:
                    labelled = store.decoded_vectors()
                vectors = _rows_for(labelled, payload["frame_ids"], model_id)
                predictor = KnnPropagator(vectors, payload["counts"], int(meta["k"]), meta)
            models.append(LoadedModel(int(model_id), name, method, predictor))
        return cls(models, store.codec())

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


def _rows_for(
    labelled: tuple[np.ndarray, np.ndarray], frame_ids: np.ndarray, model_id: int
) -> np.ndarray:
    ids, vectors = labelled
    pos = np.searchsorted(ids, frame_ids)
    ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == frame_ids)
    if not ok.all():
        raise StoreError(
            f"kNN count model {model_id} refers to {int((~ok).sum())} frames the store no "
            "longer has; retrain with `lensdb train-counter`"
        )
    return vectors[pos]

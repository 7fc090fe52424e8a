"""Small stores written the way the writers write them (the layout-facts and kept-sample
tests share them): a store with three videos, batches committed with predictions, and a
train-counter style rewrite of one class's predictions."""

from __future__ import annotations

import numpy as np

from lensdb.counting.registry import register_model
from lensdb.storage import Batch, FrameRow, Store
from lensdb.types import Detections

DIM = 8
CLASSES = ("person", "car")


def dets(n: int) -> Detections:
    return Detections(np.zeros((n, 4), np.float32), np.ones(n, np.float32), ("person",) * n)


def new_store(root) -> tuple[Store, object]:
    store = Store.open(root, create=True)
    with store.writer():
        store.bind_space("fake@1", DIM, "Flat")
        codec = store.codec(np.random.default_rng(0).normal(size=(4, DIM)).astype(np.float32))
        with store.catalog.connect(write=True) as con:
            for v in range(3):
                con.execute("INSERT INTO videos (video_id, name, status) VALUES (?, ?, "
                            "'complete')", [v, f"v{v}.mp4"])
    return store, codec


def commit(store, codec, video: int, start: int, n: int, seed: int, every: int = 3,
            classes=CLASSES) -> None:
    """n frames of `video` from frame index `start`: every `every`-th labelled (person
    counts), predictions of `classes` = truth + noise, as the ingest writer commits them."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n)
    rows = [FrameRow(start + i, (start + i) / 25, dets(int(truth[i])) if i % every == 0
                     else None) for i in range(n)]
    preds = {cls: (1, np.maximum(0, truth + rng.normal(0, 0.7, n)).astype(np.float32))
             for cls in classes}
    with store.writer():
        store.commit_batch(Batch(video, rows, rng.normal(size=(n, DIM)).astype(np.float32),
                                 predictions=preds), codec)


def retrain(store, cls: str, order: np.ndarray | None = None) -> None:
    """What train-counter does: a new active model, the class's predictions rewritten."""
    with store.catalog.connect() as con:
        ids = np.array([r[0] for r in con.execute(
            "SELECT frame_id FROM frames ORDER BY frame_id").fetchall()], np.int64)
    ids = ids if order is None else ids[order]
    meta = {"class": cls, "method": "knn", "embedder_id": "fake@1", "codec": "Flat"}
    payload = {"frame_ids": ids, "counts": np.zeros(len(ids)), "vectors": np.zeros((1, DIM))}
    with store.writer():
        register_model(store, meta, payload, {}, len(ids), ids,
                       np.full(len(ids), 1.5, np.float32), np.zeros(len(ids), bool))

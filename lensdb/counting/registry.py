"""Count models in the store: model files, catalog rows and the predictions they write.

A model file lives under `store.models_dir`: an MLP as a torch file (state dict plus
metadata), a kNN propagator as an .npz of its labelled frame ids and counts (their vectors
are read back from the store). Each carries the embedder id it was trained for.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lensdb.errors import StoreError
from lensdb.storage import Store
from lensdb.storage.vectors import roundtrip

FORMAT = 1


def decode_like_store(codec: Any, vectors: np.ndarray) -> np.ndarray:
    """Encode then decode with the store's codec: the vectors queries will see."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if codec is None or len(x) == 0:
        return x
    return roundtrip(codec, x)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"


def _save_model(path: Path, meta: dict, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if meta["method"] == "mlp":
        import torch

        torch.save({"meta": meta, "state_dict": payload["state_dict"]}, tmp)
    else:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                frame_ids=np.asarray(payload["frame_ids"], np.int64),
                counts=np.asarray(payload["counts"], np.float32),
                meta=np.array(json.dumps(meta)),
            )
    os.replace(tmp, path)


def read_model_file(path: Path) -> tuple[dict, dict]:
    """(metadata, payload) of a model file."""
    if not path.exists():
        raise StoreError(f"count model file {path.name} listed in the catalog is missing")
    if path.suffix == ".pt":
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["meta"], {"state_dict": blob["state_dict"]}
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"])), {"frame_ids": z["frame_ids"], "counts": z["counts"]}


def register_model(
    store: Store,
    meta: dict,
    payload: dict,
    metrics: dict,
    train_frames: int,
    frame_ids: np.ndarray,
    values: np.ndarray,
    in_train: np.ndarray,
) -> tuple[int, Path]:
    """Save the file, list it as the class's active model, replace the class's predictions.

    One catalog transaction; the caller holds `store.writer()`.
    """
    cls = meta["class"]
    store.models_dir.mkdir(parents=True, exist_ok=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        model_id = con.execute(
            "SELECT coalesce(max(model_id), 0) + 1 FROM count_models"
        ).fetchone()[0]
        suffix = ".pt" if meta["method"] == "mlp" else ".npz"
        path = store.models_dir / f"count-{model_id:05d}-{_slug(cls)}-{meta['method']}{suffix}"
        meta = meta | {"model_id": int(model_id), "format": FORMAT}
        _save_model(path, meta, payload)
        con.execute("UPDATE count_models SET active = false WHERE class = ? AND active", [cls])
        con.execute(
            "INSERT INTO count_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, true, now())",
            [
                model_id, cls, meta["method"], meta["embedder_id"], meta["codec"],
                meta.get("size"), json.dumps(metrics, sort_keys=True), int(train_frames),
                path.name,
            ],
        )
        con.execute("DELETE FROM predictions WHERE class = ?", [cls])
        n = len(frame_ids)
        table = pa.table(
            {
                "frame_id": np.asarray(frame_ids, np.int64),
                "class": pa.array([cls] * n, pa.string()),
                "model_id": np.full(n, model_id, np.int32),
                "value": np.asarray(values, np.float32),
                "in_train": np.asarray(in_train, bool),
            }
        )
        con.register("new_preds", table)
        con.execute("INSERT INTO predictions SELECT * FROM new_preds")
        con.unregister("new_preds")
        con.execute("COMMIT")
    return int(model_id), path


def list_count_models(store: Store) -> list[dict]:
    """Every count model ever trained in the store, newest first (for `lensdb info`)."""
    with store.catalog.connect() as con:
        cur = con.execute(
            "SELECT model_id, class, method, embedder_id, codec, size, metrics, train_frames, "
            "file, active, created_at FROM count_models ORDER BY model_id DESC"
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return rows

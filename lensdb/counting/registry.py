"""Count models in the store: model files, catalog rows and the predictions they write.

A model file lives under `store.models_dir`, named after the deployed method (interp,
knn, mlp, combo) and holding its embedding model (`meta["embedding_model"]`: what predicts
frames ingested later, past the labels): an MLP as a torch file (state dict plus
metadata), kNN as an .npz of its labelled frame ids, counts and decoded vectors (so loading
it never decodes the store; files of format 1 have no vectors). Each carries the embedder
id it was trained for; a combination's weights are in its metadata.
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
from lensdb.storage import Store, layout_facts
from lensdb.storage.catalog import one_row
from lensdb.storage.vectors import pca_mean_correction, roundtrip

FORMAT = 2


def embedding_kind(meta: dict) -> str:
    """mlp or knn: the model that predicts from vectors alone."""
    return str(meta.get("embedding_model") or meta["method"])


def decode_like_store(codec: Any, vectors: np.ndarray) -> np.ndarray:
    """Encode then decode with the store's codec: the vectors queries will see."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if codec is None or len(x) == 0:
        return x
    return roundtrip(codec, x)


def compact_vectors(codec: Any, vectors: np.ndarray) -> dict[str, np.ndarray]:
    """{"codes": ...} when the codec gives `vectors` (decoded ones) back exactly from their
    codes, else {"vectors": ...}."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if codec is not None and len(x):
        codes = codec.sa_encode(x)
        if np.array_equal(decode_codes(codec, codes), x):
            return {"codes": codes}
    return {"vectors": x}


def decode_codes(codec: Any, codes: np.ndarray) -> np.ndarray:
    """Vectors of codes, as the store decodes them."""
    out = codec.sa_decode(np.ascontiguousarray(codes, dtype=np.uint8))
    corr = pca_mean_correction(codec)
    return out + corr if corr is not None else out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"


def _save_model(path: Path, meta: dict, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if embedding_kind(meta) == "mlp":
        import torch

        torch.save({"meta": meta, "state_dict": payload["state_dict"]}, tmp)
    else:
        with open(tmp, "wb") as f:
            rows = {k: payload[k] for k in ("codes", "vectors") if k in payload}
            np.savez(
                f,
                frame_ids=np.asarray(payload["frame_ids"], np.int64),
                counts=np.asarray(payload["counts"], np.float32),
                meta=np.array(json.dumps(meta)),
                **rows,
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
        payload = {"frame_ids": z["frame_ids"], "counts": z["counts"]}
        for key in ("codes", "vectors"):
            if key in z.files:
                payload[key] = z[key]
        return json.loads(str(z["meta"])), payload


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
        model_id = one_row(con.execute(
            "SELECT coalesce(max(model_id), 0) + 1 FROM count_models"
        ))[0]
        suffix = ".pt" if embedding_kind(meta) == "mlp" else ".npz"
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
        layout_facts.record(con, recheck=[cls])  # the rewritten predictions, checked again
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

"""Trained condition classifiers in the store: a torch file under `store.models_dir` (the
weights in the raw embedding space plus metadata) and a `classifiers` catalog row; the newest
classifier of a condition set is its active one, which `lensdb classify` uses."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from lensdb.classify.probe import Linear
from lensdb.errors import LensDBError
from lensdb.storage.catalog import ensure_schema, one_row
from lensdb.storage.store import Store

FORMAT = 1
_COLS = ("classifier_id, set_name, method, embedder_id, embedder_spec, context, metrics, "
         "train_samples, file, active, created_at")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "set"


def save_classifier(store: Store, meta: dict, model: Linear, metrics: dict,
                    train_samples: int, tower: dict | None = None) -> tuple[int, Path]:
    """Write the file and its row in one transaction; the set's active classifier now.
    `tower`: a fine-tuned vision tower's state dict, stored with the head. The caller holds
    `store.writer()`."""
    import torch

    store.models_dir.mkdir(parents=True, exist_ok=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        ensure_schema(con)
        cid = int(one_row(con.execute(
            "SELECT coalesce(max(classifier_id), 0) + 1 FROM classifiers"))[0])
        path = store.models_dir / f"classifier-{cid:05d}-{_slug(meta['set_name'])}.pt"
        meta = meta | {"classifier_id": cid, "format": FORMAT}
        tmp = path.with_name(f".{path.name}.tmp")
        blob = {"meta": json.dumps(meta), "W": torch.from_numpy(model.W),
                "b": torch.from_numpy(model.b)}
        if tower is not None:
            blob["tower"] = tower
        torch.save(blob, tmp)
        os.replace(tmp, path)
        con.execute("UPDATE classifiers SET active = false WHERE set_name = ? AND active",
                    [meta["set_name"]])
        con.execute(f"INSERT INTO classifiers ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "true, now())",
                    [cid, meta["set_name"], meta["method"], meta["embedder_id"],
                     meta["embedder_spec"], meta["context"], json.dumps(metrics, default=str),
                     int(train_samples), path.name])
        con.execute("COMMIT")
    return cid, path


def list_classifiers(store: Store, set_name: str | None = None) -> list[dict]:
    with store.catalog.connect() as con:
        if not one_row(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                                   "'classifiers'"))[0]:
            return []
        where, params = ("WHERE set_name = ?", [set_name]) if set_name else ("", [])
        cur = con.execute(f"SELECT {_COLS} FROM classifiers {where} ORDER BY classifier_id "
                          "DESC", params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return rows


def find_classifier(store: Store, set_name: str, classifier_id: int | None = None
                    ) -> dict | None:
    """The row of classifier `classifier_id` (which must be of this set), else the set's
    active one (None when the set has none)."""
    rows = list_classifiers(store, set_name)
    if classifier_id is None:
        return next((r for r in rows if r["active"]), None)
    for row in rows:
        if row["classifier_id"] == classifier_id:
            return row
    known = ", ".join(str(r["classifier_id"]) for r in rows) or "none"
    raise LensDBError(f"no classifier {classifier_id} for condition set '{set_name}'; its "
                      f"classifiers: {known}")


def load_classifier(store: Store, row: dict, embedder=None) -> tuple[dict, Linear]:
    """(metadata, head) of a stored classifier. A classifier with a fine-tuned vision tower
    needs the `embedder` (of its id, checked): the tower is put into it."""
    import torch

    path = store.models_dir / row["file"]
    if not path.exists():
        raise LensDBError(f"classifier file {row['file']} listed in the catalog is missing")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if "tower" in blob:
        if embedder is None:
            raise LensDBError(f"classifier {row['classifier_id']} has a fine-tuned tower; "
                              "load it with its embedder")
        from lensdb.classify.finetune import apply_tower

        check_embedder(row, embedder)
        apply_tower(embedder, blob["tower"])
    return json.loads(blob["meta"]), Linear(blob["W"].numpy().astype(np.float32),
                                            blob["b"].numpy().astype(np.float32))


def check_embedder(row: dict, embedder) -> None:
    """A classifier only reads vectors of the embedder it was trained on."""
    if row["embedder_id"] != embedder.model_id:
        raise LensDBError(f"classifier {row['classifier_id']} was trained on embedder "
                          f"'{row['embedder_id']}', not '{embedder.model_id}'; use --embedder "
                          f"{row['embedder_spec']} or train one for this embedder")

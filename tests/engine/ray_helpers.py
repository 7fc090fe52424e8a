"""Shared by this folder's tests: the Ray workers' environment, and what a store holds,
frame by frame, to compare two ingests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
PYTHONPATH = os.pathsep.join([str(HERE), str(HERE.parent)])  # ray_fakes, ingest_fakes


def worker_env() -> dict[str, str]:
    """What Ray worker processes need to register the fakes."""
    return {"PYTHONPATH": PYTHONPATH, "LENSDB_RAY_SETUP": "ray_fakes:install",
            "RAY_AUTH_MODE": "disabled", "YOLO_OFFLINE": "1"}


def snapshot(store) -> dict:
    """(video name, frame index) -> (ts, labelled, counts, vector), plus the statuses."""
    with store.catalog.connect() as con:
        rows = con.execute(
            "SELECT f.frame_id, v.name, f.frame_index, f.ts, f.labelled, "
            "coalesce(list(c.class || ':' || c.n ORDER BY c.class), []) "
            "FROM frames f JOIN videos v USING (video_id) LEFT JOIN counts c USING (frame_id) "
            "GROUP BY ALL ORDER BY 2, 3").fetchall()
        statuses = dict(con.execute("SELECT name, status FROM videos").fetchall())
    ids, vectors = store.decoded_vectors()
    by_id = {int(i): v for i, v in zip(ids, vectors)}
    frames = {}
    for frame_id, name, index, ts, labelled, counts in rows:
        key = (name, int(index))
        assert key not in frames, f"frame {key} stored twice"
        frames[key] = (round(float(ts), 6), bool(labelled), tuple(c for c in counts if c),
                       by_id[int(frame_id)])
    assert len(by_id) == len(rows), "the index and the catalog disagree"
    return {"frames": frames, "statuses": statuses}


def assert_same(a: dict, b: dict, atol: float = 1e-2) -> None:
    """The same frames, timestamps, labels and counts; vectors within codec tolerance."""
    assert a["statuses"] == b["statuses"]
    assert a["frames"].keys() == b["frames"].keys()
    for key, (ts, labelled, counts, vec) in a["frames"].items():
        ts2, labelled2, counts2, vec2 = b["frames"][key]
        assert (ts, labelled, counts) == (ts2, labelled2, counts2), key
        np.testing.assert_allclose(vec, vec2, atol=atol, err_msg=str(key))

"""Detection attributes: one value (with its probability and method) per detection and
condition set, and the per-frame counts of class `object[value]` they add up to.

`write_attributes` commits one batch in one transaction: the batch's attributes replace any
earlier ones of the same detections and set, and the condition counts of the batch's frames
are recomputed from all the attributes those frames have. A crash loses at most the batch in
flight; a re-run skips what was committed (`crops.stored_detections`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from lensdb.classify.conditions import ConditionSet
from lensdb.classify.crops import DetectionRef
from lensdb.storage.catalog import ensure_schema, one_row
from lensdb.storage.store import Store

_MATCH = ("a.frame_id = d.frame_id AND a.class = d.class AND a.x1 = d.x1 AND a.y1 = d.y1 AND "
          "a.x2 = d.x2 AND a.y2 = d.y2")


def write_attributes(store: Store, cs: ConditionSet, refs: list[DetectionRef],
                     probs: np.ndarray, method: str, classifier_id: int | None = None) -> None:
    """Store argmax values of `probs` (n, len(cs.values)) for `refs`; writer only."""
    if not refs:
        return
    best = probs.argmax(axis=1)
    boxes = np.array([r.box for r in refs], np.float32).reshape(-1, 4)
    n = len(refs)
    table = pa.table({
        "frame_id": pa.array([r.frame_id for r in refs], pa.int64()),
        "class": pa.array([r.cls for r in refs], pa.string()),
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "set_name": pa.array([cs.name] * n, pa.string()),
        "value": pa.array([cs.values[i] for i in best], pa.string()),
        "probability": probs[np.arange(n), best].astype(np.float32),
        "method": pa.array([method] * n, pa.string()),
        "classifier_id": pa.array([classifier_id] * n, pa.int32()),
    })
    frames = pa.table({"frame_id": np.unique(table["frame_id"].to_numpy())})
    classes = [cs.class_name(v) for v in cs.values]
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        ensure_schema(con)
        con.register("new_attrs", table)
        con.register("attr_frames", frames)
        con.execute("DELETE FROM detection_attributes a USING new_attrs d WHERE a.set_name = ? "
                    f"AND {_MATCH}", [cs.name])
        con.execute("INSERT INTO detection_attributes SELECT *, now() FROM new_attrs")
        con.execute("DELETE FROM counts WHERE frame_id IN (SELECT frame_id FROM attr_frames) "
                    "AND list_contains(?, class)", [classes])
        con.execute(
            "INSERT INTO counts SELECT a.frame_id, a.class || '[' || a.value || ']', "
            "CAST(count(*) AS INTEGER) FROM detection_attributes a JOIN detections d ON "
            f"{_MATCH} WHERE a.set_name = ? AND a.frame_id IN (SELECT frame_id FROM "
            "attr_frames) GROUP BY a.frame_id, a.class, a.value", [cs.name])
        con.unregister("new_attrs")
        con.unregister("attr_frames")
        con.execute("COMMIT")


def attribute_summary(store: Store, cs: ConditionSet) -> dict[str, int]:
    """Detections per value of the set, over the detections stored now."""
    with store.catalog.connect() as con:
        if not one_row(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                                   "'detection_attributes'"))[0]:
            return {}
        rows = con.execute(f"SELECT a.value, count(*) FROM detection_attributes a JOIN "
                           f"detections d ON {_MATCH} WHERE a.set_name = ? GROUP BY 1",
                           [cs.name]).fetchall()
    found = dict(rows)
    return {v: int(found.get(v, 0)) for v in cs.values}

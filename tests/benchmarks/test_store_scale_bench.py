"""benchmarks/store_scale: its synthetic store and every timed way of reading it run, and the
older-store and scanned-sample readings answer as the current one does."""

from __future__ import annotations

from lensdb.bench import store_scale as ss
from lensdb.query.execute import run_query


def test_every_reading_of_a_synthetic_store_runs_and_agrees(tmp_path):
    store = ss.synthetic_store(tmp_path / "s", 10_000)
    out = ss.timings(store, repeats=1, with_legacy=True)
    assert {"scan_s", "aggregate_s", "legacy_aggregate_s", "scanned_moments_s"} <= set(out)
    # every 10th frame labelled, every 20th trained on: 500 held-out labelled frames
    assert out["moments"] > 0 and out["estimate_frames"] == 500
    now = run_query(store, ss.AGGREGATE, source="predicted")
    with ss.legacy():
        old = run_query(store, ss.AGGREGATE, source="predicted")
    with ss.scanned_sample():
        scanned = run_query(store, ss.AGGREGATE, source="predicted")
    assert old.table == now.table == scanned.table
    assert scanned.estimate == now.estimate

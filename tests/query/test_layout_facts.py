"""Layout facts recorded by the writers (storage/layout_facts.py) and the error estimate's
sample of the labelled frames (estimate_sql.SAMPLE_FRAMES): the recorded facts equal what
the scans find after each kind of write, a store without them (or with stale ones) answers
the same, and a big labelled set is sampled, says so, and keeps an honest interval."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from written_stores import CLASSES
from written_stores import commit as _commit
from written_stores import dets as _dets
from written_stores import new_store as _store
from written_stores import retrain as _retrain

from lensdb.query import estimate_sql as es
from lensdb.query import execute, run_query
from lensdb.query.estimate import confusion_counts, selection_estimate, wilson
from lensdb.query.frame_table import Sample
from lensdb.query.layout import Layout
from lensdb.query.parse import parse_query
from lensdb.storage import Store
from lensdb.storage import layout_facts as lf


def _scanned(con) -> dict:
    """What the scans find (the recorded facts ignored)."""
    layout = Layout(con)
    layout._recorded = {}
    return {"runs": layout.runs(), "labelled": layout.labelled(),
            **{cls: layout.aligned([cls]) for cls in CLASSES}}


def _check(store, runs: bool, aligned: dict[str, bool]) -> None:
    with store.catalog.connect() as con:
        facts = lf.read(con)
        scan = _scanned(con)
    assert scan == {"runs": runs, **aligned, "labelled": scan["labelled"]}
    # every fact is recorded and current, and equals the scan's (the recorded `runs` is
    # a stronger fact: true only where the scan finds true too)
    assert facts[(lf.RUNS, "")] is runs and facts[(lf.LABELLED, "")] == scan["labelled"]
    for cls in CLASSES:
        assert facts[(lf.ALIGNED, cls)] is aligned[cls]


def test_recorded_facts_follow_ingest_train_counter_and_label(tmp_path):
    store, codec = _store(tmp_path / "s")
    _commit(store, codec, 0, 0, 10, 1)
    _check(store, True, {"person": True, "car": True})
    _commit(store, codec, 0, 10, 7, 2)  # the same video goes on
    _commit(store, codec, 1, 0, 9, 3)  # the next video
    _check(store, True, {"person": True, "car": True})
    _retrain(store, "person")  # train-counter: rewritten in frame order
    _check(store, True, {"person": True, "car": True})
    _retrain(store, "person", np.arange(26)[::-1])  # rewritten backwards: not aligned
    _check(store, True, {"person": False, "car": True})
    _commit(store, codec, 2, 0, 5, 4, classes=("car",))  # no person predictions for these
    _check(store, True, {"person": False, "car": True})
    _retrain(store, "person")
    _check(store, True, {"person": True, "car": True})
    _commit(store, codec, 0, 17, 4, 5)  # video 0 resumed after others: no longer runs
    _check(store, False, {"person": True, "car": True})
    with store.catalog.connect() as con:
        before = lf.read(con)[(lf.LABELLED, "")]
        unlabelled = [r[0] for r in con.execute(
            "SELECT frame_id FROM frames WHERE NOT labelled ORDER BY frame_id LIMIT 3").fetchall()]
    with store.writer():
        store.label_frames(unlabelled, [_dets(2)] * 3)
    _check(store, False, {"person": True, "car": True})
    with store.catalog.connect() as con:
        assert lf.read(con)[(lf.LABELLED, "")] == before + 3


def test_runs_broken_inside_a_batch_and_by_an_index_going_back(tmp_path):
    store, codec = _store(tmp_path / "s")
    _commit(store, codec, 0, 0, 6, 1)
    _commit(store, codec, 0, 3, 4, 2)  # frame indexes go back (a re-read): not runs
    _check(store, False, {"person": True, "car": True})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A store written by the writer (facts recorded): three videos, 360 frames, every
    2nd labelled, both classes trained."""
    store, codec = _store(tmp_path_factory.mktemp("facts") / "s")
    for v in range(3):
        for b in range(3):
            _commit(store, codec, v, 40 * b, 40, 10 * v + b, every=2)
    return store


QUERIES = ["count(person) >= 2", "count(person) >= 1 AND count(car) < 3",
           "frames WHERE count(person) >= 4", "avg(count(person)), frames BY video",
           "sum(count(car)) WHERE video = 'v1.mp4' BY 2s"]


def _answers(store) -> list:
    out = []
    for text in QUERIES:
        for source in ("best", "predicted"):
            r = run_query(store, text, source=source)
            out.append((r.table.to_pylist(), r.estimate))
    return out


def test_queries_take_recorded_facts_instead_of_scans(written, monkeypatch):
    with written.catalog.connect() as con:
        assert lf.read(con)[(lf.RUNS, "")] is True
    want = _answers(written)

    def no_scan(*a, **k):
        raise AssertionError("scanned although the fact is recorded")

    monkeypatch.setattr(Layout, "_check_runs", no_scan)
    monkeypatch.setattr("lensdb.query.frame_table.alignment_sql", no_scan)
    assert _answers(written) == want


def test_a_store_without_facts_or_with_stale_ones_answers_the_same(written, tmp_path):
    want = _answers(written)
    old = Store.open(shutil.copytree(written.root, tmp_path / "old"))
    with old.catalog.connect(write=True) as con:
        con.execute("DROP TABLE layout_facts")  # as an older LensDB wrote it
    with old.catalog.connect() as con:
        assert lf.read(con) == {}
    assert _answers(old) == want
    # a write that does not record facts (raw SQL: a frame without predictions) makes
    # them stale: they are not taken, and the scans see the store is no longer aligned
    with old.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        from lensdb.storage.catalog import ensure_schema

        ensure_schema(con)
        lf.record(con)
        con.execute("INSERT INTO frames VALUES (100000, 2, 999, 99.0, false, 0)")
        con.execute("COMMIT")
    with old.catalog.connect() as con:
        assert lf.read(con) == {}
        assert not Layout(con).aligned(["person"])
    with written.catalog.connect() as con:
        assert Layout(con).aligned(["person"])


def test_a_big_labelled_set_is_sampled_and_says_so(written, monkeypatch):
    full = run_query(written, "count(person) >= 2", source="best")
    assert full.estimate["sample"] is None and full.estimate["frames"] == 180
    monkeypatch.setattr(es, "SAMPLE_FRAMES", 60)
    part = run_query(written, "count(person) >= 2", source="best")
    assert part.table == full.table  # the answer itself is unchanged
    e = part.estimate
    assert e["sample"]["frames"] == 60 and e["sample"]["of_labelled"] == 180
    assert e["frames"] == 60 and "sample of 60 of the 180 labelled" in e["note"]
    assert e["precision"]["n"] == e["tp"] + e["fp"] <= 60  # the interval rests on the sample
    # a sample is not spaced in time: its frames weigh alike
    for name, hits, n in (("precision", e["tp"], e["tp"] + e["fp"]),
                          ("recall", e["tp"], e["tp"] + e["fn"])):
        assert e[name] == pytest.approx({**wilson(hits, n), "effective_n": n})
    agg = run_query(written, "avg(count(person)) WHERE count(person) >= 1", source="best")
    assert agg.estimate["sample"]["frames"] == 60
    assert agg.estimate["classes"]["person"]["frames"] <= 60
    assert "sample of 60" in agg.estimate["note"]
    # the same frames under the general plan as under the aligned one
    monkeypatch.setattr(execute, "choose_plan", lambda *a, **k: execute.ft.GENERAL)
    assert run_query(written, "count(person) >= 2", source="best").estimate == e


def test_the_sampled_interval_covers_the_full_value(written):
    """Over 40 seeds, the Wilson 95% interval of precision from a sample of 40 of the 180
    labelled frames covers the precision measured on all of them (nearly) every time."""
    pred = parse_query("count(person) >= 2").where
    with written.catalog.connect() as con:
        plan = execute.choose_plan(Layout(con), ["person"], "best", pred)

        def precision(sample) -> dict:
            counts = confusion_counts(con, pred, "best", replace(plan, sample=sample))
            return selection_estimate(con, pred, "best", 0, 0, replace(plan, sample=sample),
                                      counts)["precision"]

        truth = precision(None)["value"]
        draws = [precision(Sample(40, 180, seed)) for seed in range(40)]
    assert all(w["n"] <= 40 for w in draws)
    assert len({w["value"] for w in draws}) > 5  # different seeds draw different samples
    assert sum(w["low"] <= truth <= w["high"] for w in draws) >= 36

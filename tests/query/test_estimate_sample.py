"""The error estimate's sample kept by the writers (storage/estimate_sample.py): it equals
what the hash-based sample path picks after ingest, label and train-counter writes, the
estimates read from it equal those the scan finds, and a store without it or with a stale
one answers the same."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from written_stores import commit as _commit
from written_stores import dets as _dets
from written_stores import new_store as _store
from written_stores import retrain as _retrain

from lensdb.query import estimate_sql as es
from lensdb.query import execute, run_query
from lensdb.query.layout import Layout
from lensdb.storage import Store
from lensdb.storage import estimate_sample as kept

K = 25  # kept frames in these tests (the store has more labelled frames than that)


@pytest.fixture(autouse=True)
def small_sample(monkeypatch):
    monkeypatch.setattr(kept, "SAMPLE_FRAMES", K)


def _picked(con, k: int = K) -> list[tuple]:
    """What the sample path would read, found by the scan: the K labelled frames of
    smallest hash, each with its class rows (detected, predicted, in_train)."""
    return con.execute(
        "WITH m AS (SELECT frame_id, hash(frame_id, ?::BIGINT) AS h FROM frames WHERE labelled "
        "ORDER BY h LIMIT ?) SELECT m.frame_id, p.class, coalesce(k.n, 0), p.value, p.in_train "
        "FROM m JOIN predictions p ON p.frame_id = m.frame_id LEFT JOIN counts k ON "
        "k.frame_id = m.frame_id AND k.class = p.class ORDER BY 1, 2", [kept.SEED, k]).fetchall()


def _kept(con) -> list[tuple]:
    return con.execute("SELECT frame_id, class, detected, predicted, in_train FROM "
                       "estimate_sample WHERE class <> '' ORDER BY 1, 2").fetchall()


def _check(store) -> None:
    with store.catalog.connect() as con:
        assert _kept(con) == _picked(con)
        frames = con.execute("SELECT count(*) FROM estimate_sample WHERE class = ''"
                             ).fetchall()[0][0]
        labelled = Layout(con).labelled()
        assert frames == min(K, labelled)
        assert kept.serves(con, ["person", "car"], labelled, None if labelled <= K else K,
                           kept.SEED)


def test_the_kept_sample_follows_ingest_label_and_train_counter(tmp_path):
    store, codec = _store(tmp_path / "s")
    _commit(store, codec, 0, 0, 30, 1)  # 10 labelled: all of them kept
    _check(store)
    _commit(store, codec, 0, 30, 60, 2)
    _commit(store, codec, 1, 0, 45, 3, every=2)  # more labelled than K: the K smallest
    _check(store)
    _retrain(store, "person")  # train-counter rewrites one class's predictions
    _check(store)
    with store.catalog.connect() as con:
        unlabelled = [r[0] for r in con.execute(
            "SELECT frame_id FROM frames WHERE NOT labelled ORDER BY hash(frame_id, ?::BIGINT)"
            " LIMIT 12", [kept.SEED]).fetchall()]  # of small hash: they enter the sample
        relabel = [r[0] for r in con.execute(
            "SELECT frame_id FROM estimate_sample WHERE class = '' LIMIT 3").fetchall()]
    with store.writer():  # what the oracle (`lensdb label`, verified queries) writes
        store.label_frames(unlabelled + relabel, [_dets(4)] * 15)
    _check(store)
    _commit(store, codec, 2, 0, 40, 4, classes=("car",))  # no person predictions for these
    _check(store)
    _retrain(store, "car", np.arange(175)[::-1])
    _check(store)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Three videos of 90 frames, every 2nd labelled, both classes predicted."""
    store, codec = _store(tmp_path_factory.mktemp("kept") / "s")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kept, "SAMPLE_FRAMES", K)
        for v in range(3):
            for b in range(3):
                _commit(store, codec, v, 30 * b, 30, 10 * v + b, every=2)
    return store


QUERIES = ["count(person) >= 2", "count(person) >= 1 AND count(car) < 3",
           "count(person) >= 2 AND video = 'v1.mp4'", "frames WHERE count(person) >= 4",
           "avg(count(person)), frames BY video", "sum(count(car)) WHERE video = 'v1.mp4' BY 2s",
           "max(count(car)) WHERE count(person) >= 1 AND time < 2"]


def _answers(store) -> list:
    return [(r.table.to_pylist(), r.estimate) for text in QUERIES
            for source in ("best", "predicted")
            for r in [run_query(store, text, source=source)]]


def _used(monkeypatch) -> list[bool]:
    seen: list[bool] = []
    real = es.kept_eval_sql

    def spy(classes, plan):
        seen.append(True)
        return real(classes, plan)

    monkeypatch.setattr(es, "kept_eval_sql", spy)
    return seen


@pytest.mark.parametrize("size", [K, 20, 10**6])  # sampled as kept, sampled less, all
def test_estimates_from_the_kept_sample_equal_the_scans(written, monkeypatch, size):
    monkeypatch.setattr(es, "SAMPLE_FRAMES", size)
    monkeypatch.setattr(Layout, "kept_sample", lambda self, classes, sample: False)
    want = _answers(written)
    monkeypatch.undo()
    monkeypatch.setattr(kept, "SAMPLE_FRAMES", K)
    monkeypatch.setattr(es, "SAMPLE_FRAMES", size)
    seen = _used(monkeypatch)
    got = _answers(written)
    assert got == want
    assert bool(seen) is (size <= K)  # all 135 labelled frames are more than it keeps
    if size <= K:
        assert got[0][1]["sample"]["frames"] == size
    # the general plan reads the kept sample too (names joined), with the same estimates
    monkeypatch.setattr(execute, "choose_plan", lambda *a, **k: execute.ft.GENERAL)
    got = _answers(written)
    monkeypatch.setattr(Layout, "kept_sample", lambda self, classes, sample: False)
    assert _rounded(got) == _rounded(_answers(written))  # (the joins' row order: sd's last bit)


def _rounded(x):
    if isinstance(x, float):
        return float(f"{x:.12g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x


def test_an_old_or_stale_kept_sample_is_not_read(written, tmp_path, monkeypatch):
    monkeypatch.setattr(es, "SAMPLE_FRAMES", K)
    want = _answers(written)
    old = Store.open(shutil.copytree(written.root, tmp_path / "old"))
    with old.catalog.connect(write=True) as con:
        con.execute("DROP TABLE estimate_sample")  # as an older LensDB wrote it
        con.execute("DROP TABLE estimate_sample_stamps")
    seen = _used(monkeypatch)
    assert _answers(old) == want and not seen
    stale = Store.open(shutil.copytree(written.root, tmp_path / "stale"))
    with stale.catalog.connect(write=True) as con:  # a write that keeps no sample
        con.execute("UPDATE predictions SET value = value + 1 WHERE frame_id IN (SELECT "
                    "frame_id FROM estimate_sample) AND class = 'person'")
        con.execute("DELETE FROM predictions WHERE frame_id = 1 AND class = 'person'")
    with stale.catalog.connect() as con:
        assert not kept.serves(con, ["person"], Layout(con).labelled(), K, kept.SEED)
        assert kept.serves(con, ["car"], Layout(con).labelled(), K, kept.SEED)
    r = run_query(stale, "count(person) >= 2", source="predicted")
    assert not seen and r.estimate != want[0][1]  # measured on the values stored now


def test_the_real_write_paths_keep_it(tmp_path, monkeypatch):
    """Ingest (fake detector and embedder), train-counter and a verified query's labels, as
    the commands run them: after each, the kept sample is the one the scan picks."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "counting"))
    from fake_models import build_scene_store

    monkeypatch.setattr(kept, "SAMPLE_FRAMES", 8)
    store = Store.open(build_scene_store(tmp_path / "scenes"))
    with store.catalog.connect() as con:
        labelled = Layout(con).labelled()
        assert labelled > 8 and _kept(con) == _picked(con, 8)
        assert kept.serves(con, ["person"], labelled, 8, kept.SEED)
    from lensdb.query import run_verified

    run_verified(store, "count(person) >= 5", recall=0.9, budget=60)
    with store.catalog.connect() as con:
        assert Layout(con).labelled() > labelled  # the detector ran, its labels are stored
        assert _kept(con) == _picked(con, 8)
        assert kept.serves(con, ["person"], Layout(con).labelled(), 8, kept.SEED)

"""The runs of rounded counts the writers keep (storage/count_runs.py): after each kind of
write they equal the runs found from scratch, moments from them equal moments from the
frames (both sources, after ingest, label and train-counter writes), and a store whose runs
are stale, missing or out of order answers from the frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from written_stores import commit, dets, new_store, retrain

from lensdb.query import compile as c
from lensdb.query import run_query
from lensdb.query.layout import Layout
from lensdb.storage import count_runs

QUERIES = ["count(person) >= 2", "count(person) = 0", "NOT count(person) >= 3",
           "count(person) >= 1 AND video = 'v1.mp4'", "count(person) < 2 OR video = 'v0.mp4'"]


def _kept(store, source: str = "predicted") -> list[tuple]:
    with store.catalog.connect() as con:
        return con.execute(
            "SELECT class, video_id, first_id, last_id, n, prev_n, next_n, frames, n_predicted, "
            "round(sum_value, 4), first_ts, last_ts, cum_frames, cum_predicted, "
            "round(cum_value, 4) FROM count_runs WHERE source = ? ORDER BY class, first_id",
            [source]).fetchall()


def _from_scratch(store, classes, source: str = "predicted") -> list[tuple]:
    """The runs, found in Python from the frames, counts and predictions."""
    out = []
    with store.catalog.connect() as con:
        for cls in sorted(classes):
            rows = con.execute(
                "SELECT f.frame_id, f.video_id, f.ts, p.value, f.labelled, coalesce(k.n, 0) "
                "FROM frames f JOIN predictions p ON p.frame_id = f.frame_id AND p.class = ? "
                "LEFT JOIN counts k ON k.frame_id = f.frame_id AND k.class = p.class "
                "ORDER BY f.frame_id", [cls]).fetchall()
            runs: list[list] = []
            for fid, vid, ts, value, labelled, det in rows:
                if source == "best" and labelled:
                    value = float(det)
                n = float(np.floor(value + 0.5))
                if not runs or vid != runs[-1][0][1] or n != runs[-1][0][4]:
                    runs.append([])
                runs[-1].append((fid, vid, ts, value, n, source == "predicted" or not labelled))
            cum = [0, 0, 0.0]
            for i, run in enumerate(runs):
                vid = run[0][1]
                prev = runs[i - 1][0][4] if i and runs[i - 1][0][1] == vid else None
                nxt = runs[i + 1][0][4] if i + 1 < len(runs) and runs[i + 1][0][1] == vid \
                    else None
                value, predicted = sum(r[3] for r in run), sum(r[5] for r in run)
                cum = [cum[0] + len(run), cum[1] + predicted, cum[2] + value]
                out.append((cls, vid, run[0][0], run[-1][0], run[0][4], prev, nxt, len(run),
                            predicted, round(value, 4), run[0][2], run[-1][2], cum[0], cum[1],
                            round(cum[2], 4)))
    return out


def _answers(store, monkeypatch, use_runs: bool, text: str, gap=None,
             source: str = "predicted") -> list[tuple]:
    taken = []
    real = c.indexed_runs_sql

    def spy(*args, **kwargs):
        taken.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(c, "indexed_runs_sql", spy)
    if not use_runs:
        monkeypatch.setattr(Layout, "count_runs", lambda self, source, classes: False)
    table = run_query(store, text, source=source, gap=gap).table
    monkeypatch.undo()
    assert bool(taken) is use_runs
    return [tuple(round(v, 4) if isinstance(v, float) else v for v in row.values())
            for row in table.to_pylist()]


@pytest.mark.parametrize("tail", [count_runs.TAIL, 4])  # 4: the tail search misses, often
@pytest.mark.parametrize("source", ["predicted", "best"])
def test_kept_runs_follow_ingest_and_train_counter(tmp_path, monkeypatch, source, tail):
    monkeypatch.setattr(count_runs, "TAIL", tail)
    store, codec = new_store(tmp_path / "s")
    commit(store, codec, 0, 0, 10, 1)
    assert _kept(store, source) == _from_scratch(store, ["person", "car"], source)
    commit(store, codec, 0, 10, 7, 2)  # the same video goes on: its last run may too
    commit(store, codec, 1, 0, 9, 3)  # the next video: runs break at its first frame
    assert _kept(store, source) == _from_scratch(store, ["person", "car"], source)
    assert len({r[1] for r in _kept(store, source)}) == 2
    retrain(store, "person")  # train-counter: person rewritten (all 1.5)
    kept = _kept(store, source)
    assert kept == _from_scratch(store, ["person", "car"], source)
    if source == "predicted":
        assert [r[7] for r in kept if r[0] == "person"] == [17, 9]  # one run a video
    retrain(store, "person", np.arange(26)[::-1])  # not aligned any more: person dropped
    assert {r[0] for r in _kept(store, source)} == {"car"}
    with store.catalog.connect() as con:
        assert count_runs.serves(con, source, ["car"])
        assert not count_runs.serves(con, source, ["person"])


@pytest.mark.parametrize("source", ["predicted", "best"])
@pytest.mark.parametrize("gap", [None, 0.2])
def test_moments_from_kept_runs_equal_moments_from_frames(tmp_path, monkeypatch, gap, source):
    store, codec = new_store(tmp_path / "s")
    for video, seed in ((0, 1), (1, 2), (2, 3)):
        commit(store, codec, video, 0, 40, seed)
    commit(store, codec, 2, 40, 25, 4)
    for step in ("ingest", "label"):
        if step == "label":  # `lensdb label` / a verified query: labels mid-store
            with store.writer():
                store.label_frames([5, 6, 50, 51, 52], [dets(4), dets(0), dets(3), dets(3),
                                                        dets(4)])
        for text in QUERIES:
            fast = _answers(store, monkeypatch, True, text, gap, source)
            assert fast == _answers(store, monkeypatch, False, text, gap, source), (step, text)
            assert fast  # every query here matches something
    # the label write moved the best runs (as a rebuild from scratch finds them, but for
    # runs of one count that a rebuild from the middle may leave split), not the predicted
    kept, scratch = _kept(store, source), _from_scratch(store, ["person", "car"], source)
    assert [r[-3:] for r in kept][-1] == [r[-3:] for r in scratch][-1]  # the running sums


def test_stale_or_missing_runs_are_not_read(tmp_path, monkeypatch):
    store, codec = new_store(tmp_path / "s")
    commit(store, codec, 0, 0, 30, 1)
    expected = _answers(store, monkeypatch, True, QUERIES[0])
    with store.catalog.connect(write=True) as con:  # a write without the writers' hook
        con.execute("UPDATE predictions SET value = value + 2 WHERE class = 'person' AND "
                    "frame_id < 5")
        con.execute("DELETE FROM count_runs_stamps")
    changed = _answers(store, monkeypatch, False, QUERIES[0])
    assert changed != expected
    with store.catalog.connect(write=True) as con:  # runs kept, stamped with another state
        con.execute("INSERT INTO count_runs_stamps VALUES ('predicted', 'person', 30, 29, 29, "
                    "true)")
    assert _answers(store, monkeypatch, False, QUERIES[0]) == changed


def test_times_that_go_back_are_answered_from_the_frames(tmp_path, monkeypatch):
    from written_stores import DIM

    from lensdb.storage import Batch, FrameRow

    store, codec = new_store(tmp_path / "s")
    rng = np.random.default_rng(0)
    ts = [i / 25 for i in range(30)]
    ts[12], ts[13] = ts[13], ts[12]  # a timestamp out of order (a broken pts)
    rows = [FrameRow(i, ts[i], dets(1) if i % 3 == 0 else None) for i in range(30)]
    preds = {"person": (1, (np.arange(30) % 7 > 2).astype(np.float32) * 2)}
    with store.writer():
        store.commit_batch(Batch(0, rows, rng.normal(size=(30, DIM)).astype(np.float32),
                                 predictions=preds), codec)
    with store.catalog.connect() as con:
        assert not count_runs.serves(con, "predicted", ["person"])
    _answers(store, monkeypatch, False, QUERIES[0])  # asserts the runs were not read


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory):
    store, codec = new_store(tmp_path_factory.mktemp("runs") / "s")
    for video, seed in ((0, 5), (1, 6), (2, 7)):
        commit(store, codec, video, 0, 50, seed)
    with store.writer():
        store.label_frames([7, 8, 60, 61, 130], [dets(3), dets(3), dets(0), dets(5), dets(2)])
    return store


_ATOM = st.one_of(
    st.builds(lambda op, n: f"count(person) {op} {n}",
              st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), st.integers(0, 5)),
    st.builds(lambda op, v: f"video {op} 'v{v}.mp4'", st.sampled_from(["=", "!="]),
              st.integers(0, 2)))
_PREDICATE = st.recursive(_ATOM, lambda kids: st.one_of(
    st.builds(lambda a, b: f"({a}) AND ({b})", kids, kids),
    st.builds(lambda a, b: f"({a}) OR ({b})", kids, kids),
    st.builds(lambda a: f"NOT ({a})", kids)), max_leaves=4).filter(lambda t: "count(" in t)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(_PREDICATE, st.sampled_from(["best", "predicted"]), st.sampled_from([None, 0.1]))
def test_random_one_class_predicates_give_the_same_moments(labelled_store, monkeypatch,
                                                           text, source, gap):
    fast = _answers(labelled_store, monkeypatch, True, text, gap, source)
    assert fast == _answers(labelled_store, monkeypatch, False, text, gap, source), text

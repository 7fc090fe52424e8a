"""The aligned plan (layout.py) against the general plan, on stores laid out the way LensDB
writes them and on stores that break each fact the aligned plan relies on.

Every query is answered twice: as run_query picks (the aligned plan where the layout
checks pass, with the frame-id moments where they allow) and with the general plan forced;
the two answers must be the same table (types included) with the same error estimate. The
brute-force oracle checks the layouts it can read (it keeps one prediction per frame).
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from plan_stores import ORACLE_LAYOUTS, make_stores
from query_oracle import Oracle, like

from lensdb.query import execute, matching_frame_ids, parse_query, run_query
from lensdb.query import frame_table as ft
from lensdb.query import plan as p


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return make_stores(tmp_path_factory)


# ---- the same answers from both plans --------------------------------------------------------

SELECTIONS = [
    "count(person) >= 1 AND count(car) <= 1",
    "video = 'b.mp4' OR count(person) >= 2",
    "NOT video LIKE 'a%' AND count(person) > 0 OR time < 0.2s",
    "video = 'c''q.mp4' AND count(person) != 2",
]
AGGREGATES = [
    "frames WHERE count(person) >= 2",
    "avg(count(person)), frames WHERE count(car) >= 1 OR video = 'b.mp4' BY video",
    "sum(count(person)), max(count(car)) WHERE time < 0.6s BY 0.5s",
]
# layouts (and sources) where some of the aligned plan still runs, or that the oracle cannot
# read (duplicates, a video without a name); the layouts that send a query straight to the
# general plan are checked against the oracle (test_moments_match_brute_force_on_every_layout)
DIFFERENTIAL = [(name, source) for name in (
    "lensdb", "interleaved", "null_value", "missing_video", "unnamed_video", "sparse_video_ids",
    "duplicate_count", "duplicate_prediction") for source in ("best", "predicted")] + [
    (name, "detected") for name in ("lensdb", "missing_video", "unnamed_video",
                                    "duplicate_count")]


def _for(layout: str, text: str) -> str:
    """The query as asked of `layout`: where b.mp4 has no name in the videos table, naming
    it with `=` is an error, so the same predicate is asked as a LIKE (which may match no
    video)."""
    if layout in ("missing_video", "unnamed_video"):
        return text.replace("video = 'b.mp4'", "video LIKE 'b.mp4'")
    return text


def _general(monkeypatch):
    monkeypatch.setattr(execute, "choose_plan", lambda *a, **k: ft.GENERAL)


def _same(got, want):
    assert got.kind == want.kind and got.notes == want.notes
    assert got.table.schema == want.table.schema
    assert got.table.num_rows == want.table.num_rows
    for g, w in zip(got.table.to_pylist(), want.table.to_pylist()):
        assert g.keys() == w.keys()
        for key in g:
            if isinstance(w[key], float):
                assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-12), key
            else:
                assert g[key] == w[key], key
    assert _rounded(got.estimate) == _rounded(want.estimate)


def _rounded(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _answers(store, monkeypatch, calls) -> tuple[list, list]:
    fast = [call(store) for call in calls]
    with monkeypatch.context() as m:
        _general(m)
        general = [call(store) for call in calls]
    return fast, general


@pytest.mark.parametrize("name,source", DIFFERENTIAL)
def test_plans_agree(stores, monkeypatch, name, source):
    calls = []
    for text in SELECTIONS[:2]:
        for kw in ({}, {"gap": 0.2}, {"frames": True}):
            calls.append(lambda s, text=_for(name, text), kw=kw: run_query(
                s, text, source=source, **kw))
    calls.append(lambda s: run_query(s, SELECTIONS[2] + " LIMIT 3", source=source))
    calls.append(lambda s: run_query(s, SELECTIONS[3] + " LIMIT 4 GAP 0.2s", source=source))
    for text in AGGREGATES:
        calls.append(lambda s, text=_for(name, text): run_query(s, text, source=source))
    fast, general = _answers(stores[name], monkeypatch, calls)
    for got, want in zip(fast, general):
        _same(got, want)


@pytest.mark.parametrize("name", ORACLE_LAYOUTS)
@pytest.mark.parametrize("source", ["best", "predicted"])
def test_moments_match_brute_force_on_every_layout(stores, name, source):
    store = stores[name]
    oracle = Oracle(store)
    for text in (_for(name, t) for t in SELECTIONS[1:]):
        pred = _as_python(parse_query(text).where)
        classes = p.predicate_classes(parse_query(text).where)
        for gap in (None, 0.2):
            want = oracle.moments(pred, classes, source, gap=gap)
            got = run_query(store, text, source=source, gap=gap)
            assert [(r["video"], r["start"], r["end"], r["frames"]) for r in got.rows] == [
                w[:4] for w in want], (text, gap)
            for row, w in zip(got.rows, want):
                for cls in classes:
                    assert row[f"mean count({cls})"] == pytest.approx(w[4][cls], abs=1e-9)
        ids = matching_frame_ids(store, text, source=source).tolist()
        assert ids == sorted(f.frame_id for f in oracle.select(pred, classes, source))


def _as_python(pred):
    """A plan predicate as a Python function of the oracle's frame (its own evaluation)."""
    if isinstance(pred, p.Compare):
        return lambda f: _cmp(f.c(pred.count.cls), pred.op, pred.value)
    if isinstance(pred, p.VideoMatch):
        def match(f):
            if f.video is None:
                return None
            hit = f.video == pred.pattern if pred.op in ("=", "!=") else like(pred.pattern,
                                                                             f.video)
            return hit if pred.op in ("=", "LIKE") else not hit
        return match
    if isinstance(pred, p.TimeCompare):
        return lambda f: _cmp(f.ts, pred.op, pred.seconds)
    if isinstance(pred, p.TimeRange):
        return lambda f: pred.low <= f.ts <= pred.high
    if isinstance(pred, p.Not):
        inner = _as_python(pred.item)
        return lambda f: None if inner(f) is None else not inner(f)
    items = [_as_python(i) for i in pred.items]
    if isinstance(pred, p.And):
        return lambda f: _and([i(f) for i in items])
    return lambda f: _or([i(f) for i in items])


def _cmp(a, op, b):
    return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _and(vals):
    return False if False in vals else None if None in vals else True


def _or(vals):
    return True if True in vals else None if None in vals else False



def test_moments_follow_each_videos_frame_order(stores):
    """Frame ids 3 and 4 of video 0 swapped frame indexes: frame 4 comes before frame 3 in
    the video, and the answer follows the frame index, as the general plan does."""
    store = stores["index_back"]
    result = run_query(store, "time >= 0", frames=True)
    video0 = [r["frame_id"] for r in result.rows if r["video"] == "a.mp4"]
    assert video0[:6] == [0, 1, 2, 4, 3, 5]
    # frames 0, 1, 2 and 4 (not 3) are at most 0.24s in: one moment, in frame index order
    for source in ("best", "predicted"):
        moments = run_query(store, "time <= 0.24s AND video = 'a.mp4'", source=source).rows
        assert [(m["start"], m["end"], m["frames"]) for m in moments] == [(0.0, 0.24, 4)]
        # a resumed video: its two ranges of frame ids make one moment
        moments = run_query(stores["resumed"], "video = 'a.mp4'", source=source).rows
        assert [(m["start"], m["end"], m["frames"]) for m in moments] == [(0.0, 1.04, 14)]



def test_aligned_plan_types_match(stores):
    """Moments' frames and aggregates' counts stay BIGINT with --gap merging."""
    result = run_query(stores["lensdb"], "count(person) >= 1", source="predicted", gap=0.3)
    assert result.table.schema.field("frames").type == pa.int64()
    assert not any(isinstance(v, float) and math.isnan(v)
                   for r in result.rows for v in r.values())

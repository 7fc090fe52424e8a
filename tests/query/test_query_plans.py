"""The aligned plan (layout.py) against the general plan, on stores laid out the way LensDB
writes them and on stores that break each fact the aligned plan relies on.

Every query is answered twice: as run_query picks (the aligned plan where the layout
checks pass, with the frame-id moments where they allow) and with the general plan forced;
the two answers must be the same table (types included) with the same error estimate. The
brute-force oracle checks the layouts it can read (it keeps one prediction per frame).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from query_oracle import Oracle, like

from lensdb.query import compile as c
from lensdb.query import estimate_sql as es
from lensdb.query import execute, matching_frame_ids, parse_query, run_query
from lensdb.query import frame_table as ft
from lensdb.query import plan as p
from lensdb.query import sql as sq
from lensdb.query.layout import Layout
from lensdb.storage.store import Store

VIDEOS = [(0, "a.mp4", 14), (1, "b.mp4", 11), (2, "c'q.mp4", 9)]
CLASSES = ("person", "car")


@dataclass
class Rows:
    """A store's rows, in the order they are inserted."""

    videos: list = field(default_factory=list)
    frames: list = field(default_factory=list)  # (frame_id, video_id, frame_index, ts, labelled)
    counts: list = field(default_factory=list)  # (frame_id, class, n)
    preds: list = field(default_factory=list)  # (frame_id, class, value, in_train)


def lensdb_rows(seed: int = 3) -> Rows:
    """Rows as LensDB writes them: videos one after the other, frame ids counting up, every
    3rd frame labelled, predictions for every frame written per batch of 4 frames, class
    by class (as Store.commit_batch does)."""
    rng = random.Random(seed)
    rows = Rows(videos=[(v, name) for v, name, _ in VIDEOS])
    fid = 0
    for v, _, n in VIDEOS:
        batch = []
        for i in range(n):
            labelled = i % 3 == 0
            rows.frames.append((fid, v, i * 2, i * 0.08, labelled))
            truth = {"person": rng.choice([0, 1, 2, 2, 3]), "car": rng.choice([0, 0, 1, 2])}
            if labelled:
                rows.counts += [(fid, cls, k) for cls, k in truth.items() if k]
            batch.append((fid, truth, labelled and i % 2 == 0))
            fid += 1
            if len(batch) == 4 or i == n - 1:
                for cls in CLASSES:
                    for f, t, in_train in batch:
                        value = max(0.0, t[cls] + rng.choice([-0.5, 0.5, 0.0, 0.7, -0.8]))
                        rows.preds.append((f, cls, value, in_train))
                batch = []
    return rows


def build(root: Path, rows: Rows) -> Store:
    store = Store.open(root, create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        for model_id, cls in enumerate(CLASSES):
            con.execute("INSERT INTO count_models (model_id, class, method, active) VALUES "
                        "(?, ?, 'mlp', true)", [model_id, cls])
        for v, name in rows.videos:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (?, ?, 'complete')",
                        [v, name])
        con.executemany("INSERT INTO frames VALUES (?, ?, ?, ?, ?, 0)", rows.frames)
        con.executemany("INSERT INTO counts VALUES (?, ?, ?)", rows.counts)
        con.executemany("INSERT INTO predictions VALUES (?, ?, 0, ?, ?)", rows.preds)
        con.execute("COMMIT")
    return store


# ---- layouts: (name, rows, expected facts: complete, aligned(person), dense(person), runs)

def _interleaved() -> Rows:
    """Videos 0 and 1 ingested at once (a service with two streams): their frames alternate."""
    rows = lensdb_rows()
    a = [f for f in rows.frames if f[1] == 0]
    b = [f for f in rows.frames if f[1] == 1]
    rest = [f for f in rows.frames if f[1] > 1]
    mixed = [f for pair in zip(a, b) for f in pair] + a[len(b):] + rest
    return _renumber(rows, [f[0] for f in mixed])


def _resumed() -> Rows:
    """Video 0 stopped half-way and was resumed after video 1: two ranges of frame ids."""
    rows = lensdb_rows()
    a = [f for f in rows.frames if f[1] == 0]
    order = [f[0] for f in a[:6]] + [f[0] for f in rows.frames if f[1] == 1] + [
        f[0] for f in a[6:]] + [f[0] for f in rows.frames if f[1] == 2]
    return _renumber(rows, order)


def _renumber(rows: Rows, order: list[int]) -> Rows:
    """New frame ids 0.. in `order` (frames, counts and predictions follow)."""
    new = {old: i for i, old in enumerate(order)}
    by_id = {f[0]: f for f in rows.frames}
    frames = [(new[o],) + by_id[o][1:] for o in order]
    counts = sorted(((new[f],) + tuple(r) for f, *r in rows.counts), key=lambda r: r[0])
    preds = sorted(((new[f],) + tuple(r) for f, *r in rows.preds),
                   key=lambda r: (r[0], CLASSES.index(r[1])))
    return Rows(rows.videos, frames, counts, preds)


def _index_back() -> Rows:
    """Within video 0, frame ids 3 and 4 hold frame indexes in the wrong order."""
    rows = lensdb_rows()
    f3, f4 = rows.frames[3], rows.frames[4]
    rows.frames[3], rows.frames[4] = f3[:2] + f4[2:4] + f3[4:], f4[:2] + f3[2:4] + f4[4:]
    return rows


def _frames_out_of_order() -> Rows:
    """The frames table holds video 1's frames before video 0's (ids unchanged)."""
    rows = lensdb_rows()
    rows.frames = [f for f in rows.frames if f[1] == 1] + [f for f in rows.frames if f[1] != 1]
    return rows


def _retrained() -> Rows:
    """train-counter rewrote person's predictions: deleted, then all inserted again."""
    return lensdb_rows()  # the rewrite happens in the store (see test), not in the rows


def _shuffled() -> Rows:
    """person's predictions written in reverse frame order."""
    rows = lensdb_rows()
    person = [r for r in rows.preds if r[1] == "person"][::-1]
    rows.preds = [r for r in rows.preds if r[1] != "person"] + person
    return rows


def _duplicate_prediction() -> Rows:
    rows = lensdb_rows()
    rows.preds.append(next(r for r in rows.preds if r[0] == 5 and r[1] == "person"))
    return rows


def _orphan_prediction() -> Rows:
    """A prediction for a frame id that is not in frames."""
    rows = lensdb_rows()
    rows.preds.append((999, "person", 2.0, False))
    return rows


def _missing_prediction() -> Rows:
    """No person prediction on an unlabelled frame (in the middle of video 0)."""
    rows = lensdb_rows()
    rows.preds = [r for r in rows.preds if not (r[0] == 5 and r[1] == "person")]
    return rows


def _null_value() -> Rows:
    """A person prediction without a value, in the middle of video 1."""
    rows = lensdb_rows()
    rows.preds = [(f, cls, None if (f, cls) == (17, "person") else v, t)
                  for f, cls, v, t in rows.preds]
    return rows


def _missing_video() -> Rows:
    """Frames of a video that is not in the videos table."""
    rows = lensdb_rows()
    rows.videos = [v for v in rows.videos if v[0] != 1]
    return rows


def _unnamed_video() -> Rows:
    rows = lensdb_rows()
    rows.videos = [(v, None if v == 1 else name) for v, name in rows.videos]
    return rows


def _sparse_video_ids() -> Rows:
    """Video ids 0, 5 and 9 (named and ordered by a join, not by lookups)."""
    rows = lensdb_rows()
    ids = {0: 0, 1: 5, 2: 9}
    rows.videos = [(ids[v], name) for v, name in rows.videos]
    rows.frames = [(f, ids[v], *rest) for f, v, *rest in rows.frames]
    return rows


def _duplicate_count() -> Rows:
    """A detector count written twice (the general plan counts such a frame twice)."""
    rows = lensdb_rows()
    rows.counts.append(next(r for r in rows.counts if r[1] == "person"))
    return rows


LAYOUTS = {
    "lensdb": (lensdb_rows, (True, True, True, True)),
    "retrained": (_retrained, (True, True, True, True)),
    "interleaved": (_interleaved, (True, True, True, False)),
    "resumed": (_resumed, (True, True, True, False)),
    "index_back": (_index_back, (True, True, True, False)),
    "frames_out_of_order": (_frames_out_of_order, (True, False, False, True)),
    "shuffled": (_shuffled, (True, False, False, True)),
    "duplicate_prediction": (_duplicate_prediction, (True, False, False, True)),
    "orphan_prediction": (_orphan_prediction, (True, False, False, True)),
    "missing_prediction": (_missing_prediction, (True, False, False, True)),
    "null_value": (_null_value, (True, True, False, True)),
    "missing_video": (_missing_video, (False, True, True, True)),
    "unnamed_video": (_unnamed_video, (True, True, True, True)),
    "sparse_video_ids": (_sparse_video_ids, (True, True, True, True)),
    "duplicate_count": (_duplicate_count, (True, True, True, True)),
}
# the oracle keeps one prediction and count per frame, and sorts by video name
ORACLE_LAYOUTS = [k for k in LAYOUTS if not k.startswith("duplicate") and k != "unnamed_video"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    out = {}
    for name, (make, _) in LAYOUTS.items():
        store = build(tmp_path_factory.mktemp("plans") / name, make())
        if name == "retrained":
            with store.catalog.connect(write=True) as con:
                con.execute("BEGIN")
                kept = con.execute("SELECT * FROM predictions WHERE class = 'person' "
                                   "ORDER BY frame_id").fetchall()
                con.execute("DELETE FROM predictions WHERE class = 'person'")
                con.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)", kept)
                con.execute("COMMIT")
        out[name] = store
    return out


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_facts(stores, name):
    complete, aligned, dense, runs = LAYOUTS[name][1]
    with stores[name].catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() is complete
        assert layout.aligned(["person"]) is aligned
        assert layout.dense(["person"]) is dense
        assert layout.runs() is runs
        assert layout.aligned(["car"]) is (name not in ("frames_out_of_order",))
        assert (layout.videos() is not None) is (complete and name != "sparse_video_ids")


def test_fixture_store_layout(store):
    """The shared test store: car lacks predictions on some frames (the general plan)."""
    with store.catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() and layout.runs()
        assert layout.dense(["person", "dog"]) and not layout.aligned(["person", "car"])


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
            calls.append(lambda s, text=text, kw=kw: run_query(s, text, source=source, **kw))
    calls.append(lambda s: run_query(s, SELECTIONS[2] + " LIMIT 3", source=source))
    calls.append(lambda s: run_query(s, SELECTIONS[3] + " LIMIT 4 GAP 0.2s", source=source))
    for text in AGGREGATES:
        calls.append(lambda s, text=text: run_query(s, text, source=source))
    fast, general = _answers(stores[name], monkeypatch, calls)
    for got, want in zip(fast, general):
        _same(got, want)


@pytest.mark.parametrize("name", ORACLE_LAYOUTS)
@pytest.mark.parametrize("source", ["best", "predicted"])
def test_moments_match_brute_force_on_every_layout(stores, name, source):
    store = stores[name]
    oracle = Oracle(store)
    for text in SELECTIONS[1:]:
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


# ---- the frame-id moments check themselves ----------------------------------------------------

def test_frame_id_runs_check_their_own_grouping(stores):
    """With a count written twice, `best` gives that frame two rows: the frame-id grouping
    sees more rows than ids in a run and says so; run_query then answers with the general
    moments (test_plans_agree)."""
    pred = parse_query("count(person) >= 0").where
    with stores["duplicate_count"].catalog.connect() as con:
        sql = c.runs_sql(pred, ["person"], "best", None, ft.Plan({}))
        assert not all(con.sql(sql.text, params=sql.params).to_arrow_table()["ok"].to_pylist())
    with stores["lensdb"].catalog.connect() as con:
        for source in ("best", "predicted"):
            sql = c.runs_sql(pred, ["person"], source, 0.1, ft.Plan({}))
            assert all(con.sql(sql.text, params=sql.params).to_arrow_table()["ok"].to_pylist())


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


def test_user_text_only_in_parameters_in_the_aligned_plan():
    evil = "x'; DROP TABLE frames; --"
    quoted = evil.replace("'", "''")
    q = parse_query(f"count('{quoted}') > 1 AND video = '{quoted}' LIMIT 2")
    classes = p.classes(q)
    agg = parse_query(f"avg(count('{quoted}')) WHERE video LIKE '{quoted}' BY 2s")
    plan = ft.Plan({m: sq.Atom((1, 2), (3,))
                   for m in p.video_matches(q.where) + p.video_matches(agg.where)})
    sqls = [c.frames_sql(q.where, classes, "best", 3, plan),
            c.frame_ids_sql(q.where, classes, "predicted", plan),
            c.runs_sql(q.where, classes, "best", 1.0, plan),
            c.runs_sql(q.where, classes, "predicted", None, plan),
            c.moments_sql(q.where, classes, "best", 1.0, plan),
            c.aggregate_sql(agg, classes, "best", plan),
            es.confusion_sql(q.where, classes, plan),
            es.residuals_sql(classes[0], q.where, classes, plan),
            ft.alignment_sql(classes), ft.null_values_sql(classes[0]),
            sq.video_atom_sql(p.video_matches(q.where)[0])]
    for sql in sqls:
        assert "DROP" not in sql.text and "x'" not in sql.text
        assert sql.text.count("?") == len(sql.params)
    assert any(evil in sql.params for sql in sqls)


def test_empty_store_layout(tmp_path):
    store = Store.open(tmp_path / "s", create=True)
    with store.catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() and layout.runs() and layout.aligned(["person"])
    assert run_query(store, "time > 0").rows == []
    assert run_query(store, "frames BY video").rows == []


def test_aligned_plan_types_match(stores):
    """Moments' frames and aggregates' counts stay BIGINT with --gap merging."""
    result = run_query(stores["lensdb"], "count(person) >= 1", source="predicted", gap=0.3)
    assert result.table.schema.field("frames").type == pa.int64()
    assert not any(isinstance(v, float) and math.isnan(v)
                   for r in result.rows for v in r.values())

"""Aggregates and error estimates against a brute-force evaluation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from query_oracle import like, make_store

from lensdb.query import run_query
from lensdb.query.estimate import (
    Confusion,
    extreme_error_bound,
    mean_error_bound,
    precision_recall,
    ratio_error_bound,
    weighted_wilson,
    wilson,
)
from lensdb.query.estimate_sql import time_weights

SOURCES = ("best", "predicted", "detected")

# (query, [(func, class)], WHERE in Python or None, classes, BY: None | "video" | seconds)
CASES = [
    ("avg(count(person))", [("avg", "person")], None, ["person"], None),
    ("min(count(car)), max(count(car)), sum(count(car))",
     [("min", "car"), ("max", "car"), ("sum", "car")], None, ["car"], None),
    ("frames", [("frames", None)], None, [], None),
    ("count(*) WHERE time BETWEEN 1s AND 2s", [("frames", None)],
     lambda f: 1 <= f.ts <= 2, [], None),
    ("avg(count(car)) WHERE count(person) > 0 BY video", [("avg", "car")],
     lambda f: f.c("person") > 0, ["car", "person"], "video"),
    ("frames WHERE count(person) > 2 BY minute", [("frames", None)],
     lambda f: f.c("person") > 2, ["person"], 60.0),
    ("sum(count(person)) BY 1s", [("sum", "person")], None, ["person"], 1.0),
    ("max(count(person)), frames WHERE video LIKE 'street%' BY 2s",
     [("max", "person"), ("frames", None)], lambda f: like("street%", f.video), ["person"], 2.0),
    ("avg(count(dog)) BY video", [("avg", "dog")], None, ["dog"], "video"),
    ("AVG(COUNT(person)) where count(car) = 0 or video = 'bikes.mp4'", [("avg", "person")],
     lambda f: f.c("car") == 0 or f.video == "bikes.mp4", ["person", "car"], None),
    ("avg(count(person)), sum(count(car)) WHERE count(person) > 100",
     [("avg", "person"), ("sum", "car")], lambda f: f.c("person") > 100, ["person", "car"],
     None),
    ("sum(count(person)) WHERE count(person) > 100 BY video", [("sum", "person")],
     lambda f: f.c("person") > 100, ["person"], "video"),
    ("min(count(person)) BY 1500ms", [("min", "person")], None, ["person"], 1.5),
]
DETECTED_ONLY = [
    ("avg(count(bus)), frames WHERE count(bus) >= 1 BY video",
     [("avg", "bus"), ("frames", None)], lambda f: f.c("bus") >= 1, ["bus"], "video"),
]


def brute_aggregate(oracle, aggs, where, classes, source, by):
    frames = [f for f in oracle.domain(classes, source) if where is None or where(f)]
    groups: dict[tuple, list] = {} if by is not None else {(): []}
    for f in frames:
        key = () if by is None else (f.video, f.video_id) if by == "video" else (
            f.video, f.video_id, math.floor(f.ts / by) * by)
        groups.setdefault(key, []).append(f)
    rows = []
    for key in sorted(groups):
        fs = groups[key]
        row = {}
        if by is not None:
            row["video"] = key[0]
        if by is not None and by != "video":
            row["start"], row["end"] = key[2], key[2] + by
        for func, cls in aggs:
            vals = [f.values[cls] for f in fs] if cls else []
            name = "frames" if cls is None else f"{func}(count({cls}))"
            row[name] = (len(fs) if cls is None else None if not vals else
                         {"avg": statistics.fmean, "min": min, "max": max, "sum": math.fsum}[
                             func](vals))
        row["frames"] = len(fs)
        rows.append(row)
    return rows


def _cases():
    for source in SOURCES:
        for case in CASES + (DETECTED_ONLY if source == "detected" else []):
            yield pytest.param(source, *case, id=f"{source}:{case[0][:40]}")


@pytest.mark.parametrize("source,text,aggs,where,classes,by", list(_cases()))
def test_aggregate_matches_brute_force(store, oracle, source, text, aggs, where, classes, by):
    want = brute_aggregate(oracle, aggs, where, classes, source, by)
    result = run_query(store, text, source=source)
    assert result.kind == "aggregate"
    got = result.rows
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for key, value in w.items():
            if value is None or isinstance(value, str):
                assert g[key] == value, key
            else:
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    exact = source == "detected" or not classes
    assert any(c.startswith("±") for c in result.columns) is not exact
    assert (result.estimate["method"] == "exact") is exact


def _confusion(pairs, pred, weights) -> Confusion:
    truth = np.array([bool(pred(d)) for d, _ in pairs])
    guess = np.array([bool(pred(p)) for _, p in pairs])
    return Confusion.of(truth, guess, weights)


@pytest.mark.parametrize("text,classes,pred", [
    ("count(person) >= 3", ["person"], lambda f: f.c("person") >= 3),
    ("count(person) >= 1 AND count(car) = 0 OR time < 1s", ["person", "car"],
     lambda f: f.c("person") >= 1 and f.c("car") == 0 or f.ts < 1),
])
@pytest.mark.parametrize("source", ["best", "predicted"])
def test_selection_estimate_is_precision_recall_on_held_out(store, oracle, text, classes, pred,
                                                            source):
    pairs, held, weights = oracle.weighted_pairs(classes)
    assert held and len(pairs) > 10
    c = _confusion(pairs, pred, weights)
    want = precision_recall(c)
    for frames in (False, True):
        est = run_query(store, text, source=source, frames=frames).estimate
        assert est["basis"] == "held-out"
        assert (est["tp"], est["fp"], est["fn"], est["tn"]) == c[:4]
        assert est["frames"] == len(pairs)
        assert est["precision"] == pytest.approx(want["precision"])
        assert est["recall"] == pytest.approx(want["recall"])
        assert est["precision"]["n"] == c.tp + c.fp
        assert est["precision"]["low"] <= est["precision"]["value"] <= est["precision"]["high"]


def test_time_weights_are_the_time_each_label_stands_for():
    video = np.array([0, 0, 0, 1, 2])
    ts = np.array([1.0, 3.0, 7.0, 2.0, 0.0])
    duration = np.array([10.0, 10.0, 10.0, np.nan, 0.0])
    # video 0: 0-2 s, 2-5 s, 5-10 s; video 1 (no duration): from its start to its label;
    # video 2: a lone label at 0 of a video of no length still counts (1 ms)
    assert time_weights(video, ts, duration).tolist() == [2000, 3000, 5000, 2000, 1]
    # a live stream (duration 0): the last label stands for as much after it as before
    assert time_weights(np.zeros(2), np.array([1.0, 3.0]), np.zeros(2)).tolist() == [
        2000, 2000]


def test_time_weights_in_numpy_are_the_query_sql():
    import duckdb

    from lensdb.query.estimate_sql import weight_sql

    rng = np.random.default_rng(4)
    rows = []
    for v, (fps, duration) in enumerate([(24, 10.0), (8, 0.0), (30, None), (25, 4.0)]):
        frames = np.sort(rng.choice(int(4 * fps), size=12, replace=False))
        rows += [(v, f / fps, duration) for f in frames]
    video, ts, dur = (np.array([r[i] for r in rows], float) for i in range(3))
    con = duckdb.connect()
    con.execute("CREATE TABLE ev (frame_id INTEGER, video_id INTEGER, ts DOUBLE, duration DOUBLE)")
    con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)",
                    [(i, int(v), t, d) for i, (v, t, d) in enumerate(rows)])
    got = [r[0] for r in con.execute(
        f"SELECT {weight_sql()} FROM (SELECT *, lag(ts) OVER t AS prev_ts, lead(ts) OVER"
        " t AS next_ts FROM ev WINDOW t AS (PARTITION BY video_id ORDER BY ts, frame_id))"
        " ORDER BY frame_id").fetchall()]
    assert got == time_weights(video, ts, dur).tolist()


def test_weighted_wilson_is_wilson_at_the_effective_number_of_frames():
    alike = weighted_wilson(8.0, 10.0, 10.0, 10)
    assert alike == pytest.approx({**wilson(8, 10), "effective_n": 10.0})
    # 10 frames, one of them weighing 9 as much as each other (a label standing for a long
    # calm stretch): the value follows the weights and the interval widens
    w = np.array([9.0] + [1.0] * 9)
    hit = np.array([True] + [False] * 9)
    skew = weighted_wilson(float(w[hit].sum()), float(w.sum()), float((w ** 2).sum()), 10)
    assert skew["value"] == 0.5 and skew["n"] == 10
    assert skew["effective_n"] == pytest.approx(18 ** 2 / 90, abs=0.05)
    even = wilson(1.8, 3.6)
    assert (skew["low"], skew["high"]) == pytest.approx((even["low"], even["high"]))


def test_wilson_interval_known_values():
    w = wilson(8, 10)
    assert w["value"] == 0.8 and w["n"] == 10
    assert w["low"] == pytest.approx(0.4902, abs=1e-4)
    assert w["high"] == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None
    assert wilson(0, 5)["low"] == 0.0 and wilson(5, 5)["high"] == 1.0


def test_a_few_labels_that_agree_never_claim_an_exact_mean():
    # 4 held-out frames predicted without error (the counts never changed there): the
    # residuals alone would give +-0; 4 frames still allow one object wrong in 3 of 4 frames
    assert mean_error_bound(0.0, 0.0, 4) == pytest.approx(0.75)
    assert mean_error_bound(0.0, 0.0, 300) == pytest.approx(0.01)
    # with many residuals the spread decides, the floor does not
    assert mean_error_bound(0.1, 1.0, 400) == pytest.approx(0.1 + 1.96 / 20)


def test_a_max_is_bounded_for_every_predicted_frame_at_once():
    # one frame's error is within about 2 sd 95% of the time; the max of 700 frames needs
    # every one of them within the bound: Student t (79 dof) at 1 - 0.025/700, x sqrt(1 + 1/n)
    assert extreme_error_bound(0.0, 1.0, 80, 700) == pytest.approx(4.22, abs=0.01)
    assert extreme_error_bound(0.0, 1.0, 80, 1) == pytest.approx(2.00, abs=0.01)
    assert extreme_error_bound(0.0, 1.0, 27, 700) > extreme_error_bound(0.0, 1.0, 80, 700)
    # no error seen in 80 residuals cannot rule out a wrong frame among 700: one object
    assert extreme_error_bound(0.0, 0.0, 80, 700) == 1.0
    # 8,000 residuals without an error rule out one among 100 (100 x 3/8000 < 0.05)
    assert extreme_error_bound(0.0, 0.0, 8000, 100) == 0.0
    assert extreme_error_bound(0.3, 1.0, 80, 0) == 0.0  # nothing predicted: exact


def test_estimate_falls_back_to_in_sample(tmp_path):
    store = make_store(tmp_path / "s", all_in_train=True)
    est = run_query(store, "count(person) > 2").estimate
    assert est["basis"] == "in-sample" and "optimistic" in est["note"]
    agg = run_query(store, "avg(count(person))").estimate
    assert agg["basis"] == "in-sample" and "optimistic" in agg["note"]


def test_detected_and_count_free_answers_are_exact(store):
    est = run_query(store, "count(person) > 2", source="detected").estimate
    assert est["method"] == "exact" and "labelled frames only" in est["note"]
    assert run_query(store, "video = 'bikes.mp4'").estimate["method"] == "exact"


@pytest.mark.parametrize("text,func,where", [
    ("avg(count(person))", "avg", None),
    ("sum(count(person))", "sum", None),
    ("max(count(person)) WHERE count(car) >= 1", "max", lambda f: f.c("car") >= 1),
])
def test_aggregate_error_from_held_out_residuals(store, oracle, text, func, where):
    classes = ["person"] + (["car"] if where else [])
    pairs, held = oracle.held_out_pairs(classes)
    pairs = [(d, p) for d, p in pairs if where is None or where(d)]
    res = [p.values["person"] - d.values["person"] for d, p in pairs]
    bias, sd = statistics.fmean(res), statistics.stdev(res)
    result = run_query(store, text)
    stats = result.estimate["classes"]["person"]
    assert stats["frames"] == len(res) and stats["basis"] == "held-out"
    assert stats["bias"] == pytest.approx(bias) and stats["sd"] == pytest.approx(sd)
    assert stats["mae"] == pytest.approx(statistics.fmean(abs(r) for r in res))
    domain = [f for f in oracle.domain(classes, "best") if where is None or where(f)]
    n, u = len(domain), sum(1 for f in domain if not f.labelled)
    systematic = max(abs(bias) + 1.96 * sd / math.sqrt(len(res)), 3 / len(res))
    want = {"avg": u / n * systematic, "sum": u * systematic,
            "max": extreme_error_bound(bias, sd, len(res), u)}[func]
    assert result.rows[0]["±" + result.columns[0]] == pytest.approx(want)


def test_frames_error_from_precision_and_recall(store, oracle):
    result = run_query(store, "frames WHERE count(person) > 2")
    sel = result.estimate["selection"]
    u = sum(1 for f in oracle.select(lambda f: f.c("person") > 2, ["person"], "best")
            if not f.labelled)
    assert result.rows[0]["±frames"] == pytest.approx(
        ratio_error_bound(sel["precision"], sel["recall"], u))
    # the bound contains the point estimate of the miscount, u x |precision / recall - 1|
    ratio = sel["precision"]["value"] / sel["recall"]["value"]
    assert result.rows[0]["±frames"] >= u * abs(ratio - 1)


def test_a_selection_that_was_always_right_on_few_frames_is_not_claimed_exact():
    # 5 labelled matches, all predicted right: precision and recall 1, ratio 1; the Wilson
    # intervals (0.57 to 1) still leave room, so the bound is not 0
    perfect = wilson(5, 5)
    assert ratio_error_bound(perfect, perfect, 100) > 10
    many = wilson(500, 500)
    assert 0 < ratio_error_bound(many, many, 100) < ratio_error_bound(perfect, perfect, 100)
    assert ratio_error_bound(wilson(0, 5), perfect, 100) is None  # no true positive


def test_result_to_dict_is_strict_json(store):
    import json

    for text in ("avg(count(person)) WHERE count(person) > 100", "count(person) > 3"):
        d = run_query(store, text).to_dict()
        json.loads(json.dumps(d, allow_nan=False))
        assert set(d) == {"query", "source", "kind", "columns", "rows", "estimate", "notes"}

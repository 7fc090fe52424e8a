"""Every selection construct against a brute-force evaluation over a store made in code."""

from __future__ import annotations

import pytest
from query_oracle import like

from lensdb.query import matching_frame_ids, run_query

SOURCES = ("best", "predicted", "detected")

# (query, classes in first-mention order, the same predicate in Python)
CASES = [
    ("count(person) > 3", ["person"], lambda f: f.c("person") > 3),
    ("count(person) >= 2 AND count(car) = 0", ["person", "car"],
     lambda f: f.c("person") >= 2 and f.c("car") == 0),
    ("count(person) < 2 OR count(car) != 1", ["person", "car"],
     lambda f: f.c("person") < 2 or f.c("car") != 1),
    ("NOT (count(person) <= 1)", ["person"], lambda f: not f.c("person") <= 1),
    ("count(car) <> 2 and not count(person) = 0", ["car", "person"],
     lambda f: f.c("car") != 2 and f.c("person") != 0),
    ("count(person) > 4 OR count(car) > 2 AND count(person) = 0", ["person", "car"],
     lambda f: f.c("person") > 4 or (f.c("car") > 2 and f.c("person") == 0)),
    ("(count(person) > 1 OR count(car) > 1) AND (count(person) < 5 OR video = 'street_a.mp4')",
     ["person", "car"],
     lambda f: (f.c("person") > 1 or f.c("car") > 1)
     and (f.c("person") < 5 or f.video == "street_a.mp4")),
    ("count(person) > 2.5", ["person"], lambda f: f.c("person") > 2.5),
    ("count(person) = 3", ["person"], lambda f: f.c("person") == 3),
    ("count(car) == 1", ["car"], lambda f: f.c("car") == 1),
    ("count(dog) = 0", ["dog"], lambda f: f.c("dog") == 0),
    ("video = 'bikes.mp4' AND count(person) >= 1", ["person"],
     lambda f: f.video == "bikes.mp4" and f.c("person") >= 1),
    ("video != 'bikes.mp4'", [], lambda f: f.video != "bikes.mp4"),
    ("video = 'o''neil st.mp4'", [], lambda f: f.video == "o'neil st.mp4"),
    ('video = "o\'neil st.mp4" OR count(car) >= 3', ["car"],
     lambda f: f.video == "o'neil st.mp4" or f.c("car") >= 3),
    ("video LIKE 'street%'", [], lambda f: like("street%", f.video)),
    ("video like 'b_kes%' and count(person) > 0", ["person"],
     lambda f: like("b_kes%", f.video) and f.c("person") > 0),
    ("video NOT LIKE '%a.mp4'", [], lambda f: not like("%a.mp4", f.video)),
    ("time BETWEEN 1s AND 3s", [], lambda f: 1 <= f.ts <= 3),
    ("time BETWEEN 500ms AND 0.05m AND count(car) >= 1", ["car"],
     lambda f: 0.5 <= f.ts <= 3 and f.c("car") >= 1),
    ("time < 2s OR time >= 4.2s", [], lambda f: f.ts < 2 or f.ts >= 4.2),
    ("TIME > 1 AND Count(person) >= 2", ["person"], lambda f: f.ts > 1 and f.c("person") >= 2),
    ("\n  count( person )>=3\tAND(time<=0.001h)", ["person"],
     lambda f: f.c("person") >= 3 and f.ts <= 3.6),
    ("count('person') != 0", ["person"], lambda f: f.c("person") != 0),
]
DETECTED_ONLY = [
    ("count(bus) >= 1 AND count(person) >= 1", ["bus", "person"],
     lambda f: f.c("bus") >= 1 and f.c("person") >= 1),
]


def _cases():
    for source in SOURCES:
        for case in CASES + (DETECTED_ONLY if source == "detected" else []):
            yield pytest.param(source, *case, id=f"{source}:{case[0][:40]}")


def _same_means(got: dict, classes, want: dict):
    for cls in classes:
        assert got[f"mean count({cls})"] == pytest.approx(want[cls], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("source,text,classes,pred", list(_cases()))
def test_frames_match_brute_force(store, oracle, source, text, classes, pred):
    want = oracle.select(pred, classes, source)
    result = run_query(store, text, source=source, frames=True)
    assert result.kind == "frames"
    assert [r["frame_id"] for r in result.rows] == [f.frame_id for f in want]
    for row, f in zip(result.rows, want):
        assert row["video"] == f.video and row["time"] == f.ts
        assert row["labelled"] == f.labelled
        for cls in classes:
            assert row[f"count({cls})"] == pytest.approx(f.values[cls], abs=1e-6)
    ids = matching_frame_ids(store, text, source=source)
    assert ids.dtype.name == "int64"
    assert ids.tolist() == sorted(f.frame_id for f in want)


@pytest.mark.parametrize("source,text,classes,pred", list(_cases()))
@pytest.mark.parametrize("gap", [None, 0.5])
def test_moments_match_brute_force(store, oracle, source, text, classes, pred, gap):
    want = oracle.moments(pred, classes, source, gap=gap)
    result = run_query(store, text, source=source, gap=gap)
    assert result.kind == "moments"
    assert [(r["video"], r["start"], r["end"], r["frames"]) for r in result.rows] == [
        w[:4] for w in want]
    for row, w in zip(result.rows, want):
        _same_means(row, classes, w[4])
    assert result.columns[:4] == ["video", "start", "end", "frames"]


def test_moments_break_on_a_non_matching_frame(store, oracle):
    text = "count(person) >= 3"
    result = run_query(store, text)
    assert len(result) > 3  # the fixture data gives several separate moments
    assert sum(r["frames"] for r in result.rows) == len(
        oracle.select(lambda f: f.c("person") >= 3, ["person"], "best"))
    merged = run_query(store, text, gap=1e9)
    assert len(merged) <= 3  # at most one per video with frames


@pytest.mark.parametrize("source", SOURCES)
def test_limit_takes_first_moments_or_frames(store, oracle, source):
    pred = lambda f: f.c("person") >= 2  # noqa: E731
    want = oracle.moments(pred, ["person"], source)[:3]
    result = run_query(store, "count(person) >= 2 LIMIT 3", source=source)
    assert [(r["video"], r["start"], r["frames"]) for r in result.rows] == [
        w[:2] + (w[3],) for w in want]
    frames = run_query(store, "count(person) >= 2 LIMIT 4", source=source, frames=True)
    assert [r["frame_id"] for r in frames.rows] == [
        f.frame_id for f in oracle.select(pred, ["person"], source)[:4]]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("limit,gap", [(4, 1.0), (100, 0.7), (2, 0.0), (5, 60.0)])
def test_limit_gap_picks(store, oracle, source, limit, gap):
    pred = lambda f: f.c("car") >= 1  # noqa: E731
    want = oracle.picks(pred, ["car"], source, limit, gap)
    text = f"count(car) >= 1 LIMIT {limit} GAP {gap}s"
    result = run_query(store, text, source=source)
    assert [(r["video"], r["start"], r["end"], r["frames"]) for r in result.rows] == [
        (f.video, f.ts, f.ts, 1) for f in want]
    for row, f in zip(result.rows, want):
        assert row["mean count(car)"] == pytest.approx(f.values["car"], abs=1e-6)
    frames = run_query(store, text, source=source, frames=True)
    assert [r["frame_id"] for r in frames.rows] == [f.frame_id for f in want]
    # picks are at least GAP apart within a video
    by_video: dict[str, list[float]] = {}
    for r in result.rows:
        by_video.setdefault(r["video"], []).append(r["start"])
    for times in by_video.values():
        assert all(b - a >= gap for a, b in zip(times, times[1:]))


def test_domain_excludes_frames_without_a_prediction(store, oracle):
    """car has no prediction on some unlabelled frames: they are in no answer."""
    everything = run_query(store, "count(car) >= 0", frames=True)
    all_frames = run_query(store, "time >= 0", frames=True)
    assert 0 < len(everything) < len(all_frames)
    assert len(everything) == len(oracle.domain(["car"], "best"))
    detected = run_query(store, "time >= 0", source="detected", frames=True)
    assert all(r["labelled"] for r in detected.rows)
    assert len(detected) == sum(1 for f in oracle.frames if f[5])


def test_best_uses_detected_counts_on_labelled_frames(store, oracle):
    rows = run_query(store, "count(person) >= 0", frames=True).rows
    for row in rows:
        f = next(x for x in oracle.frames if x[0] == row["frame_id"])
        if f[5]:
            assert row["predicted"] is False
            assert row["count(person)"] == oracle.counts.get((f[0], "person"), 0)
        else:
            assert row["predicted"] is True
            assert row["count(person)"] == pytest.approx(oracle.preds[(f[0], "person")][0])

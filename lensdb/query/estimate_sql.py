"""SQL for the error estimates: labelled frames' detected against predicted counts, all of
them or, past SAMPLE_FRAMES, a seeded random sample of them (`sample_for`); read from the
sample the writers keep (storage/estimate_sample.py) when `plan.kept`, else found by a scan.

Precision and recall weigh each labelled frame by the time it stands for (`time_weights`,
the same in SQL and numpy): from halfway to the previous label of its video to halfway to
the next, the first from the video's start, the last to its end. Evenly spaced labels weigh
alike (but at the ends); labels placed where counts move (`lensdb label`, scene-change
labels) weigh less there, so the measure is of frames, not of where labels were put. Where
the video's duration is unknown (0: a live stream) the last label stands for as much after
it as before. Sampled estimates (past SAMPLE_FRAMES) weigh every frame alike: the weights
need the neighbouring labels, which a sample exists not to read.
"""

from __future__ import annotations

import numpy as np

from lensdb.query import plan as p
from lensdb.query.frame_table import GENERAL, LABELLED, Plan, Sample, positional
from lensdb.query.sql import Sql, columns, predicate_sql
from lensdb.storage import estimate_sample as kept

SAMPLE_FRAMES = kept.SAMPLE_FRAMES  # labelled frames an error estimate reads at most
SEED = kept.SEED  # of the sample: the same frames for every query on the same labels


def sample_for(labelled: int) -> Sample | None:
    """The sample the estimate reads when the store has `labelled` labelled frames: None
    (all of them) up to SAMPLE_FRAMES."""
    return Sample(SAMPLE_FRAMES, labelled, SEED) if labelled > SAMPLE_FRAMES else None


def labelled_eval_sql(classes: list[str], plan: Plan = GENERAL) -> Sql:
    """`ev AS (...)`: labelled frames with a prediction for every class: d<i> the detected
    count, p<i> the predicted value, held_out true when no prediction was trained on it.
    The aligned plan pairs the predictions positionally (one per frame, checked) and joins
    counts on the labelled frames only. With `plan.sample`, only the sampled labelled
    frames (the same ones under either plan: they are picked by frame id)."""
    if plan.kept:
        return kept_eval_sql(classes, plan)
    held = " OR ".join(f"coalesce(t{i}, false)" for i in range(len(classes)))
    sql = Sql().add("ev AS (SELECT s.frame_id, s.ts, s.video_id")
    sql.add("" if plan.fast else ", s.video")
    for i in range(len(classes)):
        sql.add(f", CAST(coalesce(k{i}.n, 0) AS DOUBLE) AS d{i}, CAST(v{i} AS DOUBLE) AS p{i}")
    sql.add(f", NOT ({held or 'false'}) AS held_out FROM (SELECT ")
    sql.add("p0.frame_id, f.ts, f.video_id" if plan.fast else
            "f.frame_id, f.ts, f.video_id, v.name AS video")
    for i in range(len(classes)):
        sql.add(f", p{i}.value AS v{i}, p{i}.in_train AS t{i}")
    sample = plan.sample.where("f.frame_id") if plan.sample else Sql()
    if plan.fast:
        sql.add(" FROM ").extend(positional(classes, ("value", "in_train")))
        sql.add(" WHERE f.labelled").extend(sample).add(") s")
    else:  # (sampled before the joins, which then read only the sample's rows)
        sql.add(f" FROM (SELECT * FROM frames f WHERE {LABELLED}").extend(sample).add(
            ") f JOIN videos v ON v.video_id = f.video_id")
        for i, cls in enumerate(classes):
            sql.add(f" JOIN predictions p{i} ON p{i}.frame_id = f.frame_id AND p{i}.class = ?",
                    cls)
        sql.add(") s")
    for i, cls in enumerate(classes):
        sql.add(f" LEFT JOIN counts k{i} ON k{i}.frame_id = s.frame_id AND k{i}.class = ?", cls)
    return sql.add(")")


def kept_eval_sql(classes: list[str], plan: Plan) -> Sql:
    """`ev AS (...)` as `labelled_eval_sql` makes it, read from the kept sample (some
    SAMPLE_FRAMES rows per class): the same frames (of smallest hash; all of them without
    `plan.sample`) with the same values, paired by the same joins when it was kept."""
    held = " OR ".join(f"coalesce(s{i}.in_train, false)" for i in range(len(classes)))
    sql = Sql().add("ev AS (SELECT m.frame_id, m.ts, m.video_id")
    sql.add("" if plan.fast else ", v.name AS video")
    for i in range(len(classes)):
        sql.add(f", CAST(s{i}.detected AS DOUBLE) AS d{i}, CAST(s{i}.predicted AS DOUBLE)"
                f" AS p{i}")
    sql.add(f", NOT ({held or 'false'}) AS held_out FROM (SELECT frame_id, video_id, ts FROM"
            " estimate_sample WHERE class = ''")
    if plan.sample:
        sql.add(" AND h < ?::UBIGINT ORDER BY h LIMIT ?", plan.sample.cutoff, plan.sample.size)
    sql.add(") m")
    if not plan.fast:
        sql.add(" JOIN videos v ON v.video_id = m.video_id")
    for i, cls in enumerate(classes):
        sql.add(f" JOIN estimate_sample s{i} ON s{i}.frame_id = m.frame_id AND s{i}.class = ?",
                cls)
    return sql.add(")")


CELLS = ("truth AND guess", "guess AND NOT truth", "truth AND NOT guess",
         "NOT truth AND NOT guess")  # tp, fp, fn, tn


def confusion_sql(pred: p.Predicate, classes: list[str], plan: Plan = GENERAL) -> Sql:
    """Per held_out: true/false positives/negatives (tp, fp, fn, tn) of the predicate
    evaluated on predicted counts (guess) against detected counts (truth), then the sums of
    the frames' weights (`time_weights`) and of their squares over tp, fp and fn."""
    sql = Sql().add("WITH ").extend(labelled_eval_sql(classes, plan))
    if plan.sample is not None:  # a sample is no longer spaced in time: alike
        sql.add(", wv AS (SELECT *, 1 AS w FROM ev)")
    else:
        sql.add(f", wv AS (SELECT *, {weight_sql()} AS w FROM (SELECT ev.*, lag(ev.ts)"
                " OVER t AS prev_ts, lead(ev.ts) OVER t AS next_ts, vd.duration FROM ev LEFT"
                " JOIN videos vd ON vd.video_id = ev.video_id WINDOW t AS (PARTITION BY"
                " ev.video_id ORDER BY ev.ts, ev.frame_id)))")
    sql.add(", m AS (SELECT held_out, w, coalesce(").extend(
        predicate_sql(pred, columns(classes, "d"), plan.atoms)).add(", false) AS truth, coalesce(")
    sql.extend(predicate_sql(pred, columns(classes, "p"), plan.atoms)).add(
        ", false) AS guess FROM wv)")
    counts = [f"count(*) FILTER (WHERE {c})" for c in CELLS]
    sums = [f"coalesce(sum({x}) FILTER (WHERE {c}), 0)" for x in ("w", "w * w")
            for c in CELLS[:3]]
    return sql.add(f" SELECT held_out, {', '.join(counts + sums)} FROM m GROUP BY held_out")


def weight_sql() -> str:
    """The weight of a labelled frame in `confusion_sql` (`time_weights`), from its ts, the
    previous and next labels' (prev_ts, next_ts) and its video's duration. Whole
    milliseconds, so that sums are exact whatever order the threads add them in."""
    left = "CASE WHEN prev_ts IS NULL THEN greatest(ts, 0) ELSE (ts - prev_ts) / 2 END"
    right = ("CASE WHEN next_ts IS NOT NULL THEN (next_ts - ts) / 2"
             " WHEN coalesce(duration, 0) > ts THEN duration - ts"
             " WHEN prev_ts IS NOT NULL THEN (ts - prev_ts) / 2 ELSE 0 END")
    return f"CAST(greatest(round(1000 * ({left} + {right})), 1) AS BIGINT)"


def time_weights(video: np.ndarray, ts: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """`weight_sql` in numpy: per labelled frame (its video id, time and video's duration,
    NaN or 0 when unknown; ties in time in input order), the whole milliseconds it stands
    for (at least 1: a lone label still counts), rounded half up as DuckDB does."""
    video, ts = np.asarray(video), np.asarray(ts, np.float64)
    duration = np.asarray(duration, np.float64)
    w = np.zeros(len(ts))
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        idx = idx[np.argsort(ts[idx], kind="stable")]
        t = ts[idx]
        gaps = np.diff(t) / 2
        left = np.r_[max(t[0], 0.0), gaps]
        end = duration[idx[-1]]
        last = end - t[-1] if end > t[-1] else gaps[-1] if len(gaps) else 0.0
        right = np.r_[gaps, last]
        w[idx] = np.maximum(np.floor(1000 * (left + right) + 0.5), 1)
    return w


def residuals_sql(cls: str, where: p.Predicate | None, classes: list[str],
                  plan: Plan = GENERAL) -> Sql:
    """Per held_out: n, mean, sample sd, mean |.|, 95th percentile |.| of predicted - detected
    for `cls`, on labelled frames where `where` holds on detected counts."""
    i = classes.index(cls)
    diff = f"(p{i} - d{i})"
    sql = Sql().add("WITH ").extend(labelled_eval_sql(classes, plan))
    sql.add(f" SELECT held_out, count(*), avg({diff}), stddev_samp({diff}), avg(abs({diff})),"
            f" quantile_cont(abs({diff}), 0.95) FROM ev")
    if where is not None:
        sql.add(" WHERE coalesce(").extend(
            predicate_sql(where, columns(classes, "d"), plan.atoms)).add(", false)")
    return sql.add(" GROUP BY held_out")

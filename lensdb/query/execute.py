"""Run a query against a store: checks, SQL, moments, picks and the error estimate.

Moments are runs of consecutive matching frames of one video: consecutive among that
video's frames in the query's domain (frames where every mentioned class has a count
under the source), in frame order. `start`/`end` are the timestamps of the first and last
frame of the run. `gap` merges moments of a video less than `gap` seconds apart (all in
SQL: see compile.moments_sql).

`LIMIT n GAP d` (the BlazeIt form) picks matching frames in time order (videos by name,
frames by index), greedily: a frame is taken when it is at least d seconds after the last
frame taken from the same video; it stops after n. Each pick is a one-frame moment.
Plain `LIMIT n` keeps the first n moments (or frames with --frames).
"""

from __future__ import annotations

import math
import shlex

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lensdb.errors import QueryError
from lensdb.query import compile as c
from lensdb.query import plan as p
from lensdb.query.estimate import aggregate_estimate, selection_estimate
from lensdb.query.lexer import fail, show
from lensdb.query.parse import parse_predicate, parse_query
from lensdb.query.result import QueryResult, make_table

F64, I64 = pa.float64(), pa.int64()


def check_source(source: str) -> str:
    if source not in c.SOURCES:
        raise QueryError(f"unknown source {show(str(source))}; use best, predicted or detected")
    return source


def run_query(store, text: str, source: str = "best", frames: bool = False,
              gap: float | None = None) -> QueryResult:
    """Answer a count query; see `lensdb query --help` for the language."""
    check_source(source)
    if gap is not None and not (math.isfinite(gap) and gap >= 0):
        raise QueryError("--gap must be a number of seconds, 0 or more")
    query = parse_query(text)
    if isinstance(query, p.Aggregate) and (frames or gap is not None):
        raise QueryError("--frames and --gap apply to selections, not to aggregates")
    if isinstance(query, p.Selection) and query.gap is not None and gap is not None:
        raise QueryError("LIMIT ... GAP already spaces the moments apart; drop --gap")
    with store.catalog.connect() as con:
        classes = check_classes(con, p.count_refs(query), text, source)
        if isinstance(query, p.Aggregate):
            return _aggregate(con, query, classes, text, source)
        return _selection(con, query, classes, text, source, frames, gap)


def matching_frame_ids(store, predicate_text: str, source: str = "best") -> np.ndarray:
    """Sorted frame ids (int64) of the frames where a bare predicate holds."""
    check_source(source)
    pred = parse_predicate(predicate_text)
    with store.catalog.connect() as con:
        classes = check_classes(con, p.count_refs(pred), predicate_text, source)
        sql = c.frame_ids_sql(pred, classes, source)
        ids = con.execute(sql.text, sql.params).fetchnumpy()["frame_id"]
    return np.asarray(ids, dtype=np.int64)


def known_classes(con) -> list[str]:
    """Classes the store knows: detected ones, and those with a count model or predictions."""
    return _class_facts(con)[0]


def _class_facts(con) -> tuple[list[str], set[str], bool]:
    """(known classes, classes with predictions, whether any frame is unlabelled)."""
    known, predicted, unlabelled = con.execute(
        "SELECT (SELECT list(DISTINCT class) FROM (SELECT class FROM counts UNION ALL "
        "SELECT class FROM count_models UNION ALL SELECT class FROM predictions)), "
        "(SELECT list(DISTINCT class) FROM predictions), "
        "EXISTS (SELECT 1 FROM frames WHERE NOT coalesce(labelled, false))"
    ).fetchall()[0]
    return sorted(k for k in known or [] if k is not None), set(predicted or []), unlabelled


def check_classes(con, refs: list[p.CountRef], text: str, source: str) -> list[str]:
    """The distinct classes of the query, after checking the store knows and predicts them."""
    if not refs:
        return []
    known, predicted, unlabelled = _class_facts(con)
    for ref in refs:
        if ref.cls in known:
            continue
        if not known:
            raise fail(f"unknown class {show(ref.cls)}: the store has no counts yet; ingest "
                       "videos with a detector first", text, ref.pos)
        listed = ", ".join(show(k, 40)[1:-1] for k in known[:40]) + (
            ", ..." if len(known) > 40 else "")
        near = [k for k in known if k.lower() == ref.cls.lower()]
        hint = f" (did you mean {show(near[0])}?)" if near else ""
        raise fail(f"unknown class {show(ref.cls)}{hint}; known classes: {listed}",
                   text, ref.pos)
    if source != "detected":
        for ref in refs:
            if ref.cls not in predicted and (source == "predicted" or unlabelled):
                raise fail(f"no count predictor for class {show(ref.cls)} yet: run `lensdb "
                           f"train-counter --classes {shlex.quote(ref.cls)}` or use "
                           "--source detected", text, ref.pos)
    return list(dict.fromkeys(r.cls for r in refs))


def _fetch(con, sql: c.Sql) -> list[tuple]:
    return con.execute(sql.text, sql.params).fetchall()


def _arrow(con, sql: c.Sql) -> pa.Table:
    return con.sql(sql.text, params=sql.params).to_arrow_table()


def _selection(con, query: p.Selection, classes: list[str], text: str, source: str,
               frames: bool, gap: float | None) -> QueryResult:
    notes = []
    cols = list(c.columns(classes).values())
    if query.gap is not None:  # LIMIT n GAP d: BlazeIt-style picks
        rows = pick(_arrow(con, c.frames_sql(query.where, classes, source)), query.limit,
                    query.gap)
        notes.append(f"LIMIT {query.limit} GAP {query.gap:g}s: matching frames picked in time "
                     "order, each at least the gap after the previous pick in its video")
    elif frames:
        rows = _arrow(con, c.frames_sql(query.where, classes, source, query.limit))
    if frames:
        table = rows.select(["frame_id", "video", "frame_index", "ts", "labelled",
                             "by_prediction", *cols]).rename_columns(
            ["frame_id", "video", "frame_index", "time", "labelled", "predicted",
             *[f"count({cls})" for cls in classes]])
        matched, predicted = rows.num_rows, _sum(pc.cast(rows["by_prediction"], pa.int64()))
        return QueryResult(text, source, "frames", table,
                           selection_estimate(con, query.where, source, matched, predicted),
                           notes)
    if query.gap is not None:
        ones = pa.array(np.ones(rows.num_rows, np.int64))
        moments = pa.table({"video_id": rows["video_id"], "video": rows["video"],
                            "start": rows["ts"], "stop": rows["ts"], "frames": ones,
                            "n_predicted": pc.cast(rows["by_prediction"], pa.int64()),
                            **{col: rows[col] for col in cols}})
    else:
        moments = _arrow(con, c.moments_sql(query.where, classes, source, gap))
    if gap is not None:
        notes.append(f"moments less than {gap:g}s apart are merged")
    if query.limit is not None and query.gap is None:
        moments = moments.slice(0, query.limit)
    table = moments.select(["video", "start", "stop", "frames", *cols]).rename_columns(
        ["video", "start", "end", "frames", *[f"mean count({cls})" for cls in classes]])
    estimate = selection_estimate(con, query.where, source, _sum(moments["frames"]),
                                  _sum(moments["n_predicted"]))
    return QueryResult(text, source, "moments", table, estimate, notes)


def _sum(column) -> int:
    return int(pc.sum(column).as_py() or 0)


def pick(frames: pa.Table, limit: int, gap: float) -> pa.Table:
    """The first `limit` frames (in order) each >= `gap` s after the last pick in its video."""
    keep, last = [], {}
    for i, (video, ts) in enumerate(zip(frames["video_id"].to_pylist(),
                                        frames["ts"].to_pylist())):
        if len(keep) >= limit:
            break
        prev = last.get(video)
        if prev is None or ts - prev >= gap:
            keep.append(i)
            last[video] = ts
    return frames.take(pa.array(keep, pa.int64()))


def _aggregate(con, query: p.Aggregate, classes: list[str], text: str,
               source: str) -> QueryResult:
    raw = _fetch(con, c.aggregate_sql(query, classes, source))
    by = query.by
    nkeys = 0 if by is None else (2 if by.kind == "video" else 3)
    rows = []
    for r in raw:
        row = {}
        if by is not None:
            row["video"] = r[1]
        if by is not None and by.kind == "time":
            row["start"], row["end"] = r[2], r[2] + by.seconds
        for i, agg in enumerate(query.aggs):
            row[agg.name] = r[nkeys + i]
        row["n_frames"], row["n_predicted"] = r[-2], r[-1]
        rows.append(row)
    estimate, errors = aggregate_estimate(con, query, classes, source, rows)
    cols: dict[str, list] = {}
    types: dict[str, pa.DataType] = {}
    if by is not None:
        cols["video"], types["video"] = [r["video"] for r in rows], pa.string()
    if by is not None and by.kind == "time":
        for k in ("start", "end"):
            cols[k], types[k] = [r[k] for r in rows], F64
    for agg in query.aggs:
        cols[agg.name] = [r[agg.name] for r in rows]
        types[agg.name] = I64 if agg.count is None else F64
    if "frames" not in cols:
        cols["frames"], types["frames"] = [r["n_frames"] for r in rows], I64
    if estimate.get("method") not in ("exact", "none"):
        for agg in query.aggs:
            cols["±" + agg.name] = [e[agg.name] for e in errors]
            types["±" + agg.name] = F64
    notes = []
    if by is not None and by.kind == "time":
        notes.append(f"time buckets of {by.seconds:g}s within each video")
    return QueryResult(text, source, "aggregate", make_table(cols, types), estimate, notes)

"""Run a query against a store: checks, SQL, moments, picks and the error estimate.

Moments are runs of consecutive matching frames of one video: consecutive among that
video's frames in the query's domain (frames where every mentioned class has a count
under the source), in frame order. `start`/`end` are the timestamps of the first and last
frame of the run. `gap` merges moments of a video less than `gap` seconds apart (all in
SQL: see compile.moments_sql).

Each query reads the store through one connection and picks its plan there (layout.py):
the aligned plan when the store has the layout LensDB writes, checked on that connection,
else the general plan; both give the same rows. The error estimate, which reads the
labelled frames, runs beside the answer on a second connection to the same database, in a
thread (`beside`).

`LIMIT n GAP d` (the BlazeIt form) picks matching frames in time order (videos by name,
frames by index), greedily: a frame is taken when it is at least d seconds after the last
frame taken from the same video; it stops after n. Each pick is a one-frame moment.
Plain `LIMIT n` keeps the first n moments (or frames with --frames).
"""

from __future__ import annotations

import bisect
import math
import shlex
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lensdb.errors import ParameterError, QueryError
from lensdb.query import compile as c
from lensdb.query import estimate_sql as es
from lensdb.query import frame_table as ft
from lensdb.query import plan as p
from lensdb.query import sql as sq
from lensdb.query.estimate import (
    aggregate_estimate,
    aggregate_facts,
    confusion_counts,
    selection_estimate,
)
from lensdb.query.layout import Layout
from lensdb.query.lexer import fail, show
from lensdb.query.parse import parse_predicate, parse_query
from lensdb.query.result import QueryResult, make_table
from lensdb.videos import resolve_query

F64, I64 = pa.float64(), pa.int64()
MAX_ATOM_IDS = 10_000  # video conditions listing more video ids take the general plan


def check_source(source: str) -> str:
    if source not in sq.SOURCES:
        raise QueryError(f"unknown source {show(str(source))}; use best, predicted or detected")
    return source


def run_query(store, text: str, source: str = "best", frames: bool = False,
              gap: float | None = None) -> QueryResult:
    """Answer a count query; see `lensdb query --help` for the language."""
    check_source(source)
    if gap is not None and not (math.isfinite(gap) and gap >= 0):
        raise ParameterError("gap", "must be a number of seconds, 0 or more")
    query = parse_query(text)
    if isinstance(query, p.Aggregate) and (frames or gap is not None):
        raise ParameterError("frames" if frames else "gap",
                             "applies to selections, not to aggregates")
    if isinstance(query, p.Selection) and query.gap is not None and gap is not None:
        raise ParameterError("gap", "cannot be given too: LIMIT ... GAP already spaces the "
                             "moments apart")
    with store.catalog.connect() as con:
        query = resolve_query(con, query)  # `video = X`: a path or a unique name
        classes = check_classes(con, p.count_refs(query), text, source)
        layout = Layout(con)
        if isinstance(query, p.Aggregate):
            def facts(cur, plan: ft.Plan):
                return aggregate_facts(cur, query, classes, source, plan)
        else:
            def facts(cur, plan: ft.Plan):
                return confusion_counts(cur, query.where, source, plan)
        # the estimate starts at once, betting on the plan that the alignment check will
        # most likely confirm (if it does not, it is made again with the plan chosen)
        listing = isinstance(query, p.Selection) and (frames or query.gap is not None)
        estimating = source != "detected" and bool(classes)
        sample = es.sample_for(layout.labelled()) if estimating else None
        kept = estimating and layout.kept_sample(classes, sample)
        guess = replace(choose_plan(layout, classes, source, query.where, listing, False),
                        sample=sample, kept=kept)
        with beside(con, facts if estimating else None, guess) as later:
            plan = replace(choose_plan(layout, classes, source, query.where, listing),
                           sample=sample, kept=kept)
            if isinstance(query, p.Aggregate):
                return _aggregate(con, query, classes, text, source, plan,
                                  partial(later, plan))
            return _selection(con, layout, plan, query, classes, text, source, frames, gap,
                              partial(later, plan))


@contextmanager
def beside(con, fn: Callable | None, guess: ft.Plan) -> Iterator[Callable]:
    """Start `fn(cursor, guess)` (the store half of the error estimate) on a second
    connection to the same database, in a thread, while the caller computes the answer:
    DuckDB runs a positional scan on one core, so the two overlap. Yields `later(plan)`,
    which returns fn's result for `plan`: the thread's when `plan` is the guess, else (the
    thread's bet lost) fn run again with `plan`. fn None: nothing to run, later gives None."""
    if fn is None:
        yield lambda plan: None
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_on_cursor, con, fn, guess)

        def later(plan: ft.Plan):
            if plan == guess:
                return future.result()
            future.exception()  # wait for the thread, whatever it made of the wrong plan
            return fn(con, plan)
        yield later


def _on_cursor(con, fn: Callable, plan: ft.Plan):
    cur = con.cursor()
    try:
        cur.execute("SET enable_progress_bar = false")
        return fn(cur, plan)
    finally:
        cur.close()


def matching_frame_ids(store, predicate_text: str, source: str = "best") -> np.ndarray:
    """Sorted frame ids (int64) of the frames where a bare predicate holds."""
    check_source(source)
    pred = parse_predicate(predicate_text)
    with store.catalog.connect() as con:
        pred = resolve_query(con, pred)
        classes = check_classes(con, p.count_refs(pred), predicate_text, source)
        plan = choose_plan(Layout(con), classes, source, pred)
        sql = c.frame_ids_sql(pred, classes, source, plan)
        ids = con.execute(sql.text, sql.params).fetchnumpy()["frame_id"]
    return np.asarray(ids, dtype=np.int64)


def choose_plan(layout: Layout, classes: list[str], source: str, pred: p.Predicate | None,
                listing: bool = False, check_alignment: bool = True) -> ft.Plan:
    """The aligned plan where the store allows it (for the query and, unless the source is
    detected, its error estimate, which reads the predictions of `classes`), else the
    general one. `listing`: the answer lists frames (named and ordered by lookups where
    possible). `check_alignment=False`: the plan to bet on before that check is made."""
    if not layout.complete():
        return ft.GENERAL
    if classes and source != "detected" and check_alignment and not layout.aligned(classes):
        return ft.GENERAL
    atoms = layout.atoms(pred)
    if sum(atoms[a].size for a in p.video_matches(pred)) > MAX_ATOM_IDS:
        return ft.GENERAL
    return ft.Plan(atoms, layout.videos() if listing else None)


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


def _quick_class_facts(con, classes: list[str]) -> tuple[bool, set[str], bool]:
    """(whether every class is known, those with predictions, whether any frame is
    unlabelled): one existence test per class and table, instead of listing every class."""
    known, predicted = True, set()
    for cls in classes:
        has_pred, has_other = con.execute(
            "SELECT EXISTS (SELECT 1 FROM predictions WHERE class = ?), EXISTS (SELECT 1 FROM "
            "counts WHERE class = ?) OR EXISTS (SELECT 1 FROM count_models WHERE class = ?)",
            [cls, cls, cls]).fetchall()[0]
        known = known and (has_pred or has_other)
        if has_pred:
            predicted.add(cls)
    unlabelled = con.execute(
        "SELECT EXISTS (SELECT 1 FROM frames WHERE NOT coalesce(labelled, false))"
    ).fetchall()[0][0]
    return known, predicted, unlabelled


def check_classes(con, refs: list[p.CountRef], text: str, source: str) -> list[str]:
    """The distinct classes of the query, after checking the store knows and predicts them."""
    if not refs:
        return []
    classes = list(dict.fromkeys(r.cls for r in refs))
    all_known, predicted, unlabelled = _quick_class_facts(con, classes)
    if not all_known:
        from lensdb.classify.conditions import check_condition_refs  # count(car[parked])

        conditions = check_condition_refs(con, refs, text)
        _unknown_class(_class_facts(con)[0] + conditions, refs, text)
    if source != "detected":
        for ref in refs:
            if ref.cls not in predicted and (source == "predicted" or unlabelled):
                raise fail(f"no count predictor for class {show(ref.cls)} yet: run `lensdb "
                           f"train-counter --classes {shlex.quote(ref.cls)}` or use "
                           "--source detected", text, ref.pos)
    return classes


def _unknown_class(known: list[str], refs: list[p.CountRef], text: str) -> None:
    """Raise the error for the first class of `refs` the store does not know."""
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


def _fetch(con, sql: sq.Sql) -> list[tuple]:
    return con.execute(sql.text, sql.params).fetchall()


def _arrow(con, sql: sq.Sql) -> pa.Table:
    return con.sql(sql.text, params=sql.params).to_arrow_table()


def _selection(con, layout: Layout, plan: ft.Plan, query: p.Selection, classes: list[str],
               text: str, source: str, frames: bool, gap: float | None,
               facts: Callable) -> QueryResult:
    notes = []
    cols = list(sq.columns(classes).values())
    if query.gap is not None:  # LIMIT n GAP d: BlazeIt-style picks
        assert query.limit is not None  # the parser takes GAP only after LIMIT
        rows = pick(_arrow(con, c.frames_sql(query.where, classes, source, plan=plan)),
                    query.limit, query.gap)
        notes.append(f"LIMIT {query.limit} GAP {query.gap:g}s: matching frames picked in time "
                     "order, each at least the gap after the previous pick in its video")
    elif frames:
        rows = _arrow(con, c.frames_sql(query.where, classes, source, query.limit, plan))
    if frames:
        table = rows.select(["frame_id", "video", "frame_index", "ts", "labelled",
                             "by_prediction", *cols, "video_id"]).rename_columns(
            ["frame_id", "video", "frame_index", "time", "labelled", "predicted",
             *[f"count({cls})" for cls in classes], "video_id"])
        matched, predicted = rows.num_rows, _sum(pc.cast(rows["by_prediction"], pa.int64()))
        return QueryResult(text, source, "frames", table,
                           selection_estimate(con, query.where, source, matched, predicted,
                                              plan, facts()), notes)
    if query.gap is not None:
        ones = pa.array(np.ones(rows.num_rows, np.int64))
        moments = pa.table({"video_id": rows["video_id"], "video": rows["video"],
                            "start": rows["ts"], "stop": rows["ts"], "frames": ones,
                            "n_predicted": pc.cast(rows["by_prediction"], pa.int64()),
                            **{col: rows[col] for col in cols}})
    else:
        moments = _moments(con, layout, plan, query.where, classes, source, gap)
    if gap is not None:
        notes.append(f"moments less than {gap:g}s apart are merged")
    if query.limit is not None and query.gap is None:
        moments = moments.slice(0, query.limit)
    # every answer names its videos by id too (names are for people, ids for export & co)
    table = moments.select(["video", "start", "stop", "frames", *cols, "video_id"]
                           ).rename_columns(["video", "start", "end", "frames",
                                             *[f"mean count({cls})" for cls in classes],
                                             "video_id"])
    estimate = selection_estimate(con, query.where, source, _sum(moments["frames"]),
                                  _sum(moments["n_predicted"]), plan, facts())
    return QueryResult(text, source, "moments", table, estimate, notes)


def _moments(con, layout: Layout, plan: ft.Plan, pred: p.Predicate, classes: list[str],
             source: str, gap: float | None) -> pa.Table:
    """Moments from the kept runs of rounded counts where they serve (one class, no time:
    compile.indexed_runs_sql), by runs of frame ids where the store allows it
    (checked, see compile.runs_sql), else by numbering the domain's frames
    (compile.moments_sql)."""
    if (plan.fast and source != "detected" and len(classes) == 1 and not p.uses_time(pred)
            and layout.dense(classes) and layout.runs() and layout.count_runs(source, classes)):
        return _arrow(con, c.indexed_runs_sql(pred, classes[0], source, gap, plan))
    if (plan.fast and source != "detected" and (not classes or layout.dense(classes))
            and layout.runs()):
        table = _arrow(con, c.runs_sql(pred, classes, source, gap, plan))
        if table.num_rows == 0 or pc.all(table["ok"]).as_py():
            return table.drop_columns(["ok"])
    return _arrow(con, c.moments_sql(pred, classes, source, gap, plan))


def _sum(column) -> int:
    return int(pc.sum(column).as_py() or 0)


def pick(frames: pa.Table, limit: int, gap: float) -> pa.Table:
    """The first `limit` frames (in order) each >= `gap` s after the last pick in its video.

    Frames come grouped by video; within a video whose times never go down, the next pick
    is found by bisection (the test `ts - last >= gap` only turns true once), else frame by
    frame."""
    videos = frames["video_id"].to_numpy(zero_copy_only=False)
    times = frames["ts"].to_numpy(zero_copy_only=False)
    keep: list[int] = []
    last: dict = {}
    starts: np.ndarray | list[int] = (
        np.flatnonzero(np.r_[True, videos[1:] != videos[:-1]]) if len(videos) else [])
    for start, end in zip(starts, [*starts[1:], len(videos)]):
        if len(keep) >= limit:
            break
        video, ts = videos[start], times[start:end]
        i = 0
        sorted_times = bool(np.all(ts[1:] >= ts[:-1]))
        while i < len(ts) and len(keep) < limit:
            prev = last.get(video)
            if prev is not None and sorted_times:
                def reached(t: float, prev: float = prev) -> bool:
                    return t - prev >= gap

                i = bisect.bisect_left(ts, True, lo=i, key=reached)
                if i == len(ts):
                    break
            if prev is None or ts[i] - prev >= gap:
                keep.append(int(start + i))
                last[video] = ts[i]
            i += 1
    return frames.take(pa.array(keep, pa.int64()))


def _aggregate(con, query: p.Aggregate, classes: list[str], text: str,
               source: str, plan: ft.Plan, facts: Callable) -> QueryResult:
    raw = _fetch(con, c.aggregate_sql(query, classes, source, plan))
    by = query.by
    nkeys = 0 if by is None else (2 if by.kind == "video" else 3)
    rows = []
    for r in raw:
        row = {}
        if by is not None:
            row["video_id"], row["video"] = r[0], r[1]
        if by is not None and by.kind == "time":
            row["start"], row["end"] = r[2], r[2] + by.seconds
        for i, agg in enumerate(query.aggs):
            row[agg.name] = r[nkeys + i]
        row["n_frames"], row["n_predicted"] = r[-2], r[-1]
        rows.append(row)
    estimate, errors = aggregate_estimate(con, query, classes, source, rows, plan, facts())
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
    if by is not None:
        cols["video_id"], types["video_id"] = [r["video_id"] for r in rows], I64
    notes = []
    if by is not None and by.kind == "time":
        notes.append(f"time buckets of {by.seconds:g}s within each video")
    return QueryResult(text, source, "aggregate", make_table(cols, types), estimate, notes)

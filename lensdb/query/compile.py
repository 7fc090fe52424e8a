"""Plan -> parameterised DuckDB SQL statements: selections (frames, frame ids, moments,
runs) and aggregates, each over the frame table of frame_table.py, with predicates from
sql.py.

Moments and aggregates get their video names at the end, by video_id, on the (small)
result; the aligned plan names and orders per-frame listings by looking the video up in
bound lists (`Videos`) rather than joining videos.

Moments number a video's domain frames and group the consecutive matching ones
(`moments_sql`); where every frame is in the domain and a video's frames hold consecutive
frame ids in frame order, the frame ids themselves do the numbering (`runs_sql`).
"""

from __future__ import annotations

from lensdb.query import plan as p
from lensdb.query.frame_table import GENERAL, Plan, domain, named, positional, where_sql
from lensdb.query.sql import Sql, columns, predicate_sql

ORDER = "video, video_id, frame_index, frame_id"

# ---- selections --------------------------------------------------------------------------------

def frames_sql(pred: p.Predicate, classes: list[str], source: str,
               limit: int | None = None, plan: Plan = GENERAL) -> Sql:
    """Matching frames, one row each, in video and frame order."""
    cols = "".join(f", {c}" for c in columns(classes).values())
    keep = f"frame_id, video_id, frame_index, ts, labelled, by_prediction{cols}"
    sql = Sql().add("WITH ").extend(plan.base(classes, source))
    if not plan.fast:
        sql.add(f" SELECT {keep}, video FROM base WHERE ").extend(where_sql(pred, classes))
        sql.add(f" ORDER BY {ORDER}")
    elif plan.videos is not None:
        sql.add(f" SELECT {keep}, ").extend(plan.videos.name("video_id")).add(
            " AS video FROM base WHERE ").extend(where_sql(pred, classes, plan))
        sql.add(" ORDER BY ").extend(plan.videos.rank("video_id")).add(", frame_index, frame_id")
    else:
        inner = Sql().add(f"SELECT {keep} FROM base WHERE ").extend(where_sql(pred, classes, plan))
        named(sql.add(" "), inner, "video, r.video_id, r.frame_index, r.frame_id")
    if limit is not None:
        sql.add(" LIMIT ?", int(limit))
    return sql


def frame_ids_sql(pred: p.Predicate, classes: list[str], source: str,
                  plan: Plan = GENERAL) -> Sql:
    sql = Sql().add("WITH ").extend(plan.base(classes, source, p.uses_frames(pred)))
    return sql.add(" SELECT frame_id FROM base WHERE ").extend(
        where_sql(pred, classes, plan)).add(" ORDER BY frame_id")


def moments_sql(pred: p.Predicate, classes: list[str], source: str,
                gap: float | None = None, plan: Plan = GENERAL) -> Sql:
    """Runs of consecutive matching frames (consecutive among the video's frames in the
    domain, in frame order); with `gap`, runs less than `gap` seconds apart are merged.

    pos numbers a video's domain frames in (frame_index, frame_id) order; among the
    matching ones, pos minus their own running number is the same within a run and grows
    from one run to the next (the gaps-and-islands key)."""
    cols = columns(classes)
    keep = "".join(f", {c}" for c in cols.values())
    sql = Sql().add("WITH ").extend(plan.base(classes, source))
    sql.add(f", marked AS (SELECT video_id, ts, by_prediction{keep}, coalesce(")
    sql.extend(predicate_sql(pred, cols, plan.atoms))
    sql.add(", false) AS m, row_number() OVER (PARTITION BY video_id ORDER BY frame_index,"
            f" frame_id) AS pos FROM base WHERE {domain(classes)})")
    sql.add(", hits AS (SELECT *, pos - row_number() OVER (PARTITION BY video_id ORDER BY pos)"
            " AS g FROM marked WHERE m)")
    sql.add(", runs AS (").add(_runs_select(classes, "count(*) FILTER (WHERE by_prediction)", gap))
    sql.add(" FROM hits GROUP BY video_id, g)")
    return _moments_tail(sql, classes, gap)


def _runs_select(classes: list[str], predicted: str, gap: float | None) -> str:
    sums = "".join(f", sum({c}) AS s{c}" for c in columns(classes).values())
    ends = (" arg_min_null(ts, pos) AS first_ts, arg_max_null(ts, pos) AS last_ts,"
            if gap is not None else "")
    return ("SELECT video_id, min(pos) AS first, max(pos) AS last, min(ts) AS start,"
            f" max(ts) AS stop,{ends} count(*) AS frames, {predicted} AS n_predicted{sums}")


def _moments_tail(sql: Sql, classes: list[str], gap: float | None,
                  checked: bool = False) -> Sql:
    """From `runs` (one row per run: video_id, first/last pos, start/stop = min/max ts,
    first_ts/last_ts = ts of its first/last frame, frames, n_predicted, s<c> = sums) to the
    moments, named and ordered. A run starts a new moment unless it begins less than `gap`
    after the previous run of its video ends (the old per-frame rule, applied per run)."""
    cols = list(columns(classes).values())
    means = "".join(f", s{c} / frames AS {c}" for c in cols)
    if gap is None:
        sql.add(f", moments AS (SELECT video_id, first, start, stop, frames, n_predicted{means}"
                " FROM runs)")
    else:
        sql.add(", marks AS (SELECT *, lag(last_ts) OVER (PARTITION BY video_id ORDER BY first)"
                " AS prev_ts FROM runs)")
        sql.add(", merged AS (SELECT *, sum(CASE WHEN first_ts - prev_ts >= ? THEN 1 ELSE 0"
                " END) OVER (PARTITION BY video_id ORDER BY first ROWS UNBOUNDED PRECEDING)"
                " AS mg FROM marks)", float(gap))
        sums = "".join(f", sum(s{c}) / sum(frames) AS {c}" for c in cols)
        sql.add(", moments AS (SELECT video_id, min(first) AS first, min(start) AS start,"
                " max(stop) AS stop, CAST(sum(frames) AS BIGINT) AS frames,"
                " CAST(sum(n_predicted) AS BIGINT) AS n_predicted"
                f"{sums} FROM merged GROUP BY video_id, mg)")
    ok = ", (SELECT ok FROM checked) AS ok" if checked else ""
    sql.add(f" SELECT m.video_id, v.name AS video, m.start, m.stop, m.frames, m.n_predicted"
            f"{''.join(f', m.{c}' for c in cols)}{ok} FROM moments m JOIN videos v ON"
            " v.video_id = m.video_id ORDER BY video, m.video_id, m.start, m.first")
    return sql


def runs_sql(pred: p.Predicate, classes: list[str], source: str, gap: float | None,
             plan: Plan) -> Sql:
    """Moments as `moments_sql` gives them, for a store where every frame is in the domain
    and a video's consecutive frames have consecutive ids (layout: complete, dense, runs):
    a run is then a stretch of consecutive matching frame ids, found by numbering the
    matching frames in id order, without numbering every frame of the store.

    With `--source predicted` (or no classes) the matching frames come straight off the
    positional scan, in table order, and are numbered as they come (row_number() OVER ());
    with `best`, the labelled ones come from a join, so they are numbered in frame id order.
    Either way the grouping is checked on its own result: the `ok` column is true when every
    run is exactly a stretch of consecutive frame ids of one video and no two runs of a
    video touch; when it is not, the caller answers with `moments_sql`."""
    cols = columns(classes)
    keep = "".join(f", {c}" for c in cols.values())
    sql = Sql().add("WITH ")
    if source == "predicted" or (not classes and source == "best"):
        sel = "".join(f", CAST(p{i}.value AS DOUBLE) AS c{i}" for i in range(len(classes)))
        sql.add(f"s AS (SELECT f.frame_id, f.video_id, f.ts{sel} FROM ").extend(
            positional(classes)).add(")")
        sql.add(f", hits AS (SELECT frame_id AS pos, video_id, ts{keep}, frame_id -"
                " row_number() OVER () AS g FROM s WHERE ")
        sql.extend(predicate_sql(pred, cols, plan.atoms)).add(")")
        predicted = "count(*)" if classes else "CAST(0 AS BIGINT)"
    else:
        sql.extend(plan.base(classes, source))
        sql.add(f", sel AS (SELECT frame_id AS pos, video_id, ts, by_prediction{keep} FROM base"
                " WHERE ").extend(where_sql(pred, classes, plan)).add(")")
        sql.add(", hits AS (SELECT *, pos - row_number() OVER (ORDER BY pos) AS g FROM sel)")
        predicted = "count(*) FILTER (WHERE by_prediction)"
    sql.add(", runs AS MATERIALIZED (").add(_runs_select(classes, predicted, gap))
    sql.add(" FROM hits GROUP BY video_id, g)")
    sql.add(", checked AS (SELECT coalesce(bool_and(frames = last - first + 1 AND"
            " coalesce(prev + 1 < first, true)), true) AS ok FROM (SELECT frames, first, last,"
            " lag(last) OVER (PARTITION BY video_id ORDER BY first) AS prev FROM runs))")
    return _moments_tail(sql, classes, gap, checked=True)


def indexed_runs_sql(pred: p.Predicate, cls: str, source: str, gap: float | None,
                     plan: Plan) -> Sql:
    """Moments as `moments_sql` gives them (source predicted or best), from the runs of
    equal rounded count the writers keep for `cls` (storage/count_runs.py), for a predicate
    on one class and no time, on a store the runs serve (the caller checks both).

    No window and no sort over the runs: a moment starts at a matching run whose previous
    run in the video does not match (or that has none) and ends at a matching run whose
    next one does not; each start pairs with the first end at or after it (ASOF), and the
    moment's frames and sums are differences of the running sums the writers keep."""
    col = columns([cls])[cls]

    def holds(count: str) -> Sql:
        return predicate_sql(pred, {cls: count}, plan.atoms)

    sql = Sql().add("WITH r AS (SELECT * FROM count_runs WHERE source = ? AND class = ? AND"
                    " n IS NOT NULL AND ", source, cls).extend(holds("n")).add(")")
    sql.add(", st AS (SELECT video_id, first_id, first_ts, cum_frames - frames AS f0,"
            " cum_predicted - n_predicted AS p0, cum_value - sum_value AS v0 FROM r WHERE"
            " prev_n IS NULL OR coalesce(NOT ").extend(holds("prev_n")).add(", true))")
    sql.add(", en AS (SELECT video_id, first_id, last_id, last_ts, cum_frames, cum_predicted,"
            " cum_value FROM r WHERE next_n IS NULL OR coalesce(NOT ").extend(
                holds("next_n")).add(", true))")
    sql.add(", runs AS (SELECT st.video_id, st.first_id AS first, en.last_id AS last,"
            " st.first_ts AS start, en.last_ts AS stop, st.first_ts, en.last_ts,"
            " CAST(en.cum_frames - st.f0 AS BIGINT) AS frames, CAST(en.cum_predicted - st.p0"
            f" AS BIGINT) AS n_predicted, en.cum_value - st.v0 AS s{col} FROM st ASOF JOIN en"
            " ON en.video_id = st.video_id AND en.first_id >= st.first_id)")
    return _moments_tail(sql, [cls], gap)


# ---- aggregates --------------------------------------------------------------------------------

def aggregate_sql(query: p.Aggregate, classes: list[str], source: str,
                  plan: Plan = GENERAL) -> Sql:
    """One row (no BY), a row per video, or a row per video and time bucket; columns
    [video_id, video, [bucket,]] a0.., n_frames, n_predicted."""
    cols = columns(classes)
    frames = query.by is not None or p.uses_frames(query.where)
    sql = Sql().add("WITH ").extend(plan.base(classes, source, frames))
    sql.add(", sel AS (SELECT *")
    if query.by is not None and query.by.kind == "time":
        assert query.by.seconds is not None  # the parser gives BY time its bucket size
        sql.add(", floor(ts / ?) * ? AS bucket", float(query.by.seconds), float(query.by.seconds))
    sql.add(" FROM base WHERE ").extend(where_sql(query.where, classes, plan)).add(")")
    keys = []
    if query.by is not None:
        keys = ["video_id"] + (["bucket"] if query.by.kind == "time" else [])
    aggs = "".join(
        f"{'count(*)' if agg.count is None else f'{agg.func}({cols[agg.count.cls]})'} AS a{i}, "
        for i, agg in enumerate(query.aggs))
    totals = f"{aggs}count(*) AS n_frames, count(*) FILTER (WHERE by_prediction) AS n_predicted"
    if not keys:
        return sql.add(f" SELECT {totals} FROM sel")
    sql.add(f", grouped AS (SELECT {', '.join(keys)}, {totals} FROM sel GROUP BY"
            f" {', '.join(keys)})")
    outs = ", ".join(f"g.a{i}" for i in range(len(query.aggs)))
    return sql.add(
        f" SELECT g.video_id, v.name AS video, {'g.bucket, ' if len(keys) > 1 else ''}{outs},"
        " g.n_frames, g.n_predicted FROM grouped g JOIN videos v ON v.video_id = g.video_id"
        f" ORDER BY video, {', '.join('g.' + k for k in keys)}")

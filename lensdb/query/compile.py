"""Plan -> parameterised DuckDB SQL.

User text never reaches the SQL text: class names, video names, patterns, numbers and
durations are all bound `?` parameters; operators come from a fixed table; columns of a
class are named `c0, c1, ...` in the SQL and renamed in Python afterwards.

Every query starts from a frame table (`base`) with one row per stored frame in scope: its
id, video id, frame index, timestamp, whether it is labelled, whether its counts come from
the predictor, and one column per mentioned class holding that frame's count under the
source:
- detected:  labelled frames only, coalesce(counts.n, 0)
- predicted: predictions.value (NULL where the frame has no prediction for the class)
- best:      the detected count on labelled frames, the predicted value elsewhere
A frame is in the query's domain when every mentioned class has a value there.
Predicates compare the rounded count, floor(value + 0.5), with N; aggregates use the
unrounded value.

There are two ways to build `base`, with the same rows (layout.py says when the second
applies, and checks it on the query's connection):
- the general plan (`base_sql`): frames joined with videos, and LEFT JOINed with counts and
  predictions on (frame_id, class); `video` (the name) is a column, so `video = ?` compares
  names directly.
- the aligned plan (`fast_base_sql`): each class's predictions read side by side with
  frames (POSITIONAL JOIN: one prediction per frame, in table order), counts joined on the
  labelled frames only, no join with videos; a `video ...` condition becomes a test of the
  frame's video_id against the videos where it holds (`Atom`: found in the videos table with
  the pattern bound as a parameter). With `--source predicted` and nothing asked of a frame
  but its counts, the predictions alone are the rows (one per frame).
Moments and aggregates get their video names at the end, by video_id, on the (small)
result; the aligned plan names and orders per-frame listings by looking the video up in
bound lists (`Videos`) rather than joining videos.

Moments number a video's domain frames and group the consecutive matching ones
(`moments_sql`); where every frame is in the domain and a video's frames hold consecutive
frame ids in frame order, the frame ids themselves do the numbering (`runs_sql`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lensdb.query import plan as p

SOURCES = ("best", "predicted", "detected")
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
ORDER = "video, video_id, frame_index, frame_id"
LABELLED = "coalesce(f.labelled, false)"


@dataclass
class Sql:
    """A SQL text and its parameters, built left to right so the `?` stay in order."""

    parts: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)

    def add(self, text: str, *params) -> Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    def extend(self, other: Sql) -> Sql:
        self.parts.extend(other.parts)
        self.params.extend(other.params)
        return self

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class Atom:
    """A `video ...` condition resolved against the videos table: the ids of the videos
    where it holds, and of those where it is NULL (a video without a name)."""

    true: tuple[int, ...]
    null: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return len(self.true) + len(self.null)


Atoms = dict[p.VideoMatch, Atom]


def _in(ids: tuple[int, ...]) -> Sql:
    if not ids:
        return Sql().add("false")
    return Sql().add(f"video_id IN ({', '.join('?' * len(ids))})", *ids)


def predicate_sql(pred: p.Predicate, cols: dict[str, str], atoms: Atoms | None = None) -> Sql:
    """SQL for a predicate; `cols` maps each class to the column holding its count. With
    `atoms`, video conditions test `video_id` (aligned plan); else the `video` name."""
    if isinstance(pred, p.Compare):
        return Sql().add(f"(floor({cols[pred.count.cls]} + 0.5) {SQL_OPS[pred.op]} ?)",
                         float(pred.value))
    if isinstance(pred, p.VideoMatch):
        if atoms is not None:
            atom = atoms[pred]
            if not atom.null:
                return Sql().add("(").extend(_in(atom.true)).add(")")
            return (Sql().add("(CASE WHEN ").extend(_in(atom.null)).add(" THEN NULL ELSE ")
                    .extend(_in(atom.true)).add(" END)"))
        op = {"=": "=", "!=": "<>", "LIKE": "LIKE", "NOT LIKE": "NOT LIKE"}[pred.op]
        return Sql().add(f"(video {op} ?)", pred.pattern)
    if isinstance(pred, p.TimeRange):
        return Sql().add("(ts BETWEEN ? AND ?)", float(pred.low), float(pred.high))
    if isinstance(pred, p.TimeCompare):
        return Sql().add(f"(ts {SQL_OPS[pred.op]} ?)", float(pred.seconds))
    if isinstance(pred, p.Not):
        return Sql().add("(NOT ").extend(predicate_sql(pred.item, cols, atoms)).add(")")
    if isinstance(pred, p.And | p.Or):
        return _balanced(list(pred.items), "AND" if isinstance(pred, p.And) else "OR", cols,
                         atoms)
    raise TypeError(f"not a predicate: {pred!r}")


def _balanced(items: list[p.Predicate], word: str, cols: dict[str, str],
              atoms: Atoms | None) -> Sql:
    """A AND B AND C ... as a balanced tree, so long chains do not nest deeply."""
    if len(items) == 1:
        return predicate_sql(items[0], cols, atoms)
    mid = len(items) // 2
    left = _balanced(items[:mid], word, cols, atoms)
    right = _balanced(items[mid:], word, cols, atoms)
    return Sql().add("(").extend(left).add(f" {word} ").extend(right).add(")")


def video_atom_sql(atom: p.VideoMatch) -> Sql:
    """The ids of the videos where a `video ...` condition is true, and where it is NULL."""
    op = {"=": "=", "!=": "<>", "LIKE": "LIKE", "NOT LIKE": "NOT LIKE"}[atom.op]
    return Sql().add(f"SELECT list(video_id ORDER BY video_id) FILTER (WHERE name {op} ?), "
                     "list(video_id ORDER BY video_id) FILTER (WHERE name IS NULL) FROM videos",
                     atom.pattern)


def columns(classes: list[str], prefix: str = "c") -> dict[str, str]:
    return {cls: f"{prefix}{i}" for i, cls in enumerate(classes)}


# ---- the frame table: general plan ---------------------------------------------------------

def base_sql(classes: list[str], source: str) -> Sql:
    """`base AS (...)`: one row per frame in scope, a count column c<i> per class."""
    cols = columns(classes)
    sql = Sql().add(
        "base AS (SELECT f.frame_id, f.video_id, v.name AS video, f.frame_index, f.ts, "
        f"{LABELLED} AS labelled"
    )
    for i in range(len(classes)):
        det = f"CAST(coalesce(k{i}.n, 0) AS DOUBLE)"
        pred = f"CAST(p{i}.value AS DOUBLE)"
        expr = {"detected": det, "predicted": pred,
                "best": f"CASE WHEN {LABELLED} THEN {det} ELSE {pred} END"}
        sql.add(f", {expr[source]} AS {cols[classes[i]]}")
    predicted = {"detected": "false", "predicted": "true",
                 "best": f"NOT {LABELLED}"}[source] if classes else "false"
    sql.add(f", {predicted} AS by_prediction")
    sql.add(" FROM frames f JOIN videos v ON v.video_id = f.video_id")
    for i, cls in enumerate(classes):
        if source != "predicted":
            sql.add(f" LEFT JOIN counts k{i} ON k{i}.frame_id = f.frame_id AND k{i}.class = ?",
                    cls)
        if source != "detected":
            sql.add(f" LEFT JOIN predictions p{i} ON p{i}.frame_id = f.frame_id"
                    f" AND p{i}.class = ?", cls)
    if source == "detected":
        sql.add(f" WHERE {LABELLED}")
    return sql.add(")")


# ---- the frame table: aligned plan -----------------------------------------------------------

FRAME_COLS = f"f.frame_id, f.video_id, f.frame_index, f.ts, {LABELLED} AS labelled"


def positional(classes: list[str], fields: tuple[str, ...] = ("value",),
               frames: bool = True) -> Sql:
    """Each class's predictions p<i> side by side, in table order (after frames f)."""
    sql = Sql().add("frames f" if frames else "")
    for i, cls in enumerate(classes):
        join = " POSITIONAL JOIN " if frames or i else ""
        sql.add(f"{join}(SELECT frame_id, {', '.join(fields)} FROM predictions"
                f" WHERE class = ?) p{i}", cls)
    return sql


def alignment_sql(classes: list[str]) -> Sql:
    """Per class: rows of the positional pairing with frames whose frame ids differ (or that
    have no partner: the shorter side is padded with NULLs)."""
    checks = ", ".join(f"count(*) FILTER (WHERE NOT coalesce(p{i}.frame_id = f.frame_id, false))"
                       for i in range(len(classes)))
    return Sql().add(f"SELECT {checks} FROM ").extend(positional(classes, ("1",)))


def null_values_sql(cls: str) -> Sql:
    """Predictions of `cls` without a value (min/max statistics answer it without a scan
    when there are none)."""
    return Sql().add("SELECT count(*) FROM predictions WHERE value IS NULL AND class = ?", cls)


def _predicted_part(classes: list[str], where: str | None, frames: bool = True) -> Sql:
    cols = "".join(f", CAST(p{i}.value AS DOUBLE) AS c{i}" for i in range(len(classes)))
    keep = FRAME_COLS if frames else "p0.frame_id"
    sql = Sql().add(f"SELECT {keep}{cols}, true AS by_prediction FROM ")
    sql.extend(positional(classes, frames=frames))
    return sql.add(f" WHERE {where}" if where else "")


def _detected_part(classes: list[str]) -> Sql:
    cols = "".join(f", CAST(coalesce(k{i}.n, 0) AS DOUBLE) AS c{i}" for i in range(len(classes)))
    sql = Sql().add(f"SELECT {FRAME_COLS}{cols}, false AS by_prediction FROM frames f")
    for i, cls in enumerate(classes):
        sql.add(f" LEFT JOIN counts k{i} ON k{i}.frame_id = f.frame_id AND k{i}.class = ?", cls)
    return sql.add(" WHERE f.labelled")


def fast_base_sql(classes: list[str], source: str, frames: bool = True) -> Sql:
    """`base AS (...)` with the rows and columns of `base_sql` (but no `video` name), for a
    store that is complete and whose predictions of `classes` are aligned (layout.py).
    `frames=False`: the caller needs no column of frames but frame_id (no video, time or
    label): with --source predicted the predictions alone then give the rows, one per frame."""
    sql = Sql().add("base AS (")
    if not classes:
        sql.add(f"SELECT {FRAME_COLS}, false AS by_prediction FROM frames f")
        return sql.add(" WHERE f.labelled)" if source == "detected" else ")")
    if source == "predicted":
        sql.extend(_predicted_part(classes, None, frames))
    elif source == "detected":
        sql.extend(_detected_part(classes))
    else:  # best: the prediction on unlabelled frames, the detector's count on labelled ones
        sql.extend(_predicted_part(classes, "f.labelled IS NOT TRUE")).add(" UNION ALL ")
        sql.extend(_detected_part(classes))
    return sql.add(")")


@dataclass(frozen=True)
class Videos:
    """The videos with ids first, first + 1, ...: their names and their places in name order
    (ORDER BY name, video_id), so per-frame rows can be named and ordered by list lookups
    (bound lists) instead of a join with videos."""

    first: int
    names: tuple[str | None, ...]
    ranks: tuple[int, ...]

    def name(self, video_id: str) -> Sql:
        return Sql().add(f"list_extract(?::VARCHAR[], {video_id} - ? + 1)", list(self.names),
                         self.first)

    def rank(self, video_id: str) -> Sql:
        return Sql().add(f"list_extract(?::BIGINT[], {video_id} - ? + 1)", list(self.ranks),
                         self.first)


@dataclass(frozen=True)
class Plan:
    """How to read the frame table: `atoms` None for the general plan, else the aligned
    plan with the store's video conditions resolved (and, when the store's video ids are
    few and dense, `videos` to name and order frames without a join)."""

    atoms: Atoms | None = None
    videos: Videos | None = None

    @property
    def fast(self) -> bool:
        return self.atoms is not None

    def base(self, classes: list[str], source: str, frames: bool = True) -> Sql:
        if self.fast:
            return fast_base_sql(classes, source, frames)
        return base_sql(classes, source)


GENERAL = Plan()


def _domain(classes: list[str]) -> str:
    return " AND ".join([f"{c} IS NOT NULL" for c in columns(classes).values()] or ["true"])


def _filter(pred: p.Predicate | None, classes: list[str], plan: Plan = GENERAL) -> Sql:
    """A WHERE condition: in the domain, and the predicate is true (not false or NULL: a
    WHERE keeps only the rows where it is true, which lets DuckDB push it into the scan)."""
    sql = Sql().add(f"{_domain(classes)}")
    if pred is not None:
        sql.add(" AND ").extend(predicate_sql(pred, columns(classes), plan.atoms))
    return sql


def _named(sql: Sql, inner: Sql, order: str) -> Sql:
    """Rows of `inner` (with video_id) with the video's name as `video`, in `order`."""
    return sql.add("SELECT r.*, v.name AS video FROM (").extend(inner).add(
        f") r JOIN videos v ON v.video_id = r.video_id ORDER BY {order}")


# ---- selections --------------------------------------------------------------------------------

def frames_sql(pred: p.Predicate, classes: list[str], source: str,
               limit: int | None = None, plan: Plan = GENERAL) -> Sql:
    """Matching frames, one row each, in video and frame order."""
    cols = "".join(f", {c}" for c in columns(classes).values())
    keep = f"frame_id, video_id, frame_index, ts, labelled, by_prediction{cols}"
    sql = Sql().add("WITH ").extend(plan.base(classes, source))
    if not plan.fast:
        sql.add(f" SELECT {keep}, video FROM base WHERE ").extend(_filter(pred, classes))
        sql.add(f" ORDER BY {ORDER}")
    elif plan.videos is not None:
        sql.add(f" SELECT {keep}, ").extend(plan.videos.name("video_id")).add(
            " AS video FROM base WHERE ").extend(_filter(pred, classes, plan))
        sql.add(" ORDER BY ").extend(plan.videos.rank("video_id")).add(", frame_index, frame_id")
    else:
        inner = Sql().add(f"SELECT {keep} FROM base WHERE ").extend(_filter(pred, classes, plan))
        _named(sql.add(" "), inner, "video, r.video_id, r.frame_index, r.frame_id")
    if limit is not None:
        sql.add(" LIMIT ?", int(limit))
    return sql


def frame_ids_sql(pred: p.Predicate, classes: list[str], source: str,
                  plan: Plan = GENERAL) -> Sql:
    sql = Sql().add("WITH ").extend(plan.base(classes, source, p.uses_frames(pred)))
    return sql.add(" SELECT frame_id FROM base WHERE ").extend(
        _filter(pred, classes, plan)).add(" ORDER BY frame_id")


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
            f" frame_id) AS pos FROM base WHERE {_domain(classes)})")
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
                " WHERE ").extend(_filter(pred, classes, plan)).add(")")
        sql.add(", hits AS (SELECT *, pos - row_number() OVER (ORDER BY pos) AS g FROM sel)")
        predicted = "count(*) FILTER (WHERE by_prediction)"
    sql.add(", runs AS MATERIALIZED (").add(_runs_select(classes, predicted, gap))
    sql.add(" FROM hits GROUP BY video_id, g)")
    sql.add(", checked AS (SELECT coalesce(bool_and(frames = last - first + 1 AND"
            " coalesce(prev + 1 < first, true)), true) AS ok FROM (SELECT frames, first, last,"
            " lag(last) OVER (PARTITION BY video_id ORDER BY first) AS prev FROM runs))")
    return _moments_tail(sql, classes, gap, checked=True)


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
    sql.add(" FROM base WHERE ").extend(_filter(query.where, classes, plan)).add(")")
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


# ---- error estimates ---------------------------------------------------------------------------

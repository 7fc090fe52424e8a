"""Plan -> parameterised DuckDB SQL.

User text never reaches the SQL text: class names, video names, patterns, numbers and
durations are all bound `?` parameters; operators come from a fixed table; columns of a
class are named `c0, c1, ...` in the SQL and renamed in Python afterwards.

The frame table every query starts from (`base`) has one row per stored frame with its
video, frame index, timestamp, whether it is labelled, and one column per mentioned class
holding that frame's count under the source:
- detected:  labelled frames only, coalesce(counts.n, 0)
- predicted: predictions.value (NULL where the frame has no prediction for the class)
- best:      the detected count on labelled frames, the predicted value elsewhere
A frame is in the query's domain when every mentioned class has a value there.
Predicates compare the rounded count, floor(value + 0.5), with N; aggregates use the
unrounded value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lensdb.query import plan as p

SOURCES = ("best", "predicted", "detected")
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
ORDER = "video, video_id, frame_index, frame_id"


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


def predicate_sql(pred: p.Predicate, cols: dict[str, str]) -> Sql:
    """SQL for a predicate; `cols` maps each class to the column holding its count."""
    if isinstance(pred, p.Compare):
        return Sql().add(f"(floor({cols[pred.count.cls]} + 0.5) {SQL_OPS[pred.op]} ?)",
                         float(pred.value))
    if isinstance(pred, p.VideoMatch):
        op = {"=": "=", "!=": "<>", "LIKE": "LIKE", "NOT LIKE": "NOT LIKE"}[pred.op]
        return Sql().add(f"(video {op} ?)", pred.pattern)
    if isinstance(pred, p.TimeRange):
        return Sql().add("(ts BETWEEN ? AND ?)", float(pred.low), float(pred.high))
    if isinstance(pred, p.TimeCompare):
        return Sql().add(f"(ts {SQL_OPS[pred.op]} ?)", float(pred.seconds))
    if isinstance(pred, p.Not):
        return Sql().add("(NOT ").extend(predicate_sql(pred.item, cols)).add(")")
    if isinstance(pred, p.And | p.Or):
        return _balanced(list(pred.items), "AND" if isinstance(pred, p.And) else "OR", cols)
    raise TypeError(f"not a predicate: {pred!r}")


def _balanced(items: list[p.Predicate], word: str, cols: dict[str, str]) -> Sql:
    """A AND B AND C ... as a balanced tree, so long chains do not nest deeply."""
    if len(items) == 1:
        return predicate_sql(items[0], cols)
    mid = len(items) // 2
    left, right = _balanced(items[:mid], word, cols), _balanced(items[mid:], word, cols)
    return Sql().add("(").extend(left).add(f" {word} ").extend(right).add(")")


def columns(classes: list[str], prefix: str = "c") -> dict[str, str]:
    return {cls: f"{prefix}{i}" for i, cls in enumerate(classes)}


def base_sql(classes: list[str], source: str) -> Sql:
    """`base AS (...)`: one row per frame in scope, a count column c<i> per class."""
    cols = columns(classes)
    sql = Sql().add(
        "base AS (SELECT f.frame_id, f.video_id, v.name AS video, f.frame_index, f.ts, "
        "coalesce(f.labelled, false) AS labelled"
    )
    for i in range(len(classes)):
        det = f"CAST(coalesce(k{i}.n, 0) AS DOUBLE)"
        pred = f"CAST(p{i}.value AS DOUBLE)"
        expr = {"detected": det, "predicted": pred,
                "best": f"CASE WHEN coalesce(f.labelled, false) THEN {det} ELSE {pred} END"}
        sql.add(f", {expr[source]} AS {cols[classes[i]]}")
    predicted = {"detected": "false", "predicted": "true",
                 "best": "NOT coalesce(f.labelled, false)"}[source] if classes else "false"
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
        sql.add(" WHERE coalesce(f.labelled, false)")
    return sql.add(")")


def _domain(classes: list[str]) -> str:
    return " AND ".join([f"{c} IS NOT NULL" for c in columns(classes).values()] or ["true"])


def _filter(pred: p.Predicate | None, classes: list[str]) -> Sql:
    sql = Sql().add(f"{_domain(classes)}")
    if pred is not None:
        sql.add(" AND coalesce(").extend(predicate_sql(pred, columns(classes))).add(", false)")
    return sql


def frames_sql(pred: p.Predicate, classes: list[str], source: str,
               limit: int | None = None) -> Sql:
    """Matching frames, one row each, in video and frame order."""
    cols = ", ".join(columns(classes).values())
    sql = Sql().add("WITH ").extend(base_sql(classes, source))
    sql.add(f" SELECT frame_id, video_id, video, frame_index, ts, labelled, by_prediction"
            f"{', ' + cols if cols else ''} FROM base WHERE ").extend(_filter(pred, classes))
    sql.add(f" ORDER BY {ORDER}")
    if limit is not None:
        sql.add(" LIMIT ?", int(limit))
    return sql


def frame_ids_sql(pred: p.Predicate, classes: list[str], source: str) -> Sql:
    sql = Sql().add("WITH ").extend(base_sql(classes, source))
    return sql.add(" SELECT frame_id FROM base WHERE ").extend(_filter(pred, classes)).add(
        " ORDER BY frame_id")


def moments_sql(pred: p.Predicate, classes: list[str], source: str,
                gap: float | None = None) -> Sql:
    """Runs of consecutive matching frames (consecutive among the video's frames in the
    domain, in frame order); with `gap`, runs less than `gap` seconds apart are merged."""
    cols = "".join(f", {c}" for c in columns(classes).values())
    sql = Sql().add("WITH ").extend(base_sql(classes, source))
    # pos: the frame's place among its video's domain frames; a matching frame starts a
    # new moment unless the previous matching frame is right before it (or within gap)
    sql.add(f", marked AS (SELECT video_id, video, ts, by_prediction{cols}, coalesce(")
    sql.extend(predicate_sql(pred, columns(classes)))
    sql.add(", false) AS m, row_number() OVER (PARTITION BY video_id ORDER BY frame_index,"
            f" frame_id) AS pos FROM base WHERE {_domain(classes)})")
    sql.add(", hits AS (SELECT *, lag(pos) OVER w AS prev_pos, lag(ts) OVER w AS prev_ts"
            " FROM marked WHERE m WINDOW w AS (PARTITION BY video_id ORDER BY pos))")
    sql.add(", runs AS (SELECT *, sum(CASE WHEN prev_pos IS NULL OR (pos - prev_pos > 1")
    if gap is not None:
        sql.add(" AND ts - prev_ts >= ?", float(gap))
    sql.add(") THEN 1 ELSE 0 END) OVER (PARTITION BY video_id ORDER BY pos ROWS UNBOUNDED"
            " PRECEDING) AS grp FROM hits)")
    means = "".join(f", avg({c}) AS {c}" for c in columns(classes).values())
    sql.add(
        " SELECT video_id, any_value(video) AS video, min(ts) AS start, max(ts) AS stop,"
        f" count(*) AS frames, count(*) FILTER (WHERE by_prediction) AS n_predicted{means}"
        " FROM runs GROUP BY video_id, grp ORDER BY video, video_id, start"
    )
    return sql


def aggregate_sql(query: p.Aggregate, classes: list[str], source: str) -> Sql:
    """One row (no BY), a row per video, or a row per video and time bucket."""
    cols = columns(classes)
    sql = Sql().add("WITH ").extend(base_sql(classes, source))
    sql.add(", sel AS (SELECT *")
    if query.by is not None and query.by.kind == "time":
        sql.add(", floor(ts / ?) * ? AS bucket", float(query.by.seconds), float(query.by.seconds))
    sql.add(" FROM base WHERE ").extend(_filter(query.where, classes)).add(") SELECT ")
    keys = []
    if query.by is not None:
        keys = ["video_id"] + (["bucket"] if query.by.kind == "time" else [])
        sql.add("video_id, any_value(video) AS video, ")
        if query.by.kind == "time":
            sql.add("bucket, ")
    for i, agg in enumerate(query.aggs):
        expr = "count(*)" if agg.count is None else f"{agg.func}({cols[agg.count.cls]})"
        sql.add(f"{expr} AS a{i}, ")
    sql.add("count(*) AS n_frames, count(*) FILTER (WHERE by_prediction) AS n_predicted FROM sel")
    if keys:
        sql.add(f" GROUP BY {', '.join(keys)} ORDER BY video, {', '.join(keys)}")
    return sql


def labelled_eval_sql(classes: list[str]) -> Sql:
    """`ev AS (...)`: labelled frames with a prediction for every class: d<i> the detected
    count, p<i> the predicted value, held_out true when no prediction was trained on it."""
    sql = Sql().add("ev AS (SELECT f.frame_id, v.name AS video, f.ts")
    for i in range(len(classes)):
        sql.add(f", CAST(coalesce(k{i}.n, 0) AS DOUBLE) AS d{i}, CAST(p{i}.value AS DOUBLE)"
                f" AS p{i}")
    held = " OR ".join(f"coalesce(p{i}.in_train, false)" for i in range(len(classes)))
    sql.add(f", NOT ({held or 'false'}) AS held_out")
    sql.add(" FROM frames f JOIN videos v ON v.video_id = f.video_id")
    for i, cls in enumerate(classes):
        sql.add(f" LEFT JOIN counts k{i} ON k{i}.frame_id = f.frame_id AND k{i}.class = ?", cls)
        sql.add(f" JOIN predictions p{i} ON p{i}.frame_id = f.frame_id AND p{i}.class = ?", cls)
    return sql.add(" WHERE coalesce(f.labelled, false))")


def confusion_sql(pred: p.Predicate, classes: list[str]) -> Sql:
    """Per held_out: true/false positives/negatives of the predicate evaluated on predicted
    counts (guess) against detected counts (truth)."""
    sql = Sql().add("WITH ").extend(labelled_eval_sql(classes))
    sql.add(", m AS (SELECT held_out, coalesce(").extend(
        predicate_sql(pred, columns(classes, "d"))).add(", false) AS truth, coalesce(")
    sql.extend(predicate_sql(pred, columns(classes, "p"))).add(", false) AS guess FROM ev)")
    return sql.add(
        " SELECT held_out, count(*) FILTER (WHERE truth AND guess),"
        " count(*) FILTER (WHERE guess AND NOT truth), count(*) FILTER (WHERE truth AND NOT"
        " guess), count(*) FILTER (WHERE NOT truth AND NOT guess) FROM m GROUP BY held_out"
    )


def residuals_sql(cls: str, where: p.Predicate | None, classes: list[str]) -> Sql:
    """Per held_out: n, mean, sample sd, mean |.|, 95th percentile |.| of predicted - detected
    for `cls`, on labelled frames where `where` holds on detected counts."""
    i = classes.index(cls)
    diff = f"(p{i} - d{i})"
    sql = Sql().add("WITH ").extend(labelled_eval_sql(classes))
    sql.add(f" SELECT held_out, count(*), avg({diff}), stddev_samp({diff}), avg(abs({diff})),"
            f" quantile_cont(abs({diff}), 0.95) FROM ev")
    if where is not None:
        sql.add(" WHERE coalesce(").extend(predicate_sql(where, columns(classes, "d"))).add(
            ", false)")
    return sql.add(" GROUP BY held_out")

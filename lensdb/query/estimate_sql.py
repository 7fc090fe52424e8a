"""SQL for the error estimates: labelled frames' detected against predicted counts."""

from __future__ import annotations

from lensdb.query import plan as p
from lensdb.query.frame_table import GENERAL, LABELLED, Plan, positional
from lensdb.query.sql import Sql, columns, predicate_sql


def labelled_eval_sql(classes: list[str], plan: Plan = GENERAL) -> Sql:
    """`ev AS (...)`: labelled frames with a prediction for every class: d<i> the detected
    count, p<i> the predicted value, held_out true when no prediction was trained on it.
    The aligned plan pairs the predictions positionally (one per frame, checked) and joins
    counts on the labelled frames only."""
    held = " OR ".join(f"coalesce(t{i}, false)" for i in range(len(classes)))
    sql = Sql().add("ev AS (SELECT s.frame_id, s.ts")
    sql.add(", s.video_id" if plan.fast else ", s.video")
    for i in range(len(classes)):
        sql.add(f", CAST(coalesce(k{i}.n, 0) AS DOUBLE) AS d{i}, CAST(v{i} AS DOUBLE) AS p{i}")
    sql.add(f", NOT ({held or 'false'}) AS held_out FROM (SELECT ")
    sql.add("p0.frame_id, f.ts, f.video_id" if plan.fast else "f.frame_id, f.ts, v.name AS video")
    for i in range(len(classes)):
        sql.add(f", p{i}.value AS v{i}, p{i}.in_train AS t{i}")
    if plan.fast:
        sql.add(" FROM ").extend(positional(classes, ("value", "in_train")))
    else:
        sql.add(" FROM frames f JOIN videos v ON v.video_id = f.video_id")
        for i, cls in enumerate(classes):
            sql.add(f" JOIN predictions p{i} ON p{i}.frame_id = f.frame_id AND p{i}.class = ?",
                    cls)
    sql.add(" WHERE f.labelled) s" if plan.fast else f" WHERE {LABELLED}) s")
    for i, cls in enumerate(classes):
        sql.add(f" LEFT JOIN counts k{i} ON k{i}.frame_id = s.frame_id AND k{i}.class = ?", cls)
    return sql.add(")")


def confusion_sql(pred: p.Predicate, classes: list[str], plan: Plan = GENERAL) -> Sql:
    """Per held_out: true/false positives/negatives of the predicate evaluated on predicted
    counts (guess) against detected counts (truth)."""
    sql = Sql().add("WITH ").extend(labelled_eval_sql(classes, plan))
    sql.add(", m AS (SELECT held_out, coalesce(").extend(
        predicate_sql(pred, columns(classes, "d"), plan.atoms)).add(", false) AS truth, coalesce(")
    sql.extend(predicate_sql(pred, columns(classes, "p"), plan.atoms)).add(
        ", false) AS guess FROM ev)")
    return sql.add(
        " SELECT held_out, count(*) FILTER (WHERE truth AND guess),"
        " count(*) FILTER (WHERE guess AND NOT truth), count(*) FILTER (WHERE truth AND NOT"
        " guess), count(*) FILTER (WHERE NOT truth AND NOT guess) FROM m GROUP BY held_out"
    )


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

"""The frame table every query starts from (`base`): one row per stored frame in scope,
with its id, video id, frame index, timestamp, whether it is labelled, whether its counts
come from the predictor, and one column per mentioned class holding that frame's count
under the source:
- detected:  labelled frames only, coalesce(counts.n, 0)
- predicted: predictions.value (NULL where the frame has no prediction for the class)
- best:      the detected count on labelled frames, the predicted value elsewhere
A frame is in the query's domain when every mentioned class has a value there.

Two plans build it, with the same rows (layout.py says when the second applies, and
checks it on the query's connection):
- the general plan (`base_sql`): frames joined with videos, and LEFT JOINed with counts and
  predictions on (frame_id, class); `video` (the name) is a column, so `video = ?` compares
  names directly.
- the aligned plan (`fast_base_sql`): each class's predictions read side by side with
  frames (POSITIONAL JOIN: one prediction per frame, in table order), counts joined on the
  labelled frames only, no join with videos; a `video ...` condition becomes a test of the
  frame's video_id against the videos where it holds (`Atom`). With `--source predicted`
  and nothing asked of a frame but its counts, the predictions alone are the rows.
`Plan` is the choice between them; the statements in compile.py take one.
"""

from __future__ import annotations

from dataclasses import dataclass

from lensdb.query import plan as p
from lensdb.query.sql import Atoms, Sql, columns, predicate_sql

LABELLED = "coalesce(f.labelled, false)"

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
class Sample:
    """A seeded random sample of `size` of the store's `labelled` frames, for the error
    estimate when there are more than that: the `size` labelled frames of smallest
    hash(frame_id, seed), found among those whose hash is below `cutoff` (a rate a quarter
    above size/labelled, so that there are `size` of them but for odds too small to
    matter; were there fewer, the estimate would rest on fewer, and say so)."""

    size: int  # labelled frames the estimate reads
    labelled: int  # labelled frames in the store (recorded, or counted)
    seed: int  # seeds the hash that orders the frames at random

    @property
    def cutoff(self) -> int:
        rate = min(1.0, 1.25 * self.size / max(1, self.labelled) + 1e-3)
        return min(2**64 - 1, int(rate * 2**64))

    def where(self, frame_id: str) -> Sql:
        """` AND ...` keeping sampled frames, ordered and limited (ends a SELECT)."""
        return Sql().add(f" AND hash({frame_id}, ?::BIGINT) < ?::UBIGINT ORDER BY"
                         f" hash({frame_id}, ?::BIGINT) LIMIT ?", self.seed, self.cutoff,
                         self.seed, self.size)


@dataclass(frozen=True)
class Plan:
    """How to read the frame table: `atoms` None for the general plan, else the aligned
    plan with the store's video conditions resolved (and, when the store's video ids are
    few and dense, `videos` to name and order frames without a join). `sample`: the error
    estimate reads this sample of the labelled frames (None: all of them); `kept`: it
    reads them from the sample the writers keep (storage/estimate_sample.py, current)."""

    atoms: Atoms | None = None
    videos: Videos | None = None
    sample: Sample | None = None
    kept: bool = False

    @property
    def fast(self) -> bool:
        return self.atoms is not None

    def base(self, classes: list[str], source: str, frames: bool = True) -> Sql:
        if self.fast:
            return fast_base_sql(classes, source, frames)
        return base_sql(classes, source)


GENERAL = Plan()


def domain(classes: list[str]) -> str:
    return " AND ".join([f"{c} IS NOT NULL" for c in columns(classes).values()] or ["true"])


def where_sql(pred: p.Predicate | None, classes: list[str], plan: Plan = GENERAL) -> Sql:
    """A WHERE condition: in the domain, and the predicate is true (not false or NULL: a
    WHERE keeps only the rows where it is true, which lets DuckDB push it into the scan)."""
    sql = Sql().add(f"{domain(classes)}")
    if pred is not None:
        sql.add(" AND ").extend(predicate_sql(pred, columns(classes), plan.atoms))
    return sql


def named(sql: Sql, inner: Sql, order: str) -> Sql:
    """Rows of `inner` (with video_id) with the video's name as `video`, in `order`."""
    return sql.add("SELECT r.*, v.name AS video FROM (").extend(inner).add(
        f") r JOIN videos v ON v.video_id = r.video_id ORDER BY {order}")

"""Runs of equal rounded count, kept when frames, labels and predictions are written, so
that a moments query on one class reads its runs instead of numbering millions of frames.

A predicate compares rounded counts (`floor(value + 0.5)`, lensdb.query.sql), so the frames
of a video split into runs of consecutive frames with the same rounded count of a class
answer any predicate on that class alike: a moment is a stretch of adjacent runs that
match. Table `count_runs` holds, per source (`predicted`: the prediction; `best`: the
detector's count on labelled frames, the prediction elsewhere, as lensdb.query.frame_table
defines them), class and run: its video, first and last frame id, the rounded count `n`
(NULL for frames without a value), its frames, how many of them are predicted, the sum of
the values (for the moment's mean) and its times (min, max, first and last: compile.py's
run columns). Smooth predictions make runs few: the benchmark's 10^7 frames hold ~6 x 10^5.

Kept only where the runs mean what they say: the store's frames are in `runs` layout (each
video one stretch of consecutive ids in frame order) and the class's predictions `aligned`
with them (storage/layout_facts.py, whose `record` calls `record` here inside the same
write transaction). Classes of conditions (`car[parked]`) are never kept: their counts
are written by a path with no hook. A write redoes the runs from the first frame it touched
to the end (`_redo_from`): an append (ingest) from the last old frame's run, a label write
(best only) from the run of its first labelled frame, a rewrite of the class's predictions
(train-counter) all of them. Validity is stamped as the layout facts are: the frames' row
count and largest id and the class's prediction rows (`count_runs_stamps`); a reader
(`serves`) takes the runs only when the stamp equals what the store holds now, else it
answers from the frames as before. A query pairs the starts and ends of moments by an ASOF
join (compile.indexed_runs_sql), so it relies on no table order.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

from lensdb.storage.layout_facts import Now, Stamp

SOURCES = ("predicted", "best")

# every (source, class) to redo is a row of `redo_keys` (source, class, start): one DELETE
# and one INSERT for all of them, whatever the number of classes
_BUILD = """
INSERT INTO count_runs
WITH s AS (SELECT q.source, q.class, f.frame_id, f.video_id, f.ts,
                  CASE WHEN q.source = 'best' AND coalesce(f.labelled, false)
                       THEN CAST(coalesce(k.n, 0) AS DOUBLE) ELSE p.value END AS value,
                  q.source = 'predicted' OR NOT coalesce(f.labelled, false) AS predicted
           FROM redo_keys q JOIN predictions p ON p.class = q.class AND p.frame_id >= q.start
           JOIN frames f ON f.frame_id = p.frame_id
           LEFT JOIN (SELECT * FROM counts WHERE frame_id >= ?) k
             ON k.frame_id = f.frame_id AND k.class = p.class
           WHERE p.frame_id >= ? AND f.frame_id >= ?),
b AS (SELECT *, floor(value + 0.5) AS n FROM s),
c AS (SELECT *, CASE WHEN video_id IS NOT DISTINCT FROM lag(video_id) OVER w
                      AND n IS NOT DISTINCT FROM lag(n) OVER w THEN 0 ELSE 1 END AS brk,
             coalesce(video_id <> lag(video_id) OVER w OR ts >= lag(ts) OVER w, true) AS up
      FROM b WINDOW w AS (PARTITION BY source, class ORDER BY frame_id)),
r AS (SELECT *, sum(brk) OVER (PARTITION BY source, class ORDER BY frame_id
                               ROWS UNBOUNDED PRECEDING) AS run FROM c),
g AS (SELECT source, class, video_id, min(frame_id) AS first_id, max(frame_id) AS last_id,
             any_value(n) AS n, count(*) AS frames,
             count(*) FILTER (WHERE predicted) AS n_predicted, sum(value) AS sum_value,
             arg_min(ts, frame_id) AS first_ts, arg_max(ts, frame_id) AS last_ts,
             bool_and(up) AS up, count(*) AS add_frames,
             count(*) FILTER (WHERE predicted) AS add_predicted, sum(value) AS add_value,
             true AS new
      FROM r GROUP BY source, class, run, video_id),
seed AS (SELECT k.source, k.class, k.video_id, k.first_id, k.last_id, k.n, k.frames,
                k.n_predicted, k.sum_value, k.first_ts, k.last_ts, true, k.cum_frames,
                k.cum_predicted, k.cum_value, false
         FROM count_runs k JOIN redo_keys q ON q.source = k.source AND q.class = k.class
           AND k.first_id = q.seed WHERE k.first_id >= ?),
a AS (SELECT * FROM g UNION ALL SELECT * FROM seed),
o AS (SELECT *, CASE WHEN lag(video_id) OVER w = video_id THEN lag(n) OVER w END AS prev_n,
             CASE WHEN lead(video_id) OVER w = video_id THEN lead(n) OVER w END AS next_n,
             up AND coalesce(video_id <> lag(video_id) OVER w OR
                             first_ts >= lag(last_ts) OVER w, true) AS sorted,
             sum(add_frames) OVER c AS cum_frames, sum(add_predicted) OVER c AS cum_predicted,
             sum(add_value) OVER c AS cum_value
      FROM a WINDOW w AS (PARTITION BY source, class ORDER BY first_id),
                    c AS (PARTITION BY source, class ORDER BY first_id
                          ROWS UNBOUNDED PRECEDING))
SELECT source, class, video_id, first_id, last_id, n, prev_n, next_n, frames, n_predicted,
       sum_value, first_ts, last_ts, sorted, cum_frames, cum_predicted, cum_value
FROM o WHERE new ORDER BY source, class, first_id
RETURNING source, class, sorted
"""

# per key, the first ids of the last three runs at or before its frame (newest first),
# among runs from a first id on: the tail of the table, which its zone maps let a scan skip to
_LAST_RUNS = """
SELECT q.source, q.class, list(k.first_id ORDER BY k.first_id DESC)[1:3]
FROM redo_frames q JOIN count_runs k ON k.source = q.source AND k.class = q.class
  AND k.first_id <= q.frame_id
WHERE k.first_id >= ? GROUP BY q.source, q.class
"""
TAIL = 65_536  # frames before a key's frame searched first for its last runs


def stamps(con) -> dict[tuple[str, str], tuple[Stamp, bool]]:
    """(source, class) -> (the stamp of the runs kept for it, whether the times of its
    frames never decrease along a video's ids); {} on a store without them."""
    try:
        rows = con.execute("SELECT source, class, frames, last_frame, rows, ts_sorted FROM "
                           "count_runs_stamps").fetchall()
    except duckdb.CatalogException:  # an older store, opened read-only
        return {}
    return {(s, c): (Stamp(int(n), int(last), int(r)), bool(ok))
            for s, c, n, last, r, ok in rows}


def serves(con, source: str, classes: list[str], current: Now | None = None) -> bool:
    """Whether the kept runs of `source` for every class in `classes` describe the store
    as it is now, with times in frame order (a moment's start and end are then the times
    of its first and last frames)."""
    kept = stamps(con)
    if not classes or any(not kept.get((source, cls), (None, False))[1] for cls in classes):
        return False
    current = current or Now(con)
    return all(kept[(source, cls)][0] == current.of(cls) for cls in classes)


def record(con, keep: dict[str, Stamp], rewritten: Iterable[str],
           labelled: Iterable[int] | None = None) -> None:
    """Bring the runs up to date inside the caller's write transaction: `keep` are the
    classes whose runs hold their meaning now (runs layout, aligned predictions), each with
    its stamp, of which `rewritten` had their predictions rewritten; `labelled` the frames
    a label write labelled. Every other class's runs are dropped."""
    keep = {cls: stamp for cls, stamp in keep.items() if "[" not in cls}
    redo = set(rewritten)
    first_label = min((int(i) for i in labelled), default=None) if labelled is not None \
        else None
    kept = stamps(con)
    for source, cls in sorted(set(kept)):
        if cls not in keep:
            _drop(con, source, cls)
    redo_from: dict[tuple[str, str], int] = {}  # (source, class) -> the frame to redo from
    for cls, stamp in sorted(keep.items()):
        for source in SOURCES:
            old = kept.get((source, cls))
            start: int | None = None  # redo from the run of this frame (None: nothing new)
            if old is None or cls in redo or not _appended(old[0], stamp):
                start = 0
            elif old[0] != stamp:
                start = old[0].last_frame  # the last old frame's run may go on
            if source == "best" and first_label is not None:
                start = first_label if start is None else min(start, first_label)
            if start is not None:
                redo_from[(source, cls)] = start
    if not redo_from:
        return
    rebuilt = _redo(con, redo_from)
    keys = sorted(redo_from)
    # in frame order: the rebuilt runs, and the kept ones (all rebuilt when it starts at 0)
    flags = [rebuilt[k][1] and (rebuilt[k][0] == 0 or k not in kept or kept[k][1])
             for k in keys]
    con.register("new_stamps", pa.table({
        "source": [k[0] for k in keys], "class": [k[1] for k in keys],
        "frames": [keep[k[1]].frames for k in keys],
        "last_frame": [keep[k[1]].last_frame for k in keys],
        "rows": [keep[k[1]].rows for k in keys], "ts_sorted": flags}))
    try:
        con.execute("DELETE FROM count_runs_stamps t USING new_stamps n WHERE t.source = "
                    "n.source AND t.class = n.class")
        con.execute("INSERT INTO count_runs_stamps SELECT * FROM new_stamps")
    finally:
        con.unregister("new_stamps")


def _appended(old: Stamp, now: Stamp) -> bool:
    assert old.rows is not None and now.rows is not None
    return (now.frames >= old.frames and now.last_frame >= old.last_frame
            and now.rows >= old.rows)


def _redo(con, frames: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, bool]]:
    """Rebuild each key's runs from the run before the one that holds its frame (that
    run's next count may change) to the end, the last run kept seeding the previous count
    and the running sums. Returns per key (the first frame id rebuilt, whether the rebuilt
    runs' times are in frame order)."""
    keys = sorted(frames)
    con.register("redo_frames", pa.table({"source": [k[0] for k in keys],
                                          "class": [k[1] for k in keys],
                                          "frame_id": [frames[k] for k in keys]}))
    try:
        bound = max(0, min(frames.values()) - TAIL)
        last = _last_runs(con, bound)
        if bound and any(len(last.get(k, [])) < 3 for k in keys):
            last = _last_runs(con, 0)  # a run longer than the tail: search them all
    finally:
        con.unregister("redo_frames")
    # redo from the run before the one holding the frame, seeded by the run before that
    starts = {k: int(last[k][1]) if len(last.get(k, [])) >= 2 else 0 for k in keys}
    seeds = {k: int(last[k][2]) if len(last.get(k, [])) >= 3 else None for k in keys}
    con.register("redo_keys", pa.table({"source": [k[0] for k in keys],
                                        "class": [k[1] for k in keys],
                                        "start": [starts[k] for k in keys],
                                        "seed": pa.array([seeds[k] for k in keys], pa.int64())}))
    try:
        first = min(starts.values())  # lets the scans skip what no key redoes
        con.execute("DELETE FROM count_runs k USING redo_keys q WHERE q.source = k.source AND "
                    "q.class = k.class AND k.first_id >= q.start AND k.first_id >= ?", [first])
        seed = min((v for v in seeds.values() if v is not None), default=0)
        returned = con.execute(_BUILD, [first, first, first, seed]).fetchall()
    finally:
        con.unregister("redo_keys")
    ordered = {k: True for k in keys}
    for source, cls, sorted_ in returned:
        ordered[(source, cls)] = ordered[(source, cls)] and bool(sorted_)
    return {k: (starts[k], ordered[k]) for k in keys}


def _last_runs(con, bound: int) -> dict[tuple[str, str], list[int]]:
    return {(s, c): list(ids) for s, c, ids in con.execute(_LAST_RUNS, [bound]).fetchall()}


def _drop(con, source: str, cls: str) -> None:
    con.execute("DELETE FROM count_runs WHERE source = ? AND class = ?", [source, cls])
    con.execute("DELETE FROM count_runs_stamps WHERE source = ? AND class = ?", [source, cls])

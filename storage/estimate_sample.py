"""The error estimate's sample of labelled frames, kept when frames are written, so that an
estimate reads some SAMPLE_FRAMES rows instead of scanning the store for them.

The sample is the one the query's own sample path picks (lensdb.query.frame_table.Sample):
the SAMPLE_FRAMES labelled frames of smallest hash(frame_id, SEED), or every labelled frame
while there are no more than that. Table `estimate_sample` holds, per sampled frame, one row
of class '' (its video id, time and hash) and one row per class with a prediction for it
(the class's detected count, coalesce(counts.n, 0), the predicted value and whether the
prediction was trained on the frame), built by the same joins the estimate would make.

`record` runs inside every write transaction that adds frames or predictions or labels
frames (called from layout_facts.record, whose hooks those writers call before COMMIT):
- an append (ingest commit) offers its new labelled frames, a label write its frames (their
  counts replaced): those whose hash beats the sample's largest enter it with their rows,
  and the sample is cut back to SAMPLE_FRAMES; no scan of the store;
- a rewrite of a class's predictions (train-counter) rebuilds that class's rows (one scan);
- a store whose sample is missing or stale is rebuilt whole (one scan, once).

Validity is stamped as the layout facts are (`estimate_sample_stamps`): for the frame set,
the frames' row count, largest id and labelled count; per class, the same and the class's
prediction rows. A reader (`serves`) takes the kept sample only when every stamp it needs
equals what the store holds now, else the estimate scans as before. Classes of conditions
(`car[parked]`) are never kept: their counts are written by a path with no hook.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pyarrow as pa

from lensdb.storage.layout_facts import Now, Stamp, frames_stamp, prediction_rows

SAMPLE_FRAMES = 20_000  # labelled frames the kept sample holds (the estimate reads at most)
SEED = 1105  # of the hash that orders the frames at random (the estimate's seed)
ALL = ""  # the class of the rows that list the sampled frames

_ROWS = ("INSERT INTO estimate_sample SELECT n.frame_id, p.class, n.video_id, n.ts, n.h, "
         "coalesce(k.n, 0), p.value, p.in_train FROM {src} n JOIN (SELECT * FROM predictions"
         "{pf}) p ON p.frame_id = n.frame_id LEFT JOIN (SELECT * FROM counts{kf}) k ON "
         "k.frame_id = n.frame_id AND k.class = p.class WHERE NOT contains(p.class, '[')")


def stamps(con) -> dict[str, tuple[Stamp, int, int]]:
    """class -> (stamp, seed, size) of what the kept sample describes; {} without one."""
    try:
        rows = con.execute("SELECT class, frames, last_frame, rows, seed, size FROM "
                           "estimate_sample_stamps").fetchall()
    except duckdb.CatalogException:  # an older store, opened read-only
        return {}
    return {c: (Stamp(int(n), int(last), int(r)), int(seed), int(size))
            for c, n, last, r, seed, size in rows}


def serves(con, classes: list[str], labelled: int, size: int | None, seed: int,
           current: Now | None = None) -> bool:
    """Whether the kept sample holds what the estimate would read for `classes` on a store
    with `labelled` labelled frames: the `size` of smallest hash under `seed`, or all of
    them (size None); with every stamp current."""
    st = stamps(con)
    base = st.get(ALL)
    if base is None or base[1] != seed or any("[" in cls for cls in classes):
        return False
    current = current or Now(con)
    now = current.frames()
    if base[0] != Stamp(now.frames, now.last_frame, labelled):
        return False
    if not (labelled <= base[2] if size is None else size <= base[2]):
        return False
    for cls in classes:
        s = st.get(cls)
        if s is None or s[0] != current.of(cls):
            return False
    return True


def record(con, labelled: int, classes: Iterable[str] = (), rewritten: Iterable[str] = (),
           relabelled: Iterable[int] | None = None, now: Stamp | None = None) -> None:
    """Bring the kept sample up to date inside the caller's write transaction, after its
    rows are written: `labelled` the store's labelled frames now, `classes` classes whose
    predictions may have been appended to, `rewritten` those whose predictions were
    replaced, `relabelled` the frames a label write labelled (None: not a label write),
    `now` the frames' stamp when the caller has it."""
    st = stamps(con)
    now = now or frames_stamp(con)
    base = st.get(ALL)
    relabel = None if relabelled is None else np.asarray(list(relabelled), np.int64)
    if base is not None and base[1:] == (SEED, SAMPLE_FRAMES) and \
            _extends(con, base[0], now, labelled, relabel):
        _extend(con, base[0].last_frame, relabel)
        redo = {c for c in rewritten if "[" not in c}  # and appended classes not kept yet:
        redo |= {c for c in classes if "[" not in c and c not in st}
        keep = []
        for cls, (stamp, _, _) in st.items():
            if cls == ALL or cls in redo:
                continue
            same = (stamp.frames, stamp.last_frame) == (base[0].frames, base[0].last_frame)
            if same and prediction_rows(con, cls) == (stamp.rows or 0) + int(
                    con.execute("SELECT count(*) FROM predictions WHERE class = ? AND "
                                "frame_id > ?", [cls, base[0].last_frame]).fetchall()[0][0]):
                keep.append(cls)
            else:
                redo.add(cls)
        for cls in sorted(redo):
            _rebuild_class(con, cls)
        kept = keep + sorted(redo)
    else:
        kept = _rebuild(con)
    con.execute("DELETE FROM estimate_sample_stamps")
    con.execute("INSERT INTO estimate_sample_stamps VALUES (?, ?, ?, ?, ?, ?)",
                [ALL, now.frames, now.last_frame, labelled, SEED, SAMPLE_FRAMES])
    for cls in kept:
        con.execute("INSERT INTO estimate_sample_stamps VALUES (?, ?, ?, ?, ?, ?)",
                    [cls, now.frames, now.last_frame, prediction_rows(con, cls), SEED,
                     SAMPLE_FRAMES])


def _extends(con, old: Stamp, now: Stamp, labelled: int, relabel: np.ndarray | None) -> bool:
    """Whether the store now can be the one the sample describes plus appended frames (and,
    in a label write, the relabelled ones): else the sample is rebuilt."""
    if now.frames < old.frames or now.last_frame < old.last_frame:
        return False
    new, new_labelled = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE labelled) FROM frames WHERE frame_id > ?",
        [old.last_frame]).fetchall()[0]
    assert old.rows is not None
    low = old.rows + int(new_labelled)
    high = low + (0 if relabel is None else len(relabel))
    return now.frames == old.frames + int(new) and low <= labelled <= high


def _extend(con, last: int, relabel: np.ndarray | None) -> None:
    """Offer the frames labelled since (ids above `last`, and `relabel`) to the sample."""
    full, top = con.execute("SELECT count(*), max(h) FROM estimate_sample WHERE class = ''"
                            ).fetchall()[0]
    pick = "SELECT frame_id, video_id, ts, hash(frame_id, ?::BIGINT) AS h FROM frames"
    sql, params = f"{pick} WHERE labelled AND frame_id > ?", [SEED, last]
    if relabel is not None and len(relabel):
        con.register("sample_relabel", pa.table({"frame_id": relabel}))
        sql += (f" UNION {pick} WHERE labelled AND frame_id IN (SELECT frame_id FROM "
                "sample_relabel)")
        params.append(SEED)
    if full >= SAMPLE_FRAMES:
        sql, params = f"SELECT * FROM ({sql}) WHERE h <= ?::UBIGINT", [*params, top]
    new = con.sql(sql, params=params).to_arrow_table()
    if relabel is not None and len(relabel):
        con.unregister("sample_relabel")
    if new.num_rows == 0:
        return
    ids = new["frame_id"].to_numpy()
    lo, hi = int(ids.min()), int(ids.max())
    con.register("sample_new", new)
    con.execute("DELETE FROM estimate_sample WHERE frame_id IN (SELECT frame_id FROM "
                "sample_new)")  # relabelled frames already in it: their rows anew
    con.execute("INSERT INTO estimate_sample SELECT frame_id, '', video_id, ts, h, NULL, "
                "NULL, NULL FROM sample_new")
    con.execute(_ROWS.format(src="sample_new", pf=" WHERE frame_id BETWEEN ? AND ?",
                             kf=" WHERE frame_id BETWEEN ? AND ?"), [lo, hi, lo, hi])
    con.unregister("sample_new")
    n = con.execute("SELECT count(*) FROM estimate_sample WHERE class = ''").fetchall()[0][0]
    if n > SAMPLE_FRAMES:
        con.execute("DELETE FROM estimate_sample WHERE h > (SELECT h FROM estimate_sample "
                    "WHERE class = '' ORDER BY h LIMIT 1 OFFSET ?)", [SAMPLE_FRAMES - 1])


def _rebuild(con) -> list[str]:
    """The whole sample again from the store; the classes it keeps."""
    con.execute("DELETE FROM estimate_sample")
    con.execute("INSERT INTO estimate_sample SELECT frame_id, '', video_id, ts, h, NULL, NULL, "
                "NULL FROM (SELECT frame_id, video_id, ts, hash(frame_id, ?::BIGINT) AS h FROM "
                "frames WHERE coalesce(labelled, false) ORDER BY h LIMIT ?)",
                [SEED, SAMPLE_FRAMES])
    con.execute(_ROWS.format(src="(SELECT * FROM estimate_sample WHERE class = '')",
                             pf="", kf=""))
    return sorted(r[0] for r in con.execute("SELECT DISTINCT class FROM predictions WHERE "
                                            "NOT contains(class, '[')").fetchall())


def _rebuild_class(con, cls: str) -> None:
    con.execute("DELETE FROM estimate_sample WHERE class = ?", [cls])
    con.execute(_ROWS.format(src="(SELECT * FROM estimate_sample WHERE class = '')",
                             pf=" WHERE class = ?", kf=" WHERE class = ?"), [cls, cls])

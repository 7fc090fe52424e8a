"""Layout facts recorded when frames and predictions are written, so that a query need not
check them by scanning the store (lensdb.query.layout says what each fact buys).

`record(con)` runs inside every write transaction that adds frames or predictions or
labels frames (Store.commit_batch, Store.label_frames, the count-model registry), before
its COMMIT, so the facts change with the rows they describe. Each fact row carries a stamp
of the state it describes: the frames table's row count and largest frame id, and for a
per-class fact the class's prediction rows. A reader takes a fact only while its stamp
equals what the store holds now (`read`), else it scans as if there were no fact: a store
written by an older LensDB, or by a path that does not call `record`, answers as before.

The facts (value true or false; a missing fact means "not known"):
- `runs` (class ''): frame ids increase along the table, and each video's frames are one
  stretch of consecutive ids whose frame index never decreases (lensdb.query.layout.runs,
  plus the increasing ids that make the next appended rows easy to find);
- `aligned` (per class): the class's predictions, in table order, pair one to one with
  the frames in table order, with equal frame ids (lensdb.query.layout.aligned);
- `labelled` (class ''): how many frames are labelled (its value in `rows`), which sizes
  the error estimate's sample; it is no fact the answer relies on.

An append (frame ids above the recorded largest one) is checked on the new rows only:
both facts are kept by an append whose new rows keep them, and once false they stay false
under appends. A rewrite of a class's predictions (train-counter) rechecks that class with
one scan, in the transaction that rewrote them (`recheck`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from lensdb.storage.catalog import ensure_schema

RUNS, ALIGNED, LABELLED = "runs", "aligned", "labelled"


@dataclass(frozen=True)
class Stamp:
    """The state of the store a fact describes."""

    frames: int  # rows of frames
    last_frame: int  # largest frame id (-1: no frames)
    rows: int | None = None  # prediction rows of the fact's class (per-class facts only)


def frames_stamp(con) -> Stamp:
    n, last = con.execute("SELECT count(*), coalesce(max(frame_id), -1) FROM frames"
                          ).fetchall()[0]
    return Stamp(int(n), int(last))


def prediction_rows(con, cls: str) -> int:
    return int(con.execute("SELECT count(*) FROM predictions WHERE class = ?", [cls]
                           ).fetchall()[0][0])


class Now:
    """The store's state as the stamps describe it, read once each through one connection:
    the readers of recorded facts, kept runs and the kept sample compare with the same
    counts, which a query would otherwise count once per reader."""

    def __init__(self, con):
        self.con = con
        self._frames: Stamp | None = None
        self._rows: dict[str, int] = {}

    def frames(self) -> Stamp:
        if self._frames is None:
            self._frames = frames_stamp(self.con)
        return self._frames

    def of(self, cls: str) -> Stamp:
        """The stamp of a per-class fact of `cls` now."""
        if cls not in self._rows:
            self._rows[cls] = prediction_rows(self.con, cls)
        f = self.frames()
        return Stamp(f.frames, f.last_frame, self._rows[cls])


def stored(con) -> dict[tuple[str, str], tuple[Stamp, bool]]:
    """Every recorded fact: (fact, class) -> (stamp, value); {} on a store without them."""
    try:
        rows = con.execute("SELECT fact, class, frames, last_frame, rows, value FROM "
                           "layout_facts").fetchall()
    except duckdb.CatalogException:  # an older store, opened read-only
        return {}
    return {(f, c): (Stamp(int(n), int(last), None if r is None else int(r)), bool(v))
            for f, c, n, last, r, v in rows}


def read(con, current: Now | None = None) -> dict[tuple[str, str], bool | int]:
    """The facts that hold for the store as it is now: value per (fact, class), the count
    for `labelled`. Costs a few metadata-sized queries (about 1 ms each at 10^7 frames)."""
    facts = stored(con)
    if not facts:
        return {}
    current = current or Now(con)
    now = current.frames()
    out: dict[tuple[str, str], bool | int] = {}
    for (fact, cls), (stamp, value) in facts.items():
        if fact == ALIGNED:
            if stamp == current.of(cls):
                out[(fact, cls)] = value
        elif (stamp.frames, stamp.last_frame) == (now.frames, now.last_frame):
            if fact != LABELLED:
                out[(fact, cls)] = value
            elif stamp.rows is not None:  # the labelled count rides in the stamp
                out[(fact, cls)] = stamp.rows
    return out


def record(con, classes: Iterable[str] = (), recheck: Iterable[str] = (),
           labelled: Iterable[int] | None = None) -> None:
    """Bring the facts up to date inside the caller's write transaction: `classes` are
    classes whose predictions may have been appended to (besides those with a fact),
    `recheck` those whose predictions were rewritten (checked again by a scan), `labelled`
    the frames a label write labelled. Keeps the error estimate's sample up to date too
    (storage/estimate_sample.py) and the runs of rounded counts (storage/count_runs.py)."""
    from lensdb.storage import count_runs, estimate_sample

    ensure_schema(con)
    facts = stored(con)
    now = frames_stamp(con)
    classes, redo = list(classes), set(recheck)
    n_labelled = _labelled(con, facts, now)
    runs = _runs(con, facts.get((RUNS, "")), now)
    _put(con, RUNS, "", now, runs)
    _put(con, LABELLED, "", Stamp(now.frames, now.last_frame, n_labelled), True)
    estimate_sample.record(con, n_labelled, classes, redo, labelled, now)
    aligned: dict[str, Stamp] = {}
    for cls in sorted({c for f, c in facts if f == ALIGNED} | set(classes) | redo):
        stamp = Stamp(now.frames, now.last_frame, prediction_rows(con, cls))
        old = None if cls in redo else facts.get((ALIGNED, cls))
        if _put(con, ALIGNED, cls, stamp, _aligned(con, cls, old, stamp)):
            aligned[cls] = stamp
    count_runs.record(con, aligned if runs else {}, redo, labelled)


def _put(con, fact: str, cls: str, stamp: Stamp, value: bool) -> bool:
    con.execute("DELETE FROM layout_facts WHERE fact = ? AND class = ?", [fact, cls])
    con.execute("INSERT INTO layout_facts VALUES (?, ?, ?, ?, ?, ?)",
                [fact, cls, stamp.frames, stamp.last_frame, stamp.rows, value])
    return value


def _appended(old: Stamp, now: Stamp) -> bool:
    """Whether `now` can be `old` plus appended frames (ids above the old largest)."""
    return now.frames >= old.frames and now.last_frame >= old.last_frame


def _runs(con, old: tuple[Stamp, bool] | None, now: Stamp) -> bool:
    if old is not None and _appended(old[0], now):
        stamp, value = old
        if not value or stamp == now:
            return value
        return _runs_tail(con, stamp, now)
    return _runs_scan(con)


_BREAKS = ("SELECT video_id, frame_id, frame_index, lag(video_id) OVER () AS pv, "
           "lag(frame_id) OVER () AS pf, lag(frame_index) OVER () AS pfi FROM frames")
_IS_BREAK = "NOT coalesce(video_id = pv AND frame_id = pf + 1 AND frame_index >= pfi, false)"


def _runs_scan(con) -> bool:
    breaks, videos, backwards = con.execute(
        f"SELECT count(*) FILTER (WHERE {_IS_BREAK}), count(DISTINCT video_id) FILTER "
        f"(WHERE {_IS_BREAK}), count(*) FILTER (WHERE frame_id <= pf) FROM ({_BREAKS})"
    ).fetchall()[0]
    return breaks == videos and backwards == 0


def _runs_tail(con, old: Stamp, now: Stamp) -> bool:
    """The appended rows (and the last old one, their first predecessor) keep the runs:
    ids still increase, and every break starts a video with no frame before it."""
    if old.frames == 0:
        return _runs_scan(con)  # no last old row to start from: the new rows are all
    new, breaks, videos, backwards, seen = con.execute(
        f"WITH t AS ({_BREAKS} WHERE frame_id >= ?), "
        f"b AS (SELECT video_id FROM t WHERE pf IS NOT NULL AND {_IS_BREAK}) "
        "SELECT (SELECT count(*) FROM t WHERE frame_id > ?), (SELECT count(*) FROM b), "
        "(SELECT count(DISTINCT video_id) FROM b), "
        "(SELECT count(*) FROM t WHERE frame_id <= pf), "
        "(SELECT count(*) FROM frames WHERE frame_id <= ? AND video_id IN "
        "(SELECT video_id FROM b))",
        [old.last_frame, old.last_frame, old.last_frame]).fetchall()[0]
    return (new == now.frames - old.frames and breaks == videos and backwards == 0
            and seen == 0)


def _aligned(con, cls: str, old: tuple[Stamp, bool] | None, now: Stamp) -> bool:
    if now.rows != now.frames:
        return False  # rows left over on one side of the pairing
    if old is not None and _appended(old[0], now):
        stamp, value = old
        if not value or stamp == now:
            return value
        assert stamp.rows is not None
        # the old rows pair up; the appended ones (frame ids above the old largest, after
        # the old ones in table order) must pair up among themselves
        new_frames, new_rows, mismatched = con.execute(
            "SELECT count(f.frame_id), count(p.frame_id), count(*) FILTER (WHERE NOT "
            "coalesce(f.frame_id = p.frame_id, false)) FROM (SELECT frame_id FROM frames "
            "WHERE frame_id > ?) f POSITIONAL JOIN (SELECT frame_id FROM predictions WHERE "
            "class = ? AND frame_id > ?) p", [stamp.last_frame, cls, stamp.last_frame]
        ).fetchall()[0]
        return (new_frames == now.frames - stamp.frames
                and new_rows == now.rows - stamp.rows and mismatched == 0)
    mismatched = con.execute(
        "SELECT count(*) FILTER (WHERE NOT coalesce(p.frame_id = f.frame_id, false)) FROM "
        "frames f POSITIONAL JOIN (SELECT frame_id FROM predictions WHERE class = ?) p",
        [cls]).fetchall()[0][0]
    return mismatched == 0


def _labelled(con, facts: dict, now: Stamp) -> int:
    old = facts.get((LABELLED, ""))
    if old is not None and _appended(old[0], now) and old[0].rows is not None \
            and old[0].frames < now.frames:
        return old[0].rows + int(con.execute(
            "SELECT count(*) FROM frames WHERE labelled AND frame_id > ?",
            [old[0].last_frame]).fetchall()[0][0])
    return int(con.execute("SELECT count(*) FROM frames WHERE labelled").fetchall()[0][0])

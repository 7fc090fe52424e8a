"""What one query learns about how the store lies on disk, to take a cheaper plan.

The general plan joins frames, videos, counts and predictions on their keys: hash joins of
10^7 rows on each side at scale, and moments number every frame of the domain with a
window function. A store that LensDB itself wrote allows much cheaper plans:

- frame ids count up from 0 in commit order (storage.Store.commit_batch), and the frames
  table holds them in that order;
- a video's frames are committed in frame order, and an ingest that resumes continues
  after the last committed frame index (lensdb.ingest), so within a video the frame index
  never decreases as the frame id grows; videos are ingested one at a time, so a video's
  frames usually hold one contiguous range of frame ids (a resumed or interleaved video
  does not, and takes the general moments plan);
- every frame gets one prediction per trained class, written in frame order with its batch
  or all at once by train-counter, so the predictions of one class, read in table order,
  pair up one to one with the frames read in table order.

None of this is trusted: each fact the faster plan relies on is checked here, on the
connection the query runs on, at most once per query, and a query whose store does not
pass takes the general plan, which needs none of them. The facts:

- `complete()`: every frame's video_id is a row of videos, so the inner join with videos
  filters nothing and video names can be attached to the (small) answer at the end.
- `aligned(classes)`: for each class, frames POSITIONAL JOIN that class's predictions
  pairs equal frame ids on every row, with no row left over on either side: the join of
  frames and predictions is exactly that positional pairing (one prediction per frame).
- `dense(classes)`: aligned, and no prediction value is NULL: every frame of the store is
  in the domain of a `--source predicted` query on those classes.
- `runs()`: each video's frames hold one contiguous range of frame ids, within which the
  frame index never decreases: a video's frames in (frame_index, frame_id) order are its
  frame ids in order, so "consecutive frames of a video" are consecutive frame ids.
  (compile.runs_sql, which relies on it, also checks its own grouping.)
- `videos()`: the ids of the videos with frames are one dense range, so a frame's video
  name and its place in name order can be looked up in bound lists by video_id.
- `count_runs(source, classes)`: the runs of equal rounded count the writers keep
  (storage/count_runs.py) are current for the classes and their times are in frame order:
  one-class moments come from them (compile.indexed_runs_sql).

The checks that read every frame (aligned, runs) are single scans, some 70-130 ms at 10^7
frames on two cores; the joins and window functions they avoid take 0.2-2 s there. So the
writers record them (storage/layout_facts.py: kept up to date in the transactions that
write frames and predictions, each stamped with the state it describes), and a recorded
true fact whose stamp matches the store is taken without the scan; a missing, stale or
false one is checked by the scan, as before.
"""

from __future__ import annotations

from lensdb.query import estimate_sql as es
from lensdb.query import frame_table as ft
from lensdb.query import plan as p
from lensdb.query import sql as sq
from lensdb.storage import count_runs, estimate_sample
from lensdb.storage import layout_facts as lf

MAX_VIDEOS = 100_000  # more videos than this are named and ordered by a join


class Layout:
    """Facts about the store seen through one connection, each probed once, on demand."""

    def __init__(self, con):
        self.con = con
        self._complete: bool | None = None
        self._range: tuple[int, int] | None = None  # frames' video ids, all in videos
        self._videos: ft.Videos | None = None
        self._aligned: dict[str, bool] = {}
        self._dense: dict[str, bool] = {}
        self._runs: bool | None = None
        self._atoms: dict[p.VideoMatch, sq.Atom] = {}
        self._recorded: dict | None = None
        self._now = lf.Now(con)  # the store's stamps, counted once for every reader

    def recorded(self) -> dict:
        """The facts the writers recorded that hold now (storage.layout_facts.read)."""
        if self._recorded is None:
            self._recorded = lf.read(self.con, self._now)
        return self._recorded

    def labelled(self) -> int:
        """How many frames are labelled (recorded, else counted)."""
        n = self.recorded().get((lf.LABELLED, ""))
        if n is None:
            n = self._one("SELECT count(*) FROM frames WHERE labelled")[0]
        return int(n)

    def kept_sample(self, classes: list[str], sample: ft.Sample | None) -> bool:
        """Whether the sample the writers keep is current for `classes` and holds `sample`
        (None: every labelled frame), so the estimate can read it instead of scanning."""
        seed = sample.seed if sample is not None else es.SEED
        size = None if sample is None else sample.size
        return estimate_sample.serves(self.con, classes, self.labelled(), size, seed,
                                      self._now)

    def count_runs(self, source: str, classes: list[str]) -> bool:
        """Whether the runs of rounded counts the writers keep are current for `classes`."""
        return count_runs.serves(self.con, source, classes, self._now)

    def _one(self, sql: str, params: list | None = None) -> tuple:
        return self.con.execute(sql, params or []).fetchall()[0]

    def complete(self) -> bool:
        if self._complete is None:
            lo, hi, nulls = self._one(
                "SELECT min(video_id), max(video_id), count(*) - count(video_id) FROM frames")
            if nulls:
                self._complete = False
            elif lo is None:
                self._complete = True
            elif self._one("SELECT count(*) FROM videos WHERE video_id BETWEEN ? AND ?",
                           [lo, hi])[0] == hi - lo + 1:
                self._complete = True  # video ids are unique: every id in [lo, hi] is there
                self._range = (lo, hi)
            else:
                self._complete = self._one(
                    "SELECT count(*) FROM (SELECT DISTINCT video_id FROM frames) f "
                    "ANTI JOIN videos v ON v.video_id = f.video_id")[0] == 0
        return self._complete

    def aligned(self, classes: list[str]) -> bool:
        todo = [cls for cls in dict.fromkeys(classes) if cls not in self._aligned]
        for cls in todo[:]:
            if self.recorded().get((lf.ALIGNED, cls)) is True:
                self._aligned[cls] = True
                todo.remove(cls)
        if todo:
            sql = ft.alignment_sql(todo)
            for cls, misaligned in zip(todo, self._one(sql.text, sql.params)):
                self._aligned[cls] = misaligned == 0
        return all(self._aligned[cls] for cls in classes)

    def dense(self, classes: list[str]) -> bool:
        if not self.aligned(classes):
            return False
        for cls in classes:
            if cls not in self._dense:
                sql = ft.null_values_sql(cls)
                self._dense[cls] = self._one(sql.text, sql.params)[0] == 0
        return all(self._dense[cls] for cls in classes)

    def runs(self) -> bool:
        if self._runs is None:
            self._runs = self.recorded().get((lf.RUNS, "")) is True or self._check_runs()
        return self._runs

    def _check_runs(self) -> bool:
        # each frame against the one before it in table order: a "break" unless both are of
        # the same video, with consecutive ids and a frame index that does not go down.
        # Every video's first row is a break; one break per video means each video is one
        # stretch of consecutive ids, in frame order.
        breaks, videos = self._one(
            "SELECT count(*), count(DISTINCT video_id) FROM (SELECT video_id, frame_id, "
            "frame_index, lag(video_id) OVER () AS pv, lag(frame_id) OVER () AS pf, "
            "lag(frame_index) OVER () AS pfi FROM frames) WHERE NOT coalesce(video_id = pv "
            "AND frame_id = pf + 1 AND frame_index >= pfi, false)")
        return breaks == videos

    def videos(self) -> ft.Videos | None:
        """Names and name order of the videos with frames, when their ids are one dense
        range of at most MAX_VIDEOS (None otherwise: frames are named by a join)."""
        if self._videos is None and self.complete() and self._range is not None:
            lo, hi = self._range
            if hi - lo < MAX_VIDEOS:
                rows = self.con.execute(
                    "SELECT name, row_number() OVER (ORDER BY name, video_id) FROM videos "
                    "WHERE video_id BETWEEN ? AND ? ORDER BY video_id", [lo, hi]).fetchall()
                self._videos = ft.Videos(lo, tuple(r[0] for r in rows), tuple(r[1] for r in rows))
        return self._videos

    def atoms(self, pred: p.Predicate | None) -> dict[p.VideoMatch, sq.Atom]:
        """For each `video ...` condition in `pred`: the videos where it is true and those
        where it is NULL (no name), evaluated on the videos table with bound parameters."""
        for atom in p.video_matches(pred):
            if atom not in self._atoms:
                sql = sq.video_atom_sql(atom)
                true, null = self._one(sql.text, sql.params)
                self._atoms[atom] = sq.Atom(tuple(true or ()), tuple(null or ()))
        return self._atoms

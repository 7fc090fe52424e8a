"""The ingest writer: a thread that commits batches in order, one transaction each.

A codec that needs training holds every batch, and each video's final status behind them,
until enough vectors came in, over as many inputs as it takes; the final flush trains it on
what there is. When that is fewer than the codec needs, the writer keeps what it holds in
the store (storage/held.py), marks those videos `held`, and the next ingest starts from
them: buffering goes on across runs until the codec can train.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lensdb import video_status as vs
from lensdb.storage import held
from lensdb.storage.store import Batch, Store
from lensdb.storage.vectors import roundtrip
from lensdb.timing import StageTimes

COMPACT_EVERY = 64  # commits between checks whether the segments need merging


@dataclass
class Finish:
    """A video's final status, set once every batch queued before it is committed."""

    video_id: int
    status: str
    message: str | None


class Writer:
    """Commits batches from a queue in a thread. A codec that needs training holds every
    batch (and each video's final status behind them) until enough vectors came in, over
    as many inputs and runs as it takes; the final flush trains it on what there is, or
    keeps it in the store for the next run."""

    def __init__(self, store: Store, stages: StageTimes, train_size: int, need: int,
                 predictors):
        self.store = store
        self.stages = stages
        self.need = need  # the fewest vectors the codec trains on
        self.train_size = max(train_size, need)  # an IVF codec may need more than asked
        self.predictors = predictors
        self.codec = store.codec() if store.vectors.has_codec() else None
        # held back until the codec is trained, starting with what earlier ingests held
        self.pending: list[Batch | Finish] = held.load(store.root, self._committed, Finish)
        self.from_earlier = {i.video_id for i in self.pending}  # videos an earlier run held
        self.held: dict[int, str] = {}  # video id -> why this run left it held
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="lensdb-writer", daemon=True)
        self._thread.start()

    def put(self, item: Batch | Finish) -> None:
        if self.error:
            raise self.error
        self.q.put(item)

    def flush(self, final: bool = False) -> None:
        """Commit everything queued; `final`: train the codec on what is held if need be
        (when that is too little, it is kept in the store: `held`), else it keeps holding."""
        done = threading.Event()
        self.q.put((done, final))
        done.wait()
        if self.error:
            raise self.error

    def close(self) -> None:
        self.q.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            flush = item if isinstance(item, tuple) else None
            try:
                if self.error is None:
                    if flush is None:
                        self._add(item)
                    self._drain(final=bool(flush and flush[1]))
            except BaseException as exc:  # surfaced to the caller on its next put/flush
                self.error = exc
            finally:
                if flush is not None:
                    flush[0].set()

    def _committed(self, frames: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these (video id, frame index) the catalog holds: one query for all."""
        with self.store.catalog.connect() as con:
            con.register("asked", pa.table({"video_id": [v for v, _ in frames],
                                            "frame_index": [f for _, f in frames]}))
            return {(int(v), int(f)) for v, f in con.execute(
                "SELECT a.video_id, a.frame_index FROM asked a SEMI JOIN frames f ON "
                "f.video_id = a.video_id AND f.frame_index = a.frame_index").fetchall()}

    def _add(self, item: Batch | Finish) -> None:
        if item.video_id in self.from_earlier:
            # ingested again, from its start: what an earlier run held of it goes
            self.from_earlier.discard(item.video_id)
            self.pending = [i for i in self.pending if i.video_id != item.video_id]
            held.drop_video(self.store.root, item.video_id, Finish)
        self.pending.append(item)

    def _drain(self, final: bool) -> None:
        have = sum(len(b.frames) for b in self.pending if isinstance(b, Batch))
        if self.codec is None and have:
            if have < self.train_size and not final:
                return
            if have < self.need:
                self._hold(have)
                return
            sample = np.concatenate([b.vectors for b in self.pending if isinstance(b, Batch)])
            with self.stages.time("train_codec", len(sample)):
                self.codec = self.store.codec(sample)
        while self.pending:
            head = self.pending[0]
            if isinstance(head, Finish):
                self.pending.pop(0)
                vs.set_status(self.store, head.video_id, head.status, head.message)
                continue
            batch = self._take_merged()
            with self.stages.time("write", len(batch.frames)):
                if self.predictors is not None:
                    decoded = roundtrip(self.codec, batch.vectors)
                    batch.predictions = self.predictors.predict(decoded)
                self.store.commit_batch(batch, self.codec)
            self.commits += 1
            if self.commits % COMPACT_EVERY == 0:  # a live stream would pile up segments
                with self.stages.time("compact", 0):
                    self.store.maybe_compact()
        if held.exists(self.store.root):  # everything held is committed now
            held.clear(self.store.root)

    def _hold(self, have: int) -> None:
        """Too few frames to train the codec: keep them in the store for the next ingest."""
        videos = {b.video_id for b in self.pending if isinstance(b, Batch)}
        why = (f"held for the codec: '{self.store.meta()['codec']}' needs {self.need} frames "
               f"to train and this store holds {have} so far; the next ingest into it adds "
               "its frames to these (or choose a codec that needs less: SQ8 needs 2, Flat "
               "none)")
        for item in [i for i in self.pending if isinstance(i, Finish)]:
            if item.video_id not in videos:  # nothing of it waits: its status stands now
                vs.set_status(self.store, item.video_id, item.status, item.message)
        kept = [i for i in self.pending if i.video_id in videos]
        held.save(self.store.root, kept, self.store.meta()["embedder_id"])
        for video_id in sorted(videos):
            vs.set_status(self.store, video_id, "held", why)
            self.held[video_id] = why
        self.pending = []

    def _take_merged(self) -> Batch:
        """The first pending batch, merged with those queued behind it for the same video:
        when the writer falls behind, one transaction and one segment serve several."""
        first = self.pending.pop(0)
        assert isinstance(first, Batch)
        same: list[Batch] = []
        while (self.pending and isinstance(self.pending[0], Batch)
               and self.pending[0].video_id == first.video_id and len(same) < 7):
            same.append(self.pending.pop(0))  # type: ignore[arg-type]
        if not same:
            return first
        group = [first, *same]
        return Batch(first.video_id, [f for b in group for f in b.frames],
                     np.concatenate([b.vectors for b in group]))

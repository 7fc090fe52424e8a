"""The ingest writer: a thread that commits batches in order, one transaction each.

A codec that needs training holds every batch, and each video's final status behind them,
until enough vectors came in, over as many inputs as it takes; the final flush trains it on
what there is, or says how many frames it needed (`TooFewVectorsError`).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from lensdb import video_status as vs
from lensdb.errors import StoreError
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


class TooFewVectorsError(StoreError):
    """The codec cannot be trained: the whole ingest kept fewer frames than it needs."""


class Writer:
    """Commits batches from a queue in a thread. A codec that needs training holds every
    batch (and each video's final status behind them) until enough vectors came in, over
    as many inputs as it takes; the final flush trains it on what there is."""

    def __init__(self, store: Store, stages: StageTimes, train_size: int, need: int,
                 predictors):
        self.store = store
        self.stages = stages
        self.need = need  # the fewest vectors the codec trains on
        self.train_size = max(train_size, need)  # an IVF codec may need more than asked
        self.predictors = predictors
        self.codec = store.codec() if store.vectors.has_codec() else None
        self.pending: list[Batch | Finish] = []  # held back until the codec is trained
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="lensdb-writer", daemon=True)
        self._thread.start()

    def put(self, item: Batch | Finish) -> None:
        if self.error:
            raise self.error
        self.q.put(item)

    def held(self) -> list[int]:
        """Videos with frames held back for the codec (after a flush: nothing committed)."""
        return sorted({b.video_id for b in self.pending if isinstance(b, Batch)})

    def flush(self, final: bool = False) -> None:
        """Commit everything queued; `final`: train the codec on what is held if need be
        (TooFewVectorsError when that is too little), else it keeps holding."""
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
                        self.pending.append(item)
                    self._drain(final=bool(flush and flush[1]))
            except BaseException as exc:  # surfaced to the caller on its next put/flush
                self.error = exc
            finally:
                if flush is not None:
                    flush[0].set()

    def _drain(self, final: bool) -> None:
        have = sum(len(b.frames) for b in self.pending if isinstance(b, Batch))
        if self.codec is None and have:
            if have < self.train_size and not final:
                return
            if have < self.need:
                raise TooFewVectorsError(
                    f"codec '{self.store.meta()['codec']}' needs at least {self.need} frames "
                    f"to train and this ingest kept {have}; nothing was stored. Ingest more "
                    "frames in one run (all inputs count together), sample more densely, or "
                    "choose a codec that needs less training (SQ8 needs 2, Flat none)"
                )
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

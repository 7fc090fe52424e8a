"""Cutting videos into chunks, and putting the chunks' batches back in order.

A chunk is a range of decoded frame indices of one video. Its worker starts decoding at
the last keyframe before the chunk (`lensdb.keyframes`; from the start of the video when
the file's packets cannot say where that is), and frames before the chunk are decoded but
not converted or run through a model, so frame indices, timestamps and the sampling are
exactly those of a plain ingest. The driver commits each video's frames in index order
(`Reorder`) and drops any frame index it has already passed to the writer: a chunk a
killed worker left half done is redone, and its frames are committed once. Committed
frames stay a prefix of the video, so either engine resumes an interrupted ingest after its
last committed index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from lensdb.keyframes import SeekPoint, keyframe_index
from lensdb.storage.store import FrameRow


@dataclass(frozen=True)
class Chunk:
    """One unit of work: frames start..end-1 of one video (end None: to the end)."""

    video_id: int
    number: int  # position of the chunk in its video, from 0
    source: str  # path every Ray node can read
    start: int  # first decoded frame index of the chunk (resume: after the last committed)
    end: int | None  # first index past the chunk; None for the last chunk
    kept_before: int  # frames kept (sampled) before `start`: labels every K-th kept frame
    after_pts: float  # the last committed frame's timestamp (fps sampling resumes after it)
    sampling: dict  # the video's recorded sampling (stride, fps, detect_every, ...)
    batch_size: int
    queue_size: int
    seek: SeekPoint | None = None  # the keyframe to start decoding at (None: the start)


@dataclass
class ChunkBatch:
    """A batch of frames a worker embedded (and labelled where due)."""

    video_id: int
    number: int
    rows: list[FrameRow]
    vectors: object  # (n, dim) float32 numpy array
    stages: dict[str, tuple[float, int]]  # stage -> (seconds, items) for this batch


@dataclass
class ChunkDone:
    """A chunk's worker reached its end; how its decoder fared."""

    video_id: int
    number: int
    frames_decoded: int
    last_pts: float
    error: str | None  # a corrupt stream stopped decoding early
    stages: dict[str, tuple[float, int]] = field(default_factory=dict)
    started_at: int = 0  # the frame index decoding started at (a keyframe when it sought)


def plan(video_id: int, source: str, sampling: dict, fps: float, frame_count: int,
         last_index: int, kept: int, last_ts: float, chunk_seconds: float,
         batch_size: int, queue_size: int) -> list[Chunk]:
    """The chunks left of a video, after `last_index` (its last committed frame). Only
    stride sampling without a label budget is cut: time sampling (fps) and scene-change
    placement depend on every earlier frame, so such a video is one chunk."""
    stride = int(sampling.get("stride") or 1)
    cut = not sampling.get("fps") and not sampling.get("detect_budget") and fps > 0
    base: dict[str, Any] = dict(video_id=video_id, source=source, sampling=sampling,
                                batch_size=batch_size, queue_size=queue_size,
                                after_pts=last_ts)
    if not cut or frame_count <= 0:
        return [Chunk(number=0, start=last_index + 1, end=None, kept_before=kept, **base)]
    unit = batch_size * stride  # chunk edges on batch edges: the same batches as local
    length = max(unit, math.ceil(chunk_seconds * fps / unit) * unit)
    edges = list(range(0, frame_count, length))[1:]  # the last chunk runs to the end
    starts = [0, *edges]
    chunks: list[Chunk] = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else None
        if end is not None and end <= last_index + 1:
            continue  # committed already
        first = max(start, last_index + 1)
        chunks.append(Chunk(number=len(chunks), start=first, end=end,
                            kept_before=(first + stride - 1) // stride, **base))
    return chunks


def with_seek_points(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with the keyframe each can start decoding at (one demux of the video,
    only when it was cut into several chunks or resumes past its start)."""
    if not chunks or (len(chunks) == 1 and chunks[0].start == 0):
        return chunks
    index = keyframe_index(chunks[0].source)
    if index is None:
        return chunks
    return [replace(c, seek=index.seek_point(c.start)) for c in chunks]


class Reorder:
    """One video's batches in chunk order, each frame index once: batches of the chunk
    being committed pass straight through, later chunks' wait until it is done."""

    def __init__(self, n_chunks: int):
        self.n_chunks = n_chunks
        self.next = 0  # the chunk being committed
        self.last_index = -1  # the last frame index passed on
        self.waiting: dict[int, list[ChunkBatch]] = {}
        self.done: dict[int, ChunkDone] = {}

    @property
    def finished(self) -> bool:
        return self.next >= self.n_chunks

    def add(self, item: ChunkBatch | ChunkDone) -> list[ChunkBatch]:
        """What can be committed now, in order, without frames passed on before."""
        if isinstance(item, ChunkDone):
            self.done[item.number] = item
            out: list[ChunkBatch] = []
        elif item.number == self.next:
            out = [item]
        else:
            self.waiting.setdefault(item.number, []).append(item)
            out = []
        while self.next in self.done:
            self.next += 1
            out.extend(self.waiting.pop(self.next, []))
        return [b for b in (self._new(b) for b in out) if b is not None]

    def _new(self, batch: ChunkBatch) -> ChunkBatch | None:
        keep = [i for i, r in enumerate(batch.rows) if r.frame_index > self.last_index]
        if not keep:
            return None
        if len(keep) < len(batch.rows):
            batch = ChunkBatch(batch.video_id, batch.number, [batch.rows[i] for i in keep],
                               batch.vectors[keep], batch.stages)  # type: ignore[index]
        self.last_index = batch.rows[-1].frame_index
        return batch

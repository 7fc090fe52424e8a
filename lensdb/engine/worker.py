"""The work of one chunk, where the models are: decode, sample, embed, label.

`ChunkWorker` loads the detector and embedder once and turns chunks into batches with the
same pieces as the local pipeline (`Sampler`/`iter_frames`, `embed_batch`, the label
rule and `scene_placer`). It knows nothing of Ray: `lensdb.engine.ray_engine` wraps it in
an actor, and tests can run it in-process.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Generator, Iterator
from typing import cast

from lensdb.engine.chunks import Chunk, ChunkBatch, ChunkDone
from lensdb.frames import DecodeStatus, Sampler, iter_frames
from lensdb.models.base import embed_batch
from lensdb.storage.store import FrameRow


def run_setup(setup: str | None) -> None:
    """Call `module:function` (e.g. one that registers more models) in this process."""
    if not setup:
        return
    module, _, name = setup.partition(":")
    getattr(importlib.import_module(module), name or "install")()


class ChunkWorker:
    """Holds one detector and one embedder; `run` yields a chunk's batches, then its end."""

    def __init__(self, detector: str, embedder: str, conf: float | None,
                 setup: str | None = None, device: str = "auto", threads: int | None = None):
        from lensdb.device import set_threads
        from lensdb.models.registry import get_detector, get_embedder

        run_setup(setup)
        # None: the threads Ray gives the actor (OMP_NUM_THREADS = its CPUs), not every core
        self.threads = set_threads(threads) if threads else 0
        self.decode_threads = self.threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
        self.embedder = get_embedder(embedder, device=device)
        self.detector = get_detector(detector, conf=conf, device=device)

    def describe(self) -> dict:
        """What the driver records: the models' ids, the vectors' size, the threshold."""
        return {"detector_id": self.detector.model_id,
                "conf": getattr(self.detector, "conf", None),
                "embedder_id": self.embedder.model_id, "dim": self.embedder.dim,
                "threads": self.threads,
                "space_check": getattr(self.embedder, "space_check", None),
                "devices": {"detector": getattr(self.detector, "device", "cpu"),
                            "embedder": getattr(self.embedder, "device", "cpu")}}

    def run(self, chunk: Chunk) -> Iterator[ChunkBatch | ChunkDone]:
        from lensdb.counting.scene_change import scene_placer

        sampling = chunk.sampling
        detect_every = int(sampling["detect_every"])
        placer = scene_placer(sampling)
        sampler = Sampler(sampling["stride"], sampling["fps"], after_pts=chunk.after_pts)
        status = DecodeStatus()
        past_end = threading.Event()  # the decoder stops at the chunk's end, not the video's
        frames = iter_frames(chunk.source, sampler, chunk.video_id, chunk.start - 1,
                             chunk.queue_size, status, past_end, threads=self.decode_threads,
                             seek=chunk.seek)
        kept, batch, waited = chunk.kept_before, [], 0.0
        t = time.perf_counter()
        for frame in frames:
            waited += time.perf_counter() - t
            if chunk.end is not None and frame.index >= chunk.end:
                past_end.set()
                break
            batch.append(frame)
            if len(batch) == chunk.batch_size:
                yield self._batch(chunk, batch, kept, detect_every, placer, waited)
                kept, batch, waited = kept + len(batch), [], 0.0
            t = time.perf_counter()
        cast(Generator, frames).close()  # the chunk may end before the video: stop decoding
        if batch:
            yield self._batch(chunk, batch, kept, detect_every, placer, waited)
        yield ChunkDone(chunk.video_id, chunk.number, status.frames_decoded, status.last_pts,
                        status.error, started_at=status.started_at)

    def _batch(self, chunk: Chunk, frames: list, kept: int, detect_every: int, placer,
               waited: float) -> ChunkBatch:
        images = [f.rgb for f in frames]
        t0 = time.perf_counter()
        embedded = embed_batch(self.detector, self.embedder, images)
        t1 = time.perf_counter()
        to_label = placer.choose(embedded.vectors) if placer else [
            i for i in range(len(frames)) if (kept + i) % detect_every == 0]
        dets = embedded.detect(to_label)
        t2 = time.perf_counter()
        by_pos = dict(zip(to_label, dets))
        rows = [FrameRow(f.index, f.pts_seconds, by_pos.get(i)) for i, f in enumerate(frames)]
        stages = {"decode_wait": (waited, len(frames)), "embed": (t1 - t0, len(frames)),
                  "detect": (t2 - t1, len(dets))}
        return ChunkBatch(chunk.video_id, chunk.number, rows, embedded.vectors, stages)

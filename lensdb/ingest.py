"""The ingest pipeline: reader -> detector/embedder -> writer, each stage timed.

The reader decodes in its own thread; models run on batches in the caller's thread; the
writer commits each batch in one transaction from a third thread, so decoding, inference
and committing overlap. A crashed or interrupted ingest resumes where its last committed
batch ended when the same command runs again.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lensdb.config import IngestConfig
from lensdb.errors import LensDBError, VideoError
from lensdb.frames import DecodeStatus, Sampler, is_url, iter_frames, open_source, probe
from lensdb.storage.codecs import min_training_points
from lensdb.storage.store import Batch, FrameRow, Store
from lensdb.storage.vectors import roundtrip
from lensdb.timing import StageTimes
from lensdb.types import Frame

COMPACT_EVERY = 64  # commits between checks whether the segments need merging
ProgressFn = Callable[[str, dict], None]  # (event, data): "video", "advance", "done"


@dataclass
class VideoReport:
    """What happened to one source."""

    name: str
    video_id: int | None = None
    status: str = "pending"  # complete | partial | skipped | ingesting | failed
    frames: int = 0  # frames committed by this run
    labelled: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # detections per class this run
    seconds: float = 0.0
    message: str | None = None


@dataclass
class IngestReport:
    videos: list[VideoReport]
    stages: StageTimes
    seconds: float

    @property
    def frames(self) -> int:
        return sum(v.frames for v in self.videos)

    def to_dict(self) -> dict:
        return {
            "videos": [v.__dict__ for v in self.videos],
            "frames": self.frames,
            "labelled": sum(v.labelled for v in self.videos),
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames / self.seconds, 2) if self.seconds else 0.0,
            "stages": self.stages.to_dict(),
        }


def expand_sources(paths: Iterable[str]) -> list[str]:
    """Files, globs, URLs and '-' in the order given; a missing path is an error."""
    import glob

    out: list[str] = []
    for p in paths:
        if p == "-" or is_url(p):
            out.append(p)
        elif any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p))
            if not matches:
                raise VideoError(f"no files match {p}")
            out.extend(matches)
        elif Path(p).is_dir():
            raise VideoError(f"{p} is a directory; pass video files or a glob like '{p}/*.mp4'")
        elif not Path(p).exists():
            raise VideoError(f"no such file: {p}")
        else:
            out.append(p)
    return out


def content_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def batched(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Writer:
    """Commits batches from a queue in a thread; trains the codec on the first vectors."""

    def __init__(self, store: Store, stages: StageTimes, train_size: int, predictors):
        self.store = store
        self.stages = stages
        self.train_size = train_size
        self.predictors = predictors
        self.codec = store.codec() if store.vectors.has_codec() else None
        self.pending: list[Batch] = []  # held back until the codec is trained
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="lensdb-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Batch | None) -> None:
        if self.error:
            raise self.error
        self.q.put(batch)

    def flush(self) -> None:
        """Commit everything queued, training the codec on what is pending if needed."""
        done = threading.Event()
        self.q.put(done)
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
            if self.error:
                if isinstance(item, threading.Event):
                    item.set()
                continue
            try:
                if isinstance(item, threading.Event):
                    self._drain(force=True)
                    item.set()
                else:
                    self.pending.append(item)
                    self._drain(force=False)
            except BaseException as exc:  # surfaced to the caller on its next put/flush
                self.error = exc
                if isinstance(item, threading.Event):
                    item.set()

    def _drain(self, force: bool) -> None:
        if self.codec is None:
            have = sum(len(b.frames) for b in self.pending)
            if have < self.train_size and not force:
                return
            if have == 0:
                return
            sample = np.concatenate([b.vectors for b in self.pending])
            with self.stages.time("train_codec", len(sample)):
                self.codec = self.store.codec(sample)
        while self.pending:
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
        same = []
        while self.pending and self.pending[0].video_id == first.video_id and len(same) < 7:
            same.append(self.pending.pop(0))
        if not same:
            return first
        group = [first, *same]
        return Batch(first.video_id, [f for b in group for f in b.frames],
                     np.concatenate([b.vectors for b in group]))


def _load_predictors(store: Store):
    try:
        from lensdb.counting.predict import ActivePredictors
    except ImportError:
        return None
    return ActivePredictors.load(store)


def ingest(
    store: Store,
    sources: list[str],
    config: IngestConfig,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> IngestReport:
    """Ingest every source into the store; see the module docstring."""
    from lensdb.models.registry import get_detector, get_embedder

    config.validate()
    sources = expand_sources(sources)
    progress = progress or (lambda event, data: None)
    stages = StageTimes()
    started = time.perf_counter()
    reports: list[VideoReport] = []
    with store.writer():
        embedder = get_embedder(config.embedder)
        store.bind_space(embedder.model_id, embedder.dim, config.codec, spec=config.embedder)
        detector = get_detector(config.detector, conf=config.conf)
        # Nothing commits before the codec is trained, so train early: enough vectors for
        # the codec to learn from, and no more (Flat and fp16 commit from the first batch).
        need = min_training_points(store.meta()["codec"])
        train_size = 1 if need == 0 else min(config.codec_train_size, max(4 * need, 256))
        writer = _Writer(store, stages, train_size, _load_predictors(store))
        try:
            for source in sources:
                report = VideoReport(name=source)
                reports.append(report)
                try:
                    _ingest_one(store, source, config, detector, embedder, writer, stages,
                                report, progress, stop)
                except VideoError as exc:  # one bad source does not stop the others
                    report.status, report.message = "failed", str(exc)
                    progress("failed", {"name": source, "message": str(exc)})
                if stop is not None and stop.is_set():
                    break
            writer.flush()
        finally:
            writer.close()
            if writer.error is None:
                store.maybe_compact()
    return IngestReport(reports, stages, time.perf_counter() - started)


def _register_video(store: Store, source: str, config: IngestConfig, detector_id: str,
                    report: VideoReport) -> tuple | None:
    """(video id, last index, kept frames, last ts, sampling, info); None: nothing to do."""
    # stdin and live streams can be read once: probe and decode share one container
    container = open_source(source) if (source == "-" or is_url(source)) else None
    info = probe(source, container)
    digest = None if (source == "-" or is_url(source)) else content_hash(source)
    sampling = config.sampling()
    with store.catalog.connect(write=True) as con:
        row = None
        if digest:
            row = con.execute(
                "SELECT video_id, status, sampling FROM videos WHERE content_hash = ?", [digest]
            ).fetchone()
        if row and row[1] in ("complete", "partial"):
            report.video_id, report.status = row[0], "skipped"
            report.message = f"already ingested ({row[1]})"
            if container is not None:
                container.close()
            return None
        if row:
            video_id = row[0]
            sampling = json.loads(row[2])  # resume with the sampling it started with
            last = con.execute(
                "SELECT coalesce(max(frame_index), -1), count(*), coalesce(max(ts), -1) "
                "FROM frames WHERE video_id = ?", [video_id]
            ).fetchone()
        else:
            video_id = con.execute(
                "SELECT coalesce(max(video_id), -1) + 1 FROM videos"
            ).fetchone()[0]
            con.execute(
                "INSERT INTO videos VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 'ingesting', ?, ?, NULL, now())",
                [video_id, info.name, source if source == "-" or is_url(source)
                 else str(Path(source).resolve()), digest, info.fps, info.width, info.height,
                 info.duration, json.dumps(sampling), detector_id],
            )
            last = (-1, 0, -1.0)
    report.video_id = video_id
    return video_id, int(last[0]), int(last[1]), float(last[2]), sampling, info, container


def _ingest_one(store, source, config, detector, embedder, writer, stages, report,
                progress, stop) -> None:
    t0 = time.perf_counter()
    reg = _register_video(store, source, config, detector.model_id, report)
    if reg is None:
        progress("skip", {"name": report.name, "message": report.message})
        return
    video_id, last_index, kept, last_ts, sampling, info, container = reg
    detect_every = int(sampling["detect_every"])
    sampler = Sampler(sampling["stride"], sampling["fps"], after_pts=last_ts)
    status = DecodeStatus()
    total = info.frame_count // (sampling["stride"] or 1) if not sampling["fps"] else int(
        info.duration * sampling["fps"]) if info.duration else 0
    progress("video", {"name": info.name, "total": total or None, "done": kept})
    frames = iter_frames(source, sampler, video_id, last_index, config.queue_size, status, stop,
                         container=container)
    interrupted = False
    try:
        for batch_frames in batched(_timed(frames, stages), config.batch_size):
            ordinals = range(kept, kept + len(batch_frames))
            to_label = [i for i, o in enumerate(ordinals) if o % detect_every == 0]
            images = [f.rgb for f in batch_frames]
            with stages.time("detect", len(to_label)):
                dets = detector.detect([images[i] for i in to_label]) if to_label else []
            with stages.time("embed", len(images)):
                vectors = embedder.embed_images(images)
            by_pos = dict(zip(to_label, dets))
            rows = [FrameRow(f.index, f.pts_seconds, by_pos.get(i))
                    for i, f in enumerate(batch_frames)]
            writer.put(Batch(video_id, rows, vectors))
            kept += len(batch_frames)
            report.frames += len(batch_frames)
            report.labelled += len(dets)
            for d in dets:
                for cls, n in d.counts().items():
                    report.counts[cls] = report.counts.get(cls, 0) + n
            progress("advance", {"n": len(batch_frames)})
            if stop is not None and stop.is_set():
                interrupted = True
                break
        writer.flush()
    except KeyboardInterrupt:
        writer.flush()
        report.status, report.message = "ingesting", "interrupted; run again to resume"
        raise
    finally:
        report.seconds = time.perf_counter() - t0
    if kept == 0:
        _finish(store, video_id, "failed", status.error or "the video has no frames")
        raise VideoError(f"{source}: no frames could be decoded"
                         + (f" ({status.error})" if status.error else ""))
    if interrupted or (stop is not None and stop.is_set()):
        report.status, report.message = "ingesting", "stopped; what was committed stays"
        _finish(store, video_id, "ingesting", report.message)
    elif status.error or _truncated(status, info):
        report.status = "partial"
        report.message = status.error or (
            f"the stream ended at {status.last_pts:.2f}s of the {info.duration:.2f}s its "
            f"header announces (truncated file?); kept what decoded"
        )
        _finish(store, video_id, "partial", report.message)
    else:
        report.status = "complete"
        _finish(store, video_id, "complete", None)
    progress("done", {"name": info.name, "status": report.status})


def _truncated(status: DecodeStatus, info) -> bool:
    if not info.duration or not info.fps:
        return False
    return status.last_pts + 3.0 / info.fps < info.duration * 0.98


def _timed(frames: Iterator[Frame], stages: StageTimes) -> Iterator[Frame]:
    """Time spent waiting on the decoder (its share of the end-to-end time)."""
    while True:
        t = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            return
        stages.add("decode_wait", time.perf_counter() - t, 1)
        yield frame


def _finish(store: Store, video_id: int, status: str, message: str | None) -> None:
    with store.catalog.connect(write=True) as con:
        con.execute("UPDATE videos SET status = ?, message = ? WHERE video_id = ?",
                    [status, message, video_id])


__all__ = ["IngestReport", "VideoReport", "ingest", "expand_sources", "LensDBError"]

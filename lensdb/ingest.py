"""The ingest pipeline: reader -> detector/embedder -> writer, each stage timed.

The reader decodes in its own thread; models run on batches in the caller's thread; the
writer commits each batch in one transaction from a third thread, so decoding, inference
and committing overlap. A crashed or interrupted ingest resumes where its last committed
batch ended when the same command runs again. Which sources and each video's catalog row:
`lensdb.ingest_sources`; the writer and its failure bookkeeping: `lensdb.ingest_writer`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from lensdb import video_status as vs
from lensdb.config import IngestConfig, batch_for
from lensdb.device import set_threads
from lensdb.errors import LensDBError, VideoError
from lensdb.events import FramesDone, OnEvent, VideoFinished, VideoStarted, ignore
from lensdb.frames import DecodeStatus, Sampler, is_url, iter_frames
from lensdb.ingest_sources import content_hash, expand_sources, register_video, store_models
from lensdb.ingest_writer import record_run, writing
from lensdb.models.base import embed_batch
from lensdb.storage.store import Batch, FrameRow, Store
from lensdb.timing import StageTimes
from lensdb.types import Frame
from lensdb.writer import Finish

ProgressFn = OnEvent  # typed progress events (lensdb.events)


@dataclass
class VideoReport:
    """What happened to one source."""

    name: str
    video_id: int | None = None
    status: str = "pending"  # complete | partial | skipped | ingesting | stopped | failed
    frames: int = 0  # frames committed by this run
    labelled: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # detections per class this run
    seconds: float = 0.0
    message: str | None = None
    conf: float | None = None  # the detector's confidence threshold used for this video
    ingested_with: dict | None = None  # a refused resume: the sampling the video has
    # frames the Ray engine's decoders went through for this video, summed over its chunks
    # (each starts at the keyframe before it: about the video's length); None: local engine
    decoded: int | None = None


@dataclass
class IngestReport:
    videos: list[VideoReport]
    stages: StageTimes
    seconds: float
    devices: dict[str, str] = field(default_factory=dict)  # model role -> device it ran on
    threads: int = 0  # torch threads set for the models
    batch_size: int = 0  # frames per batch and transaction (0: no models were loaded)
    models: dict[str, str] = field(default_factory=dict)  # role -> the spec loaded (the
    # store's own when none was named)

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
            "devices": self.devices,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "models": self.models,
        }



def batched(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch



def model_specs(config: IngestConfig) -> dict[str, str]:
    return {"detector": config.detector_spec, "embedder": config.embedder_spec}


def ingest(
    store: Store,
    sources: list[str],
    config: IngestConfig,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    wait: bool | float = False,
) -> IngestReport:
    """Ingest every source into the store; see the module docstring. `wait`: when another
    process is writing, wait for it (True, or at most this many seconds) instead of failing."""
    from lensdb.models.registry import get_detector, get_embedder

    config.validate()
    config = store_models(store, config)
    if config.engine != "local":  # another engine runs the models (lensdb.engine)
        from lensdb.engine import get_engine

        return get_engine(config.engine).ingest(store, sources, config, progress, stop, wait)
    sources = expand_sources(sources)
    progress = progress or ignore
    stages = StageTimes()
    started = time.perf_counter()
    reports: list[VideoReport] = []
    with store.writer(wait=wait):
        vs.recover(store)  # rows a dead ingest left `ingesting` get a status and a message
        threads = set_threads(config.threads)  # on purpose: an import may have set one
        embedder = get_embedder(config.embedder_spec, device=config.device)
        store.bind_space(embedder.model_id, embedder.dim, config.codec, spec=config.embedder_spec)
        check = getattr(embedder, "space_check", None)
        if check:  # +int8: its verdict against fp32, kept
            from lensdb.models.clip_int8 import record_check

            record_check(store, config.embedder_spec, check)
        detector = get_detector(config.detector_spec, conf=config.conf,  # None: its own default
                                device=config.device)
        devices = {"detector": getattr(detector, "device", "cpu"),
                   "embedder": getattr(embedder, "device", "cpu")}
        config = batch_for(config, devices["embedder"])
        seen: set[int] = set()  # videos of this run: the same content twice is done once
        with writing(store, config, stages, reports) as writer:
            for source in sources:
                report = VideoReport(name=source)
                reports.append(report)
                try:
                    _ingest_one(store, source, config, detector, embedder, writer, stages,
                                report, progress, stop, seen)
                except VideoError as exc:  # one bad source does not stop the others
                    report.status, report.message = "failed", str(exc)
                    progress(VideoFinished(source, "failed", str(exc)))
                if stop is not None and stop.is_set():
                    break
        if any(r.status not in ("failed", "skipped") for r in reports):  # else: unchanged
            record_run(store, config, devices, threads)
    return IngestReport(reports, stages, time.perf_counter() - started, devices, threads,
                        config.batch_size, model_specs(config))



def _ingest_one(store, source, config, detector, embedder, writer, stages, report,
                progress, stop, seen: set[int]) -> None:
    t0 = time.perf_counter()
    try:
        reg = register_video(store, source, config, detector, report, seen)
    finally:
        report.seconds = time.perf_counter() - t0
    if reg is None:
        progress(VideoFinished(report.name, "skipped", report.message))
        return
    video_id, last_index, kept, last_ts, sampling, info, container = reg
    live = source == "-" or is_url(source)
    detect_every = int(sampling["detect_every"])
    from lensdb.counting.scene_change import scene_placer

    placer = scene_placer(sampling)  # --detect-budget: labels placed by scene change
    sampler = Sampler(sampling["stride"], sampling["fps"], after_pts=last_ts)
    status = DecodeStatus()
    total = info.frame_count // (sampling["stride"] or 1) if not sampling["fps"] else int(
        info.duration * sampling["fps"]) if info.duration else 0
    progress(VideoStarted(info.name, total or None, kept))
    frames = iter_frames(source, sampler, video_id, last_index, config.queue_size, status, stop,
                         container=container, threads=config.threads or 0)
    interrupted = False
    try:
        for batch_frames in batched(_timed(frames, stages), config.batch_size):
            ordinals = range(kept, kept + len(batch_frames))
            images = [f.rgb for f in batch_frames]
            with stages.time("embed", len(images)):  # one pass when the pair is one network
                embedded = embed_batch(detector, embedder, images)
                vectors = embedded.vectors
            to_label = placer.choose(vectors) if placer else [
                i for i, o in enumerate(ordinals) if o % detect_every == 0]
            with stages.time("detect", len(to_label)):
                dets = embedded.detect(to_label)
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
            progress(FramesDone(len(batch_frames)))
            if stop is not None and stop.is_set():
                interrupted = True
                break
        writer.flush()
    except KeyboardInterrupt:
        report.status = "stopped" if live else "ingesting"
        report.message = vs.stopped_message(kept, status.last_pts, "interrupted") if live \
            else vs.RESUME
        try:  # what the codec holds is committed when it can be trained on it
            writer.put(Finish(video_id, report.status, report.message))
            writer.flush(final=True)
        except Exception:  # noqa: BLE001 - the interrupt is what the user asked for
            pass
        raise
    finally:
        report.seconds = time.perf_counter() - t0
    if kept == 0:
        vs.set_status(store, video_id, "failed", status.error or "the video has no frames")
        raise VideoError(f"{source}: no frames could be decoded"
                         + (f" ({status.error})" if status.error else ""))
    if interrupted or (stop is not None and stop.is_set()):
        if live:
            report.status = "stopped"
            report.message = vs.stopped_message(kept, status.last_pts)
        else:
            report.status, report.message = "ingesting", f"stopped; {vs.RESUME}"
    elif status.error or _truncated(status, info):
        report.status = "partial"
        report.message = status.error or (
            f"the stream ended at {status.last_pts:.2f}s of the {info.duration:.2f}s its "
            f"header announces (truncated file?); kept what decoded"
        )
    else:
        report.status = "complete"
    writer.put(Finish(video_id, report.status, report.message))  # after its last batch
    progress(VideoFinished(info.name, report.status, report.message))


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


__all__ = ["IngestReport", "VideoReport", "ingest", "expand_sources", "content_hash", "LensDBError"]

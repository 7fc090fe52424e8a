"""The ingest pipeline: reader -> detector/embedder -> writer, each stage timed.

The reader decodes in its own thread; models run on batches in the caller's thread; the
writer commits each batch in one transaction from a third thread, so decoding, inference
and committing overlap. A crashed or interrupted ingest resumes where its last committed
batch ended when the same command runs again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lensdb import video_status as vs
from lensdb.config import IngestConfig, batch_for
from lensdb.device import set_threads
from lensdb.errors import LensDBError, VideoError, first_line
from lensdb.events import FramesDone, OnEvent, VideoFinished, VideoStarted, ignore
from lensdb.frames import DecodeStatus, Sampler, is_url, iter_frames, open_source, probe
from lensdb.models.base import embed_batch, file_digest
from lensdb.storage.catalog import one_row
from lensdb.storage.codecs import min_training_points, training_points
from lensdb.storage.store import Batch, FrameRow, Store
from lensdb.timing import StageTimes
from lensdb.types import Frame
from lensdb.videos import rename_all
from lensdb.writer import Finish, TooFewVectorsError, Writer

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
    """A video's identity for resume and re-ingest: the sha256 of its bytes."""
    return file_digest(path, None)


def batched(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _load_predictors(store: Store):
    from lensdb.counting.predict import ActivePredictors  # part of LensDB: no fallback

    return ActivePredictors.load(store)


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
        embedder = get_embedder(config.embedder, device=config.device)
        store.bind_space(embedder.model_id, embedder.dim, config.codec, spec=config.embedder)
        check = getattr(embedder, "space_check", None)
        if check:  # +int8: its verdict against fp32, kept
            from lensdb.models.clip_int8 import record_check

            record_check(store, config.embedder, check)
        detector = get_detector(config.detector, conf=config.conf,  # None: its own default
                                device=config.device)
        devices = {"detector": getattr(detector, "device", "cpu"),
                   "embedder": getattr(embedder, "device", "cpu")}
        config = batch_for(config, devices["embedder"])
        record_run(store, config, devices, threads)
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
    return IngestReport(reports, stages, time.perf_counter() - started, devices, threads,
                        config.batch_size)


def record_run(store: Store, config: IngestConfig, devices: dict, threads: int) -> None:
    """Where the models of this ingest run (`lensdb info` shows the last one)."""
    import json

    from lensdb.storage.catalog import set_meta

    run = {"engine": config.engine, "devices": devices, "threads": threads,
           "batch_size": config.batch_size,
           "workers": config.workers if config.engine == "ray" else None}
    with store.catalog.connect(write=True) as con:
        set_meta(con, "last_ingest", json.dumps(run, sort_keys=True))


@contextmanager
def writing(store: Store, config: IngestConfig, stages: StageTimes,
            reports: list[VideoReport]) -> Iterator[Writer]:
    """The one writer of an ingest (either engine): flushed at the end, failures recorded
    on the videos (disk full named as such), closed and compacted however it ends."""
    # Nothing commits before the codec is trained, so train early: enough vectors for the
    # codec to learn from, and no more (Flat and fp16 commit from the first batch).
    need = min_training_points(store.meta()["codec"])
    train_size = training_points(store.meta()["codec"], config.codec_train_size)
    writer = Writer(store, stages, train_size, need, _load_predictors(store))
    try:
        yield writer
        writer.flush(final=True)
    except TooFewVectorsError as exc:
        _not_stored(store, writer, reports, str(exc))
        raise
    except Exception as exc:  # a write failed: the disk, most likely
        full = vs.disk_full(exc, store.root)
        _record_failure(store, reports, str(full or _first_line(exc)))
        if full is not None:
            raise full from None
        raise
    finally:
        writer.close()
        if writer.error is None:
            store.maybe_compact()


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, 200)}"


def _not_stored(store: Store, writer: Writer, reports: list[VideoReport], why: str) -> None:
    """The codec could not be trained: the videos whose frames it held stored nothing."""
    held = set(writer.held())
    for r in reports:
        if r.video_id in held:
            r.status, r.message, r.frames, r.labelled, r.counts = "failed", why, 0, 0, {}
            vs.set_status(store, r.video_id, "failed", why)


def _record_failure(store: Store, reports: list[VideoReport], why: str) -> None:
    """A write failed mid-ingest: say so on this run's videos the catalog still has as
    `ingesting` (best effort: on a full disk the catalog may refuse too; `recover` then
    gives them a message on the next run)."""
    ids = [r.video_id for r in reports if r.video_id is not None]
    try:
        with store.catalog.connect() as con:
            open_ids = {v for (v,) in con.execute(
                "SELECT video_id FROM videos WHERE status = 'ingesting'").fetchall()}
    except Exception:  # noqa: BLE001 - the original error is the one to report
        open_ids = set(ids)
    for r in reports:
        if r.video_id is None or r.video_id not in open_ids or r.status in ("skipped",
                                                                           "failed"):
            continue
        live = r.name == "-" or is_url(r.name)
        r.status = "stopped" if live else "ingesting"
        r.message = why + (f"; {vs.LIVE_RESUME}" if live else "")
        try:
            vs.set_status(store, r.video_id, r.status, r.message)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass


def _register_video(store: Store, source: str, config: IngestConfig, detector,
                    report: VideoReport, seen: set[int]) -> tuple | None:
    """(video id, last index, kept frames, last ts, sampling, info); None: nothing to do."""
    live = source == "-" or is_url(source)
    # stdin and live streams can be read once: probe and decode share one container
    container = open_source(source) if live else None
    try:
        info = probe(source, container, images=config.images)
    except VideoError:
        if container is not None:
            container.close()
        raise
    digest = None if live else content_hash(source)
    sampling = {**config.sampling(), "conf": detector.conf}  # the threshold actually used
    with store.catalog.connect(write=True) as con:
        row = None
        if digest:
            row = con.execute(
                "SELECT video_id, status, sampling FROM videos WHERE content_hash = ?", [digest]
            ).fetchone()
        if row and (row[1] in ("complete", "partial") or row[0] in seen):
            report.video_id, report.status = row[0], "skipped"
            report.message = f"already ingested ({row[1]})" if row[0] not in seen else \
                "the same video as an earlier input of this ingest"
            return None
        if row:
            video_id = row[0]
            last = one_row(con.execute(
                "SELECT coalesce(max(frame_index), -1), count(*), coalesce(max(ts), -1) "
                "FROM frames WHERE video_id = ?", [video_id]
            ))
            recorded = json.loads(row[2])
            mismatch = vs.sampling_mismatch(recorded, sampling) if last[1] else None
            if mismatch is not None:  # its frames were sampled another way: no mixing
                report.video_id, report.ingested_with = video_id, mismatch
                raise VideoError(
                    f"{info.name} was ingested with {vs.describe_sampling(mismatch)}; resume "
                    "it with the same sampling (or ingest it into another store)")
            sampling = recorded if last[1] else sampling  # nothing stored yet: start afresh
            con.execute("UPDATE videos SET status = 'ingesting', message = NULL, sampling = ? "
                        "WHERE video_id = ?", [json.dumps(sampling), video_id])
        else:
            video_id = one_row(con.execute(
                "SELECT coalesce(max(video_id), -1) + 1 FROM videos"
            ))[0]
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO videos VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 'ingesting', ?, ?, NULL, now())",
                [video_id, info.name, source if live else str(Path(source).resolve()),
                 digest, info.fps, info.width, info.height, info.duration,
                 json.dumps(sampling), detector.model_id],
            )
            rename_all(con)  # names shown stay unique: a/clip.mp4 and b/clip.mp4
            con.execute("COMMIT")
            last = (-1, 0, -1.0)
    report.video_id = video_id
    seen.add(video_id)
    recorded_conf = sampling.get("conf")
    report.conf = float(recorded_conf) if recorded_conf is not None else detector.conf
    return video_id, int(last[0]), int(last[1]), float(last[2]), sampling, info, container


def _ingest_one(store, source, config, detector, embedder, writer, stages, report,
                progress, stop, seen: set[int]) -> None:
    t0 = time.perf_counter()
    try:
        reg = _register_video(store, source, config, detector, report, seen)
    finally:
        report.seconds = time.perf_counter() - t0
    if reg is None:
        progress(VideoFinished(report.name, "skipped", report.message))
        return
    video_id, last_index, kept, last_ts, sampling, info, container = reg
    live = source == "-" or is_url(source)
    detect_every = int(sampling["detect_every"])
    from lensdb.counting.placement import scene_placer

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


__all__ = ["IngestReport", "VideoReport", "ingest", "expand_sources", "LensDBError"]

"""The Ray engine's driver: register videos, hand out chunks, commit what comes back.

The same catalog rules as `lensdb.ingest` (`ingest_sources.register_video`, and
`ingest_writer.writing` with its `Writer` and failure bookkeeping, are reused): one writer,
in this process, one transaction per batch.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

from lensdb import video_status as vs
from lensdb.config import IngestConfig, batch_for
from lensdb.engine.chunks import Chunk, ChunkBatch, ChunkDone, Reorder, plan, with_seek_points
from lensdb.engine.ray_engine import SETUP_ENV, ChunkFailed, Pool, connect
from lensdb.errors import LensDBError, VideoError
from lensdb.events import FramesDone, OnEvent, VideoFinished, VideoStarted, ignore
from lensdb.frames import DecodeStatus, is_url
from lensdb.storage.store import Batch, Store
from lensdb.timing import StageTimes
from lensdb.writer import Finish, Writer

if TYPE_CHECKING:
    from lensdb.frames import SourceInfo
    from lensdb.ingest import VideoReport


@dataclass
class _Video:
    """A registered video of this run and how far its chunks got."""

    report: VideoReport
    info: SourceInfo
    reorder: Reorder
    kept: int  # frames stored, before this run and by it
    done: list[ChunkDone] = field(default_factory=list)
    failed: bool = False


class RayEngine:
    """Models in Ray actors, the writer here (see `lensdb.engine.ray_engine`)."""

    name = "ray"

    def ingest(self, store: Store, sources: list[str], config: IngestConfig,
               progress: OnEvent | None = None, stop: threading.Event | None = None,
               wait: bool | float = False):
        from lensdb import ingest as local
        from lensdb.ingest_sources import expand_sources
        from lensdb.ingest_writer import record_run, writing

        sources = expand_sources(sources)
        live = [s for s in sources if s == "-" or is_url(s)]
        if live:
            raise LensDBError(f"the Ray engine ingests files its workers can read, not "
                              f"{live[0]}; ingest stdin and live streams with --engine local")
        progress = progress or ignore
        stages = StageTimes()
        started = time.perf_counter()
        reports: list = []
        models: dict = {"devices": {}, "threads": 0}
        with store.writer(wait=wait):
            vs.recover(store)
            t0 = time.perf_counter()
            ray, owned = connect(config)
            pool = None
            try:
                pool = Pool(ray, config, os.environ.get(SETUP_ENV))
                models = pool.describe()  # every worker has loaded its models
                config = batch_for(config, models["devices"]["embedder"])
                record_run(store, config, models["devices"], models["threads"])
                stages.add("ray_start", time.perf_counter() - t0, config.workers)
                store.bind_space(models["embedder_id"], models["dim"], config.codec,
                                 spec=config.embedder_spec)
                if models.get("space_check"):  # +int8: the workers' verdict against fp32
                    from lensdb.models.clip_int8 import record_check

                    record_check(store, config.embedder_spec, models["space_check"])
                with writing(store, config, stages, reports) as writer:
                    detector = SimpleNamespace(conf=models["conf"],
                                               model_id=models["detector_id"])
                    self._run(store, sources, config, detector, pool, writer, stages,
                              reports, progress, stop)
            finally:
                if pool is not None:
                    pool.close()
                if owned:
                    ray.shutdown()
        return local.IngestReport(reports, stages, time.perf_counter() - started,
                                  models["devices"], models["threads"], config.batch_size,
                                  local.model_specs(config))

    def _run(self, store, sources, config, detector, pool: Pool, writer: Writer,
             stages: StageTimes, reports: list, progress: OnEvent, stop) -> None:
        from lensdb import ingest as local
        from lensdb.ingest_sources import register_video

        videos: dict[int, _Video] = {}
        chunks: list[Chunk] = []
        seen: set[int] = set()
        for source in sources:
            report = local.VideoReport(name=source)
            reports.append(report)
            t0 = time.perf_counter()
            try:
                reg = register_video(store, source, config, detector, report, seen)
            except VideoError as exc:
                report.status, report.message = "failed", str(exc)
                progress(VideoFinished(source, "failed", str(exc)))
                continue
            finally:
                report.seconds = time.perf_counter() - t0
            if reg is None:
                progress(VideoFinished(report.name, "skipped", report.message))
                continue
            video_id, last_index, kept, last_ts, sampling, info, _ = reg
            mine = with_seek_points(plan(
                video_id, os.path.abspath(source), sampling, info.fps, info.frame_count,
                last_index, kept, last_ts, config.chunk_seconds, config.batch_size,
                config.queue_size))
            videos[video_id] = _Video(report, info, Reorder(len(mine)), kept)
            videos[video_id].reorder.last_index = last_index
            chunks.extend(mine)
            stride = sampling["stride"] or 1
            total = info.frame_count // stride if not sampling["fps"] else int(
                info.duration * sampling["fps"]) if info.duration else 0
            progress(VideoStarted(info.name, total or None, kept))
        pool.start(chunks)
        open_ = set(videos)
        t_run = time.perf_counter()
        try:
            while open_:
                if stop is not None and stop.is_set():
                    for vid in open_:
                        v = videos[vid]
                        v.report.status, v.report.message = "ingesting", f"stopped; {vs.RESUME}"
                        writer.put(Finish(vid, "ingesting", v.report.message))
                    return
                try:
                    item = pool.results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                v = videos[item.video_id]
                if v.failed:
                    continue
                if isinstance(item, ChunkFailed):
                    v.failed, v.report.status, v.report.message = True, "failed", item.message
                    writer.put(Finish(item.video_id, "failed", item.message))
                    progress(VideoFinished(v.report.name, "failed", item.message))
                    open_.discard(item.video_id)
                    continue
                if isinstance(item, ChunkDone):
                    v.done.append(item)
                for batch in v.reorder.add(item):
                    self._commit(batch, v, writer, stages, progress)
                if v.reorder.finished:
                    self._finish(store, item.video_id, v, writer, progress)
                    open_.discard(item.video_id)
        except KeyboardInterrupt:
            for vid in open_:
                videos[vid].report.status, videos[vid].report.message = "ingesting", vs.RESUME
                try:
                    writer.put(Finish(vid, "ingesting", vs.RESUME))
                except Exception:  # noqa: BLE001 - the interrupt is what the user asked for
                    pass
            raise
        finally:
            for v in videos.values():
                v.report.seconds += time.perf_counter() - t_run

    @staticmethod
    def _commit(batch: ChunkBatch, v: _Video, writer: Writer, stages: StageTimes,
                progress: OnEvent) -> None:
        for stage, (seconds, items) in batch.stages.items():
            stages.add(stage, seconds, items)
        writer.put(Batch(batch.video_id, batch.rows, batch.vectors))  # type: ignore[arg-type]
        v.kept += len(batch.rows)
        report = v.report
        report.frames += len(batch.rows)
        for row in batch.rows:
            if row.detections is not None:
                report.labelled += 1
                for cls, n in row.detections.counts().items():
                    report.counts[cls] = report.counts.get(cls, 0) + n
        progress(FramesDone(len(batch.rows)))

    @staticmethod
    def _finish(store: Store, video_id: int, v: _Video, writer: Writer,
                progress: OnEvent) -> None:
        """The video's final status, as the local pipeline gives it, after its batches."""
        from lensdb import ingest as local

        report, info = v.report, v.info
        report.decoded = sum(max(0, d.frames_decoded - d.started_at) for d in v.done)
        last = max(v.done, key=lambda d: d.number)
        error = next((d.error for d in sorted(v.done, key=lambda d: d.number) if d.error),
                     None)
        if v.kept == 0:
            report.status = "failed"
            report.message = f"{report.name}: no frames could be decoded" + (
                f" ({error})" if error else "")
            writer.put(Finish(video_id, "failed", error or "the video has no frames"))
        elif error or local._truncated(DecodeStatus(last.frames_decoded, last.last_pts), info):
            report.status = "partial"
            report.message = error or (
                f"the stream ended at {last.last_pts:.2f}s of the {info.duration:.2f}s its "
                f"header announces (truncated file?); kept what decoded")
            writer.put(Finish(video_id, report.status, report.message))
        else:
            report.status = "complete"
            writer.put(Finish(video_id, "complete", None))
        progress(VideoFinished(info.name, report.status, report.message))

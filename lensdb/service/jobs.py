"""Ingest jobs for the server: a FIFO queue worked by one thread, so one writer at a time.

Each job runs `LensDB.ingest` in a child process (spawn). DuckDB lets a file be open for
writing or for reading within one process, never both at once, so keeping the writer out
of the server process is what lets queries answer from committed data while a job runs;
it also keeps a stuck or crashing decoder away from the server. The child reports
progress events through a queue. Stopping sets the child's stop event (the ingest ends
after its current batch, what was committed stays); a child that has not ended after
`stop_grace` seconds (a stalled live source) is terminated, which the store survives by
design (every batch is all-or-nothing).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensdb.events import FramesDone, VideoFinished, VideoStarted

FINAL = ("done", "stopped", "failed")


@dataclass
class Job:
    """One ingest request and what became of it."""

    id: str
    sources: list[str]
    options: dict[str, Any]
    state: str = "queued"  # queued | running | stopping | done | stopped | failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    frames: int = 0  # frames committed or in flight by this job
    videos: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    report: dict[str, Any] | None = None
    decoding_since: float | None = None  # first frame of the first video
    stop_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    def frames_per_second(self) -> float:
        if self.decoding_since is None or not self.frames:
            return 0.0
        end = self.finished or time.time()
        return round(self.frames / max(end - self.decoding_since, 1e-6), 2)

    def to_dict(self) -> dict[str, Any]:
        end = self.finished or time.time()
        return {
            "id": self.id, "state": self.state, "sources": self.sources,
            "options": self.options, "created": self.created, "started": self.started,
            "finished": self.finished,
            "seconds": round(end - self.started, 3) if self.started else 0.0,
            "frames": self.frames, "frames_per_second": self.frames_per_second(),
            "videos": self.videos, "error": self.error, "report": self.report,
        }


def _child(store: str, sources: list[str], options: dict, events, stop_flag) -> None:
    """The child process: ingest, sending ("progress", event, data), then a final
    ("result", report) or ("error", message)."""
    local_stop = threading.Event()
    parent = os.getppid()

    def watch() -> None:  # stop when asked, or when the server died (a live source would
        while not stop_flag.wait(1.0):  # otherwise keep an orphan ingesting forever)
            if os.getppid() != parent:
                break
        local_stop.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        from lensdb.config import IngestConfig
        from lensdb.db import LensDB

        db = LensDB.open(store, create=True)
        report = db.ingest(sources, IngestConfig(**options),
                           progress=lambda event: events.put(("progress", event)),
                           stop=local_stop)
        events.put(("result", report.to_dict()))
    except KeyboardInterrupt:
        events.put(("error", "interrupted"))
    except Exception as exc:  # noqa: BLE001 - everything is reported as one line
        from lensdb.errors import LensDBError, first_line

        text = first_line(exc, limit=500)
        events.put(("error", text if isinstance(exc, LensDBError)
                    else f"{type(exc).__name__}: {text}"))
    finally:
        events.close()
        events.join_thread()


class JobQueue:
    """Queued ingest jobs over one store; `start()` the worker, `close()` at shutdown."""

    def __init__(self, store_path: str | Path, stop_grace: float = 10.0, keep: int = 1000):
        self.store_path = str(store_path)
        self.stop_grace = stop_grace
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._work, name="lensdb-jobs", daemon=True)
        self._ctx = mp.get_context("spawn")

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def submit(self, sources: list[str], options: dict[str, Any]) -> Job:
        job = Job(uuid.uuid4().hex[:12], list(sources), dict(options))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:  # forget the oldest finished jobs
                old = next((j for j in self._jobs.values() if j.state in FINAL), None)
                if old is None:
                    break
                del self._jobs[old.id]
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def stop(self, job_id: str) -> Job | None:
        """Stop a job: a queued one never starts, a running one ends after its batch."""
        job = self.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.state == "queued":
                job.state, job.finished = "stopped", time.time()
            elif job.state == "running":
                job.state = "stopping"
            job.stop_requested.set()
        return job

    def close(self, timeout: float | None = None) -> None:
        """Stop every job and the worker (server shutdown)."""
        self._closed.set()
        for job in self.list():
            if job.state not in FINAL:
                self.stop(job.id)
        if self._thread.is_alive():
            self._thread.join(timeout if timeout is not None else self.stop_grace + 10)

    def _work(self) -> None:
        while not self._closed.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            job = self.get(job_id)
            if job is None or job.state != "queued" or job.stop_requested.is_set():
                continue
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one job
                job.state, job.error, job.finished = "failed", f"{exc}", time.time()

    def _run(self, job: Job) -> None:
        events = self._ctx.Queue()
        stop_flag = self._ctx.Event()
        proc = self._ctx.Process(
            target=_child, args=(self.store_path, job.sources, job.options, events, stop_flag),
            name=f"lensdb-ingest-{job.id}", daemon=True,
        )
        with self._lock:
            if job.stop_requested.is_set():
                return
            job.state, job.started = "running", time.time()
        proc.start()
        stop_sent: float | None = None
        while True:
            if job.stop_requested.is_set() and stop_sent is None:
                stop_flag.set()
                stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > self.stop_grace:
                _terminate(proc)
            try:
                self._apply(job, events.get(timeout=0.2))
                continue
            except queue.Empty:
                pass
            if not proc.is_alive():
                break
        try:  # what the child sent just before it ended
            while True:
                self._apply(job, events.get(timeout=0.2))
        except queue.Empty:
            pass
        proc.join(5)
        self._finish(job, proc.exitcode)

    def _apply(self, job: Job, msg: tuple) -> None:
        kind = msg[0]
        if kind == "progress":
            event = msg[1]
            if isinstance(event, VideoStarted):
                job.decoding_since = job.decoding_since or time.time()
                job.videos.append({"name": event.name, "total": event.total,
                                   "done": event.done, "status": "ingesting"})
            elif isinstance(event, FramesDone):
                job.frames += event.n
                if job.videos:
                    job.videos[-1]["done"] += event.n
            elif isinstance(event, VideoFinished):
                started = bool(job.videos) and job.videos[-1]["name"] == event.name and \
                    job.videos[-1]["status"] == "ingesting"
                if not started:
                    job.videos.append({"name": event.name, "total": None, "done": 0})
                job.videos[-1].update(status=event.status, message=event.message)
        elif kind == "result":
            job.report = msg[1]
        elif kind == "error":
            job.error = msg[1]

    def _finish(self, job: Job, exitcode: int | None) -> None:
        with self._lock:
            job.finished = time.time()
            if job.report is not None:
                job.frames = int(job.report.get("frames", job.frames))
            if job.stop_requested.is_set():
                job.state = "stopped"
            elif job.error is not None or job.report is None:
                job.state = "failed"
                job.error = job.error or f"the ingest process ended with code {exitcode}"
            elif all(v.get("status") == "failed" for v in job.report.get("videos", [])):
                job.state = "failed"
                job.error = "; ".join(str(v.get("message")) for v in job.report["videos"])
            else:
                job.state = "done"


def _terminate(proc) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)

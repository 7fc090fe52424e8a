"""The Ray engine: chunks of videos decoded, embedded and labelled by Ray actors.

Each of `workers` actors loads the detector and embedder once (`ChunkWorker`) and streams
a chunk's batches back as they are ready (a streaming generator method; through Ray Client,
`ray://HOST:PORT`, which has none, a chunk comes back in one reply). The driver, this
process, is the one writer: it puts the batches back in frame order per video (`Reorder`),
drops frame indices it passed on before, and commits them through the same `Writer` and
`store.commit_batch` as the local pipeline. A worker that dies (node lost, `ray.kill`) is
replaced and its chunk redone; what the dead one streamed before is not committed twice.

Not the Ray Data `map_batches` idiom: the outputs are ragged (detections per frame) and
must come back in order per video, and a chunk is already one actor call; an actor pool
fed by a queue keeps that explicit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from lensdb.config import IngestConfig
from lensdb.engine.chunks import Chunk
from lensdb.errors import LensDBError, first_line

SETUP_ENV = "LENSDB_RAY_SETUP"  # module:function each worker calls first (plugins, tests)
PROBE_SECONDS = 3.0  # how long a cluster address may take to answer a TCP connect
START_SECONDS = 120.0  # how long the workers may take to be placed and load their models
MAX_RETRIES = 3  # times a chunk is redone after its worker died
BACKLOG = 4  # batches a worker may have ready ahead of the writer (Ray's backpressure)


@dataclass
class ChunkFailed:
    """A chunk's worker raised (the video cannot be decoded, ...): its video fails."""

    video_id: int
    message: str


def connect(config: IngestConfig):
    """Ray, initialised: a local Ray (address None) or the cluster at `config.address`.
    Returns (ray, whether this call started the connection)."""
    try:
        import ray
    except ImportError:
        raise LensDBError("the Ray engine needs Ray: pip install 'lensdb[ray]'") from None
    if ray.is_initialized():
        return ray, False
    address = config.address
    env = {k: os.environ[k] for k in ("PYTHONPATH", SETUP_ENV) if os.environ.get(k)}
    kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING,
                  runtime_env={"env_vars": env} if env else None)
    try:
        if address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray: no token
            ray.init(address="local", num_cpus=config.workers, include_dashboard=False,
                     **kwargs)
        else:
            if address != "auto":
                probe(address)
            _join(ray, address, kwargs)
    except LensDBError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError, ... from ray.init
        where = "a local Ray" if address is None else f"the Ray cluster at {address}"
        # Ray Client puts the server's whole traceback in the message: its reason is last
        reason = first_line(exc, last=isinstance(exc, ConnectionAbortedError))
        raise LensDBError(f"cannot start or join {where}: {reason}") from None
    return ray, True


def _join(ray, address: str, kwargs: dict[str, Any]) -> None:
    """ray.init on a cluster; through Ray Client (ray://) twice at most: the head's proxy
    sometimes loses the per-driver server it forks (ray-project/ray#63202, a gRPC race),
    which a second connection does not meet again."""
    for attempt in range(2 if address.startswith("ray://") else 1):
        try:
            ray.init(address=address, **kwargs)
            return
        except ConnectionAbortedError:
            if attempt:
                raise
            with contextlib.suppress(Exception):
                ray.shutdown()
            time.sleep(1.0)


def probe(address: str, timeout: float = PROBE_SECONDS) -> None:
    """A clear error within `timeout` seconds when nothing listens at HOST:PORT."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise LensDBError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, not "
                          f"'{address}'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise LensDBError(f"no Ray cluster answers at {address} ({first_line(exc)}); start "
                          "one with `ray start --head` or check the address") from None


class Pool:
    """`workers` actors, one driver thread each, taking chunks from one queue and putting
    their batches on `results`. A dead actor is replaced and its chunk queued again."""

    def __init__(self, ray, config: IngestConfig, setup: str | None):
        self.ray, self.config, self.setup = ray, config, setup
        self.remote = ray.remote(_Actor)
        self.run_id = uuid.uuid4().hex[:8]
        self.tasks: queue.Queue = queue.Queue()
        # bounded: a writer that falls behind stops the threads, which stop the actors
        self.results: queue.Queue = queue.Queue(maxsize=BACKLOG * config.workers)
        self.retries: dict[tuple[int, int], int] = {}
        self.closing = threading.Event()
        self.client = (config.address or "").startswith("ray://")
        self.actors = [self._new_actor(i) for i in range(config.workers)]
        self.threads: list[threading.Thread] = []

    def _new_actor(self, slot: int):
        c = self.config
        name = f"lensdb-ingest-{self.run_id}-{slot}-{uuid.uuid4().hex[:4]}"
        return self.remote.options(name=name, num_cpus=1, num_gpus=c.gpus_per_worker,
                                   max_restarts=0).remote(c.detector_spec, c.embedder_spec, c.conf,
                                                          self.setup, c.device, c.threads)

    def describe(self) -> dict:
        """The models' ids and the vectors' size, once every worker has loaded them."""
        c = self.config
        try:
            infos = self.ray.get([a.describe.remote() for a in self.actors],
                                 timeout=START_SECONDS)
        except self.ray.exceptions.GetTimeoutError:
            raise LensDBError(
                f"the Ray cluster did not place {c.workers} workers of 1 CPU and "
                f"{c.gpus_per_worker:g} GPUs each within {START_SECONDS:.0f}s; ask for fewer "
                "--workers or --gpus-per-worker, or add nodes") from None
        for info in infos:
            if "error" in info:
                raise LensDBError(info["error"])
        return infos[0]

    def start(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            self.tasks.put(chunk)
        for slot in range(len(self.actors)):
            t = threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                 name=f"lensdb-ray-{slot}")
            t.start()
            self.threads.append(t)

    def _serve(self, slot: int) -> None:
        ray = self.ray
        while not self.closing.is_set():
            try:
                chunk = self.tasks.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if self.client:  # Ray Client has no streaming methods: a chunk in one reply
                    for item in ray.get(self.actors[slot].run_all.remote(chunk)):
                        self._put(item)
                else:
                    stream = self.actors[slot].run.options(
                        num_returns="streaming", _generator_backpressure_num_objects=BACKLOG,
                    ).remote(chunk)
                    for ref in stream:
                        self._put(ray.get(ref))
            except ray.exceptions.RayActorError as exc:  # died: a new one redoes the chunk
                if self.closing.is_set():
                    return
                key = (chunk.video_id, chunk.number)
                self.retries[key] = self.retries.get(key, 0) + 1
                if self.retries[key] > MAX_RETRIES:
                    self._put(LensDBError(
                        f"a Ray worker died {MAX_RETRIES + 1} times on chunk {chunk.number} "
                        f"of {chunk.source}: {first_line(exc)}"))
                    return
                self.actors[slot] = self._new_actor(slot)
                self.tasks.put(chunk)
            except Exception as exc:  # noqa: BLE001 - raised inside the chunk's work
                cause = getattr(exc, "cause", None) or exc
                self._put(ChunkFailed(chunk.video_id, first_line(cause)))

    def _put(self, item) -> None:
        while not self.closing.is_set():
            try:
                self.results.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.closing.set()
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - gone already
                pass
        for t in self.threads:
            t.join(timeout=10)


class _Actor:
    """The Ray actor around a ChunkWorker; a model that fails to load is reported by
    `describe` as a one-line error instead of a dead actor."""

    def __init__(self, detector: str, embedder: str, conf: float | None, setup: str | None,
                 device: str, threads: int | None):
        from lensdb.engine.worker import ChunkWorker

        self.worker, self.error = None, None
        try:
            self.worker = ChunkWorker(detector, embedder, conf, setup, device, threads)
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            self.error = first_line(exc)

    def describe(self) -> dict:
        return {"error": self.error} if self.worker is None else self.worker.describe()

    def run(self, chunk: Chunk):
        assert self.worker is not None
        yield from self.worker.run(chunk)

    def run_all(self, chunk: Chunk) -> list:
        """The chunk's batches in one reply (Ray Client: a chunk's frames in memory)."""
        return list(self.run(chunk))

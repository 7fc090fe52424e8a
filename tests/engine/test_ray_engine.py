"""`--engine ray` on a local Ray: the same store as a plain ingest, worker deaths included."""

from __future__ import annotations

import threading

import pytest
from ray_helpers import assert_same, snapshot

import lensdb
from lensdb.config import IngestConfig
from lensdb.events import FramesDone

pytestmark = pytest.mark.slow

OPTS = dict(detector="fake-detector", embedder="fake-embedder", stride=2, detect_every=3,
            batch_size=4)


def _ingest(path, videos, **over):
    db = lensdb.open(path, create=True)
    report = db.ingest([str(v) for v in videos], IngestConfig(**{**OPTS, **over}))
    return db, report


def test_ray_equals_a_plain_ingest_frame_for_frame(tmp_path, make_video, local_ray):
    long = make_video("long.mkv", n_frames=90, fps=10)  # 1 s chunks: 6 of them
    timed = make_video("timed.mkv", n_frames=40, fps=10)
    plain, _ = _ingest(tmp_path / "plain", [long])
    ray_db, report = _ingest(tmp_path / "ray", [long], engine="ray", chunk_seconds=1.0,
                             queue_size=4)
    assert report.frames == 45 and report.videos[0].status == "complete"
    assert_same(snapshot(plain.store), snapshot(ray_db.store))
    # each chunk started at the keyframe before it (mpeg4: one every 12 frames), not at 0:
    # from the start, the chunks' decoders would go through 15 + 30 + ... + 90 = 315 frames
    # (plus each one's read-ahead of a few frames past its end)
    assert report.videos[0].decoded is not None and report.videos[0].decoded < 250
    # time sampling (one chunk), on top of the same stores
    _ingest(tmp_path / "plain", [timed], stride=1, fps=3.0)
    _, again = _ingest(tmp_path / "ray", [long, timed], engine="ray", stride=1, fps=3.0)
    assert [v.status for v in again.videos] == ["skipped", "complete"]
    assert_same(snapshot(plain.store), snapshot(ray_db.store))


def test_killing_a_worker_mid_run_loses_and_duplicates_nothing(tmp_path, make_video,
                                                               local_ray, monkeypatch):
    from lensdb.engine import driver

    pools: list = []

    class Recorded(driver.Pool):
        def __init__(self, *args):
            super().__init__(*args)
            pools.append(self)

    monkeypatch.setattr(driver, "Pool", Recorded)
    video = make_video("v.mkv", n_frames=160, fps=10)
    opts = dict(embedder="slow-embedder", chunk_seconds=1.6)  # 16-frame chunks, 50 ms batches
    plain, _ = _ingest(tmp_path / "plain", [video], **opts)
    killed: list[str] = []
    lock = threading.Lock()

    def kill_one(event):
        if not isinstance(event, FramesDone):
            return
        with lock:
            if killed:
                return
            names = sorted(n["name"] for n in local_ray.util.list_named_actors(True)
                           if n["name"].startswith("lensdb-ingest-"))
            local_ray.kill(local_ray.get_actor(names[0]))
            killed.append(names[0])

    db = lensdb.open(tmp_path / "ray", create=True)
    report = db.ingest([str(video)], IngestConfig(**{**OPTS, **opts, "engine": "ray"}),
                       progress=kill_one)
    assert killed and sum(pools[0].retries.values()) == 1  # its chunk was redone
    assert report.videos[0].status == "complete"
    assert report.frames == 80
    assert_same(snapshot(plain.store), snapshot(db.store))


def test_a_stopped_ray_ingest_resumes_with_either_engine(tmp_path, make_video, local_ray):
    video = make_video("v.mkv", n_frames=160, fps=10)
    # Flat: an SQ8 trained on the first run's few vectors would quantise differently
    opts = dict(embedder="slow-embedder", chunk_seconds=1.6, codec="Flat")
    plain, _ = _ingest(tmp_path / "plain", [video], **opts)
    for second in ("ray", "local"):
        stop, seen = threading.Event(), []

        def stop_soon(event, stop=stop, seen=seen):
            if isinstance(event, FramesDone):
                seen.append(event.n)
                if len(seen) == 3:
                    stop.set()

        db = lensdb.open(tmp_path / second, create=True)
        first = db.ingest([str(video)], IngestConfig(**{**OPTS, **opts, "engine": "ray"}),
                          progress=stop_soon, stop=stop)
        assert first.videos[0].status == "ingesting" and 0 < first.frames < 80
        again = db.ingest([str(video)], IngestConfig(**{**OPTS, **opts, "engine": second}))
        assert again.videos[0].status == "complete"
        assert first.frames + again.frames == 80  # committed frames are a prefix
        assert_same(snapshot(plain.store), snapshot(db.store))

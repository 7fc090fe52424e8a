"""kill -9 mid-ingest, resume, and readers in other processes while an ingest runs."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

import lensdb
from lensdb.storage.catalog import Catalog

pytestmark = pytest.mark.slow

LENSDB = [sys.executable, "-m", "lensdb.cli.app"]


def _ingest_cmd(video, store, batch=4):
    return [*LENSDB, "ingest", str(video), "--store", str(store), "--detector",
            "ssd-mobilenet-v2", "--embedder", "mobilenet-v2", "--detect-every", "2",
            "--batch-size", str(batch), "--json"]


def _committed_frames(store) -> int:
    path = store / "catalog.duckdb"
    if not path.exists():
        return 0
    try:
        with Catalog(path, lock_timeout=5).connect() as con:
            return con.execute("SELECT count(*) FROM frames").fetchone()[0]
    except Exception:
        return 0  # schema not created yet


def _wait_for_frames(store, at_least: int, proc, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _committed_frames(store)
        if n >= at_least:
            return n
        assert proc.poll() is None, "the ingest ended before it could be killed"
        time.sleep(0.05)
    raise AssertionError("no frames committed in time")


def test_kill_9_mid_ingest_then_resume_counts_exactly(tmp_path, make_video, offline_pair):
    video = make_video(n_frames=400, fps=25, size=(160, 120))
    store = tmp_path / "store"
    proc = subprocess.Popen(_ingest_cmd(video, store), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for_frames(store, 40, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    db = lensdb.open(str(store))
    info = db.info()
    assert 0 < info["frames"] < 400
    assert info["videos"][0]["status"] == "ingesting"
    ids, _ = db.store.decoded_vectors()
    assert len(ids) == info["frames"] == info["vectors"]  # catalog and index agree

    done = subprocess.run(_ingest_cmd(video, store), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = db.info()
    assert info["frames"] == 400 and info["videos"][0]["status"] == "complete"
    assert info["labelled_frames"] == 200
    with db.store.catalog.connect() as con:
        indices = [r[0] for r in con.execute(
            "SELECT frame_index FROM frames ORDER BY 1").fetchall()]
        labelled = [r[0] for r in con.execute(
            "SELECT frame_index FROM frames WHERE labelled ORDER BY 1").fetchall()]
    assert indices == list(range(400))  # none lost, none duplicated
    assert labelled == list(range(0, 400, 2))
    ids, vecs = db.store.decoded_vectors()
    assert len(ids) == 400 and len(set(ids.tolist())) == 400
    assert not [p for p in (store / "vectors").iterdir() if p.name.endswith(".tmp")]


def test_info_in_another_process_answers_during_an_ingest(tmp_path, make_video, offline_pair):
    n_frames = 1000
    video = make_video(n_frames=n_frames, fps=25, size=(160, 120))
    store = tmp_path / "store"
    # untimed, before the ingest starts: the first call pays this process's imports, which
    # on a loaded machine took most of the ingest's time once
    lensdb.open(str(tmp_path / "warm-up"), create=True).info()
    batch = 4
    proc = subprocess.Popen(_ingest_cmd(video, store, batch=batch), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_frames(store, 8, proc)
        seen, waits = [], []
        began = time.monotonic()
        while proc.poll() is None and len(seen) < 40:
            t0 = time.monotonic()
            seen.append(lensdb.open(str(store)).info()["frames"])  # this test's own process
            waits.append(time.monotonic() - t0)
            time.sleep(0.05)
        window = time.monotonic() - began
        assert seen == sorted(seen) and seen[0] > 0
        during = sum(n < n_frames for n in seen)
        assert during >= 3, seen  # answered while the ingest was running
        # A reader waits for at most one batch's commit, not for the ingest: bounds in the
        # ingest's own pace in this run (seconds a batch), as load on this machine varies
        batch_s = window / max(1.0, (seen[-1] - seen[0]) / batch)
        assert statistics.median(waits) < max(1.0, 3 * batch_s), (waits, batch_s)
        assert max(waits) < max(8.0, window / 3), (waits, window)
        out = subprocess.run([*LENSDB, "info", "--store", str(store), "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["frames"] >= seen[-1]
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
    assert lensdb.open(str(store)).info()["frames"] == n_frames

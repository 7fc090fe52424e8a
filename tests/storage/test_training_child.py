"""A codec trained in a child process (OPQ) dies with its parent: kill -9 during training
leaves no process behind (neither the child nor a multiprocessing resource tracker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TRAIN = textwrap.dedent("""
    import threading
    import numpy as np
    from lensdb.storage.codecs import make_codec, train_codec

    x = np.random.default_rng(0).normal(size=(4096, 1280)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    factory = "OPQ64_256,PQ64np"

    def train():  # the ingest writer thread trains the codec, so train from a thread too
        train_codec(make_codec(factory, 1280), factory, x)

    t = threading.Thread(target=train)
    t.start()
    t.join()
    print("trained", flush=True)
""")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is due


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to list processes")
def test_kill_9_during_opq_training_leaves_no_process_behind():
    _kill_during_training([sys.executable, "-c", TRAIN])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to list processes")
def test_kill_9_during_an_opq_ingest_leaves_no_process_behind(tmp_path, make_video,
                                                              offline_pair):
    video = make_video(n_frames=1100, fps=25, size=(96, 64))
    _kill_during_training([
        sys.executable, "-m", "lensdb.cli.app", "ingest", str(video), "--store",
        str(tmp_path / "store"), "--detector", offline_pair["detector"], "--embedder",
        offline_pair["embedder"], "--codec", "OPQ64_256,PQ64", "--detect-every", "50",
    ], wait=240)


def _kill_during_training(cmd: list[str], wait: float = 60) -> None:
    """Run cmd, kill -9 it once its training child has run a moment, then expect every
    process it started to be gone within a few seconds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    descendants: list[int] = []
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            descendants = kids + [g for k in kids for g in _children(k)]
            # the training child is up once it has had a moment to import FAISS (a child
            # that is gone by the time it is looked at was a short-lived helper process)
            if any(time.monotonic() - _started(k) > 1.0 for k in kids):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "training ended before it could be killed"
        assert descendants, "no training child process was started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_alive(p) for p in descendants):
            time.sleep(0.1)
        left = [p for p in descendants if _alive(p)]
        assert not left, f"processes left behind: {[_cmdline(p) for p in left]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in descendants:  # whatever this test started and is still there
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def _started(pid: int) -> float:
    """When `pid` started, on time.monotonic()'s clock (now when it is gone already)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except OSError:
        return time.monotonic()
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.monotonic() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return str(pid)

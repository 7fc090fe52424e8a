"""The status and message of each video row: no video is left `ingesting` without a word.

Statuses: `ingesting` (a file being ingested, or interrupted: running the same ingest again
resumes it), `complete`, `partial` (truncated or corrupt: what decoded is kept), `stopped`
(a live source, stdin or a URL, that ended early: it cannot be rewound, so it keeps the
frames it holds and running again ingests the stream as a new video), `failed` (nothing
stored; the message says why). The writer calls `recover` under the store's writer lock:
any row still `ingesting` then belongs to a process that died.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from lensdb.errors import LensDBError, StoreError

LIVE_RESUME = ("a live source cannot be rewound: running again ingests it as a new video "
               "and this one keeps what it holds")
RESUME = "interrupted; run the same ingest again to resume"
SAMPLING_KEYS = ("stride", "fps", "detect_every", "detect_budget", "conf")


class StoreFullError(StoreError):
    """The store's disk is full. What was committed stays; resuming finishes the job."""

    exit_code = 4


def is_live_path(path: str | None) -> bool:
    return path == "-" or (path is not None and "://" in path)


def set_status(store, video_id: int, status: str, message: str | None) -> None:
    with store.catalog.connect(write=True) as con:
        con.execute("UPDATE videos SET status = ?, message = ? WHERE video_id = ?",
                    [status, message, video_id])


def stopped_message(frames: int, last_ts: float, why: str = "stopped") -> str:
    return f"{why} at {last_ts:.2f}s with {frames} frames stored; {LIVE_RESUME}"


def recover(store) -> None:
    """Rows left `ingesting` by a process that died: live ones become `stopped` with what
    they hold; files keep `ingesting` (running again resumes them) and get a message."""
    with store.catalog.connect(write=True) as con:
        rows = con.execute(
            "SELECT v.video_id, v.path, v.message, count(f.frame_id), coalesce(max(f.ts), 0) "
            "FROM videos v LEFT JOIN frames f USING (video_id) "
            "WHERE v.status = 'ingesting' GROUP BY ALL").fetchall()
        for video_id, path, message, frames, last_ts in rows:
            if is_live_path(path):
                con.execute("UPDATE videos SET status = 'stopped', message = ? "
                            "WHERE video_id = ?",
                            [stopped_message(int(frames), float(last_ts), "interrupted"),
                             video_id])
            elif not message:
                con.execute("UPDATE videos SET message = ? WHERE video_id = ?",
                            [RESUME, video_id])


def sampling_mismatch(recorded: dict, wanted: dict) -> dict | None:
    """The recorded sampling when a resume asks for another one (None: they agree). Keys
    missing on either side (older stores) are not compared."""
    differ = [k for k in SAMPLING_KEYS if k in recorded and k in wanted
              and recorded[k] != wanted[k] and not (k == "conf" and recorded[k] is None)]
    return {k: recorded[k] for k in SAMPLING_KEYS if k in recorded} if differ else None


def describe_sampling(sampling: dict) -> str:
    """`stride=2, detect_every=5`: the parameters as the Python API spells them."""
    return ", ".join(f"{k}={sampling[k]}" for k in SAMPLING_KEYS
                     if sampling.get(k) is not None)


def _mount_of(path: Path) -> tuple[str, str]:
    """(device, mount point) of the filesystem holding `path`, from /proc/mounts."""
    real = os.path.realpath(path)
    best = ("the device", "/")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt = line.split()[:2]
                mnt = mnt.replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best[1]):
                    best = (dev, mnt)
    except OSError:
        pass
    return best


def _errno_of(exc: BaseException) -> int | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def disk_full(exc: BaseException, root: Path) -> StoreFullError | None:
    """A StoreFullError when `exc` is a write that failed for lack of space: ENOSPC/EDQUOT
    from the OS, or a FAISS/DuckDB write error while the store's disk is (almost) full."""
    code = _errno_of(exc)
    full = code in (errno.ENOSPC, errno.EDQUOT)
    if not full and code is None and not isinstance(exc, LensDBError):
        try:
            full = shutil.disk_usage(root).free < (1 << 20)
        except OSError:
            full = False
    if not full:
        return None
    device, mount = _mount_of(root)
    return StoreFullError(
        f"no space left on {device} (mounted at {mount}) at {root}; what was committed "
        "stays: free some space and run the same ingest again to resume"
    )

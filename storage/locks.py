"""flock helpers shared by the store's locks (the writer lock, the catalog's reader/writer
lock and its gate): taken by polling until a deadline, so every wait is bounded."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from lensdb.errors import StoreError


def flock_until(fd: int, mode: int, deadline: float) -> bool:
    """Take a flock (fcntl.LOCK_SH or LOCK_EX) on fd, polling until `deadline` (a
    time.monotonic() value; inf: for good); False when it stayed taken."""
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.05)


def open_lock_file(path: Path) -> int | None:
    """A file descriptor to flock; None where the store is read-only to this user (a
    reader there goes without: nobody can write)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise StoreError(f"cannot use the store at {path.parent}: {exc.strerror}") from None
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None

"""The DuckDB catalog: schema, versioning, and short-lived connections.

DuckDB lets one process write or several read, never both. The writer therefore holds
its connection only for the length of one batch's transaction, and every connection
retries on the file lock, so a reader in another process waits at most a moment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from lensdb.errors import StoreError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS videos (
    video_id INTEGER PRIMARY KEY, name VARCHAR, path VARCHAR, content_hash VARCHAR,
    fps DOUBLE, width INTEGER, height INTEGER, duration DOUBLE, status VARCHAR,
    sampling VARCHAR, detector_id VARCHAR, message VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS frames (
    frame_id BIGINT PRIMARY KEY, video_id INTEGER, frame_index INTEGER, ts DOUBLE,
    labelled BOOLEAN, segment_id INTEGER);
CREATE TABLE IF NOT EXISTS detections (
    frame_id BIGINT, class VARCHAR, score REAL, x1 REAL, y1 REAL, x2 REAL, y2 REAL);
CREATE TABLE IF NOT EXISTS counts (frame_id BIGINT, class VARCHAR, n INTEGER);
CREATE TABLE IF NOT EXISTS segments (
    segment_id INTEGER PRIMARY KEY, file VARCHAR, n INTEGER, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS count_models (
    model_id INTEGER PRIMARY KEY, class VARCHAR, method VARCHAR, embedder_id VARCHAR,
    codec VARCHAR, size VARCHAR, metrics VARCHAR, train_frames INTEGER, file VARCHAR,
    active BOOLEAN, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS predictions (
    frame_id BIGINT, class VARCHAR, model_id INTEGER, value REAL, in_train BOOLEAN);
"""

# "different configuration": a read-only and a read-write connection in one process.
LOCK_HINTS = ("lock", "Conflicting", "being used", "different configuration")


def is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return any(h in text for h in LOCK_HINTS)


class Catalog:
    """One DuckDB file. Use `connect()` as a context manager; never hold it long."""

    def __init__(self, path: Path, lock_timeout: float = 30.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file's lock."""
        con = self._open(write)
        con.execute("SET enable_progress_bar = false")  # no bar on the user's terminal
        try:
            yield con
        finally:
            con.close()

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=not write)
            except duckdb.Error as exc:
                if not is_lock_error(exc) or time.monotonic() > deadline:
                    if is_lock_error(exc):
                        raise StoreError(
                            f"the store at {self.path.parent} stayed locked by another "
                            f"process for {self.lock_timeout:.0f}s"
                        ) from None
                    raise StoreError(f"cannot open the catalog {self.path}: {_first_line(exc)}")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)

    def create(self) -> None:
        """Create the schema in a new file, stamped with the schema version."""
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            for stmt in filter(str.strip, SCHEMA.split(";")):
                con.execute(stmt)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            con.execute("COMMIT")

    def check_version(self) -> None:
        with self.connect() as con:
            try:
                row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            except duckdb.Error:
                row = None
        if row is None:
            raise StoreError(f"{self.path} is not a LensDB catalog (no schema version)")
        if int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {row[0]}, this LensDB reads version "
                f"{SCHEMA_VERSION}; use the LensDB release that wrote it or re-ingest"
            )

    def meta(self) -> dict[str, str]:
        with self.connect() as con:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200]

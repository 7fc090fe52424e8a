"""The DuckDB catalog: schema, versioning, and short-lived connections.

DuckDB lets one process write or several read, never both. LensDB puts its own
reader/writer lock in front of DuckDB's, so that the wait is fair and bounded:

- `.catalog.lock`: readers hold it shared and the writer exclusive, for the life of one
  connection (the writer holds its connection only for one batch's transaction);
- `.catalog.gate`: a turnstile. A reader holds it shared while it waits for the lock and
  drops it once the lock is its; a writer holds it exclusive while it waits for the lock.
  So new readers queue behind a waiting writer instead of overtaking it, and the readers
  already in finish their (short) connections: a writer never starves under a stream of
  readers. And a reader that came during a commit is let in before the writer's next one
  (that writer waits at the gate for it): a reader never starves under a writer committing
  back to back (a backlog of batches), where it would otherwise have to hit the instant
  between two commits.

Both are `flock` locks on files beside the catalog, so they hold between processes and
between threads (each connection opens its own file description); a thread that already
holds the catalog (a nested connection) does not lock again. Errors that DuckDB raises
when it opens the file are not locks LensDB waits for: a corrupt file is reported at once.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from lensdb.errors import StoreError, first_line
from lensdb.storage.locks import flock_until, open_lock_file

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
CREATE TABLE IF NOT EXISTS condition_sets (
    name VARCHAR PRIMARY KEY, object VARCHAR, condition_values VARCHAR, prompts VARCHAR,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS detection_attributes (
    frame_id BIGINT, class VARCHAR, x1 REAL, y1 REAL, x2 REAL, y2 REAL, set_name VARCHAR,
    value VARCHAR, probability REAL, method VARCHAR, classifier_id INTEGER,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS classifiers (
    classifier_id INTEGER PRIMARY KEY, set_name VARCHAR, method VARCHAR, embedder_id VARCHAR,
    embedder_spec VARCHAR, context VARCHAR, metrics VARCHAR, train_samples INTEGER,
    file VARCHAR, active BOOLEAN, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS layout_facts (
    fact VARCHAR, class VARCHAR, frames BIGINT, last_frame BIGINT, rows BIGINT,
    value BOOLEAN);
CREATE TABLE IF NOT EXISTS estimate_sample (
    frame_id BIGINT, class VARCHAR, video_id INTEGER, ts DOUBLE, h UBIGINT,
    detected INTEGER, predicted REAL, in_train BOOLEAN);
CREATE TABLE IF NOT EXISTS estimate_sample_stamps (
    class VARCHAR, frames BIGINT, last_frame BIGINT, rows BIGINT, seed BIGINT, size BIGINT);
CREATE TABLE IF NOT EXISTS count_runs (
    source VARCHAR, class VARCHAR, video_id INTEGER, first_id BIGINT, last_id BIGINT,
    n DOUBLE, prev_n DOUBLE, next_n DOUBLE, frames BIGINT, n_predicted BIGINT,
    sum_value DOUBLE, first_ts DOUBLE, last_ts DOUBLE, sorted BOOLEAN, cum_frames BIGINT,
    cum_predicted BIGINT, cum_value DOUBLE);
CREATE TABLE IF NOT EXISTS count_runs_stamps (
    source VARCHAR, class VARCHAR, frames BIGINT, last_frame BIGINT, rows BIGINT,
    ts_sorted BOOLEAN);
"""

_HELD = threading.local()  # per thread: lock file paths this thread holds now


class Catalog:
    """One DuckDB file. Use `connect()` as a context manager; never hold it long."""

    def __init__(self, path: Path, lock_timeout: float = 30.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout  # seconds a connection waits for the catalog lock
        self._lock_path = self.path.parent / ".catalog.lock"
        self._gate_path = self.path.parent / ".catalog.gate"

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, once the catalog lock is ours (waits up to `lock_timeout`)."""
        with self._locked(write):
            con = self._open(write)
            try:
                con.execute("SET enable_progress_bar = false")  # no bar on the terminal
                yield con
            finally:
                con.close()

    @contextmanager
    def _locked(self, write: bool) -> Iterator[None]:
        held: set[str] = _HELD.__dict__.setdefault("paths", set())
        key = str(self._lock_path)
        if key in held:  # a nested connection in a thread that holds the catalog already
            yield
            return
        deadline = time.monotonic() + self.lock_timeout
        lock = open_lock_file(self._lock_path)
        try:
            if lock is not None:
                self._acquire(lock, write, deadline)
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
        finally:
            if lock is not None:
                os.close(lock)  # releases the flock

    def _acquire(self, lock: int, write: bool, deadline: float) -> None:
        gate = open_lock_file(self._gate_path)
        try:
            if gate is not None and not flock_until(
                gate, fcntl.LOCK_EX if write else fcntl.LOCK_SH, deadline
            ):
                raise self._timeout()
            if not flock_until(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH, deadline):
                raise self._timeout()
        finally:
            if gate is not None:
                os.close(gate)  # the lock is held (or given up): the next one may queue

    def _timeout(self) -> StoreError:
        return StoreError(
            f"the store at {self.path.parent} stayed locked by another process for "
            f"{self.lock_timeout:.0f}s"
        )

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        # Only a clash of two configurations in this process (another thread's connection
        # still closing) is waited out; anything else DuckDB raises is reported at once.
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=not write)
            except duckdb.ConnectionException as exc:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"cannot open the catalog {self.path}: {first_line(exc, 200)}"
                    ) from None
                time.sleep(0.01)
            except duckdb.Error as exc:
                raise StoreError(_open_error(self.path, exc)) from None

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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables a store made by an older LensDB lacks (a write connection)."""
    for stmt in filter(str.strip, SCHEMA.split(";")):
        con.execute(stmt)


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


def next_ids(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(next frame id, next segment id) as a connection sees them."""
    row = con.execute(
        "SELECT (SELECT coalesce(max(frame_id), -1) + 1 FROM frames), "
        "(SELECT coalesce(max(segment_id), -1) + 1 FROM segments)"
    ).fetchone()
    assert row is not None  # an aggregate always gives one row
    return int(row[0]), int(row[1])


def one_row(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a query that always gives one (an aggregate, a `SELECT` of values).

    DuckDB types `fetchone()` as Optional; this is the explicit check for such queries."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a single-row query returned no row")
    return row


def _open_error(path: Path, exc: duckdb.Error) -> str:
    """The one-line message for a catalog DuckDB cannot open (DuckDB's own words say why:
    "Corrupt database file", "not a valid DuckDB database file", a foreign lock, ...)."""
    return f"cannot open the catalog {path}: {first_line(exc, 200)}"

"""The catalog's reader/writer lock: a writer is not starved by readers nor a reader by a
writer, a writer encodes outside the lock, a second writer can wait its turn, and a corrupt
catalog is not mistaken for a lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from lensdb.errors import StoreError
from lensdb.storage import Batch, FrameRow, Store
from lensdb.storage.catalog import Catalog
from lensdb.storage.vectors import VectorFiles

DIM = 16


def _unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _store(tmp_path) -> tuple[Store, object]:
    store = Store.open(tmp_path / "s", create=True)
    with store.writer():
        store.bind_space("fake@1", DIM, "Flat")
        codec = store.codec(_unit(4))
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'v', 'ingesting')")
    return store, codec


def _batch(start: int, n: int = 4) -> Batch:
    return Batch(0, [FrameRow(i, i / 10) for i in range(start, start + n)], _unit(n, start))


READER = textwrap.dedent("""
    import sys, time
    from lensdb.storage.catalog import Catalog
    cat = Catalog(sys.argv[1], lock_timeout=60)
    print("ready", flush=True)
    while True:
        with cat.connect() as con:
            con.execute("SELECT count(*) FROM frames").fetchall()
            time.sleep(0.08)  # a reader that keeps its connection a while
        time.sleep(0.003)
""")


def test_a_writer_is_not_starved_by_a_stream_of_readers(tmp_path):
    store, codec = _store(tmp_path)
    # three overlapping readers in other processes: DuckDB's file lock is never free
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(store.catalog.path)],
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        for r in readers:
            assert r.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        store.catalog.lock_timeout = 5.0
        with store.writer():
            t0 = time.monotonic()
            for b in range(3):
                store.commit_batch(_batch(4 * b), codec)
            took = time.monotonic() - t0
        # starved, a commit would give up after the 5 s lock timeout; 10 s leaves a loaded
        # CI machine room while still far below 3 timeouts
        assert took < 10.0, f"three commits took {took:.1f}s under reader load"
        assert all(r.poll() is None for r in readers)  # readers kept going, none failed
    finally:
        for r in readers:
            r.kill()
            r.wait()
    ids, _ = store.decoded_vectors()
    assert ids.tolist() == list(range(12))


WRITER = textwrap.dedent("""
    import sys, time
    from lensdb.storage.catalog import Catalog
    cat = Catalog(sys.argv[1], lock_timeout=60)
    held = []
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        with cat.connect(write=True) as con:
            t0 = time.monotonic()
            con.execute("UPDATE videos SET status = 'ingesting'")
            time.sleep(0.05)  # a commit that keeps the catalog a while
            held.append(time.monotonic() - t0)
        # no pause: the next commit asks at once (a backlog of batches)
    print(sorted(held)[len(held) // 2], flush=True)
""")


def test_a_reader_is_not_starved_by_a_writer_committing_back_to_back(tmp_path):
    store, _ = _store(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store.catalog.path), "6"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        reader = Catalog(store.catalog.path, lock_timeout=5.0)
        waits = []
        for _ in range(10):
            t0 = time.monotonic()
            with reader.connect() as con:  # starved, it would give up after 5 s
                assert con.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
            waits.append(time.monotonic() - t0)
        commit = float(writer.stdout.readline())
    finally:
        writer.kill()
        writer.wait()
    # a reader waits for the commit in progress and no more: a few commits' time at most,
    # measured against this run's own commits (a loaded machine slows both)
    assert sorted(waits)[len(waits) // 2] < 4 * commit + 0.2, (waits, commit)


def test_commit_encodes_and_fsyncs_outside_the_catalog_lock(tmp_path, monkeypatch):
    store, codec = _store(tmp_path)
    seen: list[str] = []
    original = VectorFiles.write_segment

    def write_segment(self, codec, vectors, ids):
        # while the segment is encoded and fsynced, a reader elsewhere gets the catalog
        def read():
            try:
                with Catalog(store.catalog.path, lock_timeout=0.5).connect() as con:
                    seen.append(str(con.execute("SELECT count(*) FROM frames").fetchone()[0]))
            except StoreError as exc:
                seen.append(f"blocked: {exc}")

        t = threading.Thread(target=read)
        t.start()
        t.join()
        return original(self, codec, vectors, ids)

    monkeypatch.setattr(VectorFiles, "write_segment", write_segment)
    with store.writer():
        store.commit_batch(_batch(0), codec)
        store.commit_batch(_batch(4), codec)
    assert seen == ["0", "4"]


def test_a_second_writer_waits_its_turn_when_asked(tmp_path):
    store, _ = _store(tmp_path)
    other = Store.open(store.root)
    got: list[float] = []
    with store.writer():
        with pytest.raises(StoreError, match="another process is writing"):
            with other.writer():
                pass

        def second():
            with other.writer(wait=True):
                got.append(time.monotonic())

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.6)
        assert not got  # still waiting
        released = time.monotonic()
    t.join(timeout=5)
    assert got and got[0] >= released
    with store.writer():  # a bounded wait gives up with the usual message
        with pytest.raises(StoreError, match="another process is writing"):
            t0 = time.monotonic()
            with other.writer(wait=0.3):
                pass
        assert 0.25 < time.monotonic() - t0 < 3.0


def test_a_corrupt_catalog_is_reported_at_once_not_retried_as_locked(tmp_path):
    store, _ = _store(tmp_path)
    path = store.catalog.path
    data = bytearray(path.read_bytes())
    data[100:164] = os.urandom(64)  # DuckDB: "... checksum ... in block at location 0"
    path.write_bytes(bytes(data))
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store.open(store.root)
    assert time.monotonic() - t0 < 5.0
    assert "locked" not in str(info.value) and "orrupt" in str(info.value)


def test_a_catalog_held_by_a_writer_is_waited_for(tmp_path):
    store, codec = _store(tmp_path)
    holder = textwrap.dedent("""
        import sys, time
        from lensdb.storage.catalog import Catalog
        with Catalog(sys.argv[1]).connect(write=True) as con:
            print("held", flush=True)
            time.sleep(1.0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder, str(store.catalog.path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    with store.catalog.connect() as con:  # waits for the writer, then reads
        assert con.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
    assert 0.3 < time.monotonic() - t0 < 5.0
    proc.wait(timeout=10)
    short = Catalog(store.catalog.path, lock_timeout=0.3)
    proc = subprocess.Popen([sys.executable, "-c", holder, str(store.catalog.path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(StoreError, match="stayed locked"):
        with short.connect():
            pass
    proc.wait(timeout=10)


def test_a_nested_read_does_not_wait_behind_a_waiting_writer(tmp_path):
    store, _ = _store(tmp_path)
    wrote: list[float] = []

    def write() -> None:
        with store.catalog.connect(write=True) as con:
            con.execute("UPDATE videos SET status = 'complete'")
            wrote.append(time.monotonic())

    short = Catalog(store.catalog.path, lock_timeout=3.0)
    with short.connect() as outer:
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)  # the writer now holds the gate and waits for this reader
        t0 = time.monotonic()
        with short.connect() as inner:  # same thread: it holds the catalog already
            assert inner.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
        assert time.monotonic() - t0 < 1.0 and not wrote
        outer.execute("SELECT 1").fetchall()
    writer.join(timeout=10)
    assert wrote

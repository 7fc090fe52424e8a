"""A LensDB store: a directory with a DuckDB catalog and FAISS vector segments.

One writer at a time (a lock file); every batch is committed all-or-nothing: its segment
file first (encoded and fsynced outside the catalog lock), then one short catalog
transaction that lists it together with the frame rows. Segments are merged by size tiers
(`compaction.py`), and a Store keeps the merged index it last loaded until the store's
commit counter moves (`Store.load_index`).
"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lensdb.errors import EmbedderMismatchError, StoreError
from lensdb.storage import compaction, held, layout_facts
from lensdb.storage.catalog import Catalog, next_ids, set_meta
from lensdb.storage.compaction import CompactionStats
from lensdb.storage.index_cache import KeptIndex
from lensdb.storage.locks import flock_until
from lensdb.storage.vectors import VectorFiles, decode_all

if TYPE_CHECKING:
    from lensdb.types import Detections

STORE_ENV = "LENSDB_STORE"
DEFAULT_STORE = "lensdb-store"


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


@dataclass
class FrameRow:
    """One sampled frame ready to commit."""

    frame_index: int  # index in the decoded stream
    ts: float  # seconds, from pts
    detections: Detections | None = None  # None when not labelled


@dataclass
class Batch:
    """What one transaction commits."""

    video_id: int
    frames: list[FrameRow]
    vectors: np.ndarray  # (n, dim) float32, one row per frame
    predictions: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    # class -> (count model id, predicted counts per frame)


class Store:
    """Open with `Store.open(path)`; readers need nothing else, writers use `writer()`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.catalog = Catalog(self.root / "catalog.duckdb")
        self.vectors = VectorFiles(self.root)
        self.models_dir = self.root / "models"
        self._kept_index = KeptIndex(self.vectors)  # reused until the commit counter moves
        self.kept_models: dict[tuple[str, ...], Any] = {}  # models loaded for this store's
        # readers (search's embedder), kept as long as its owner keeps the Store
        self.kept_models_lock = threading.Lock()
        self._next: tuple[int, int] | None = None  # (frame id, segment id), while writing

    @classmethod
    def open(cls, root: str | Path | None = None, create: bool = False) -> Store:
        store = cls(Path(root) if root else default_store_path())
        if store.catalog.exists():
            store.catalog.check_version()
            return store
        if store.root.exists() and not store.root.is_dir():
            raise StoreError(f"{store.root} is a file, not a store; a store is a folder "
                             "(give --store a new or existing store folder)")
        if not create:
            raise StoreError(f"no LensDB store at {store.root}; create one with `lensdb ingest`")
        try:
            store.root.mkdir(parents=True, exist_ok=True)
            probe = store.root / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"cannot create a store at {store.root}: {exc.strerror}") from None
        store.vectors.ensure()
        store.models_dir.mkdir(exist_ok=True)
        store.catalog.create()
        return store

    # ---- writing -------------------------------------------------------------------------

    @contextmanager
    def writer(self, wait: bool | float = False) -> Iterator[Store]:
        """Hold the store's single-writer lock; cleans what a crashed writer left.

        `wait`: False refuses at once when another process writes, True waits for it as long
        as it takes, a number waits at most that many seconds.
        """
        try:
            fd = os.open(self.root / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot write to the store at {self.root}: {exc.strerror}") from None
        try:
            seconds = math.inf if wait is True else float(wait or 0.0)
            if not flock_until(fd, fcntl.LOCK_EX, time.monotonic() + seconds):
                hint = "still running" if wait else "wait for it (ingest --wait)"
                raise StoreError(
                    f"another process is writing to the store at {self.root}; {hint}"
                )
            self._recover()
            self._next = None
            yield self
        finally:
            self._next = None
            os.close(fd)

    def _recover(self) -> None:
        with self.catalog.connect() as con:
            listed = {r[0] for r in con.execute("SELECT file FROM segments").fetchall()}
        self.vectors.remove_unlisted(listed)

    def bind_space(self, embedder_id: str, dim: int, codec: str | None,
                   spec: str | None = None) -> str:
        """Record (or check) the store's one vector space; returns the codec in use."""
        meta = self.catalog.meta()
        if "embedder_id" in meta and self._is_empty():
            waiting = held.embedder(self.root)
            if waiting is not None and waiting != embedder_id:
                raise EmbedderMismatchError(
                    f"this store holds {held.frames(self.root)} frames of embedder "
                    f"'{waiting}' waiting for the codec to train, not '{embedder_id}'; use "
                    f"--embedder {meta.get('embedder_spec', waiting)} or another --store")
            # nothing committed yet does not fix the space for good: the codec may change
            # (held frames are kept raw), and without held frames the embedder too; with
            # held frames and no --codec, the codec they wait for stays
            if waiting is not None and codec is None:
                codec = meta.get("codec")
            meta = {}
        if "embedder_id" in meta:
            if meta["embedder_id"] != embedder_id:
                spec = meta.get("embedder_spec", meta["embedder_name"])
                raise EmbedderMismatchError(
                    f"this store holds vectors of embedder '{meta['embedder_id']}', not "
                    f"'{embedder_id}'; use --embedder {spec} or another --store"
                )
            from lensdb.storage.codecs import normalise_factory

            if codec and normalise_factory(codec) != normalise_factory(meta["codec"]):
                raise StoreError(
                    f"this store uses codec '{meta['codec']}', fixed when it was created; "
                    f"drop --codec or use another --store"
                )
            return meta["codec"]
        from lensdb.storage.codecs import DEFAULT_CODEC, make_codec, normalise_factory

        factory = normalise_factory(codec or DEFAULT_CODEC)
        make_codec(factory, dim)  # validates the factory string before anything is stored
        with self.catalog.connect(write=True) as con:
            con.execute("BEGIN")
            set_meta(con, "embedder_id", embedder_id)
            set_meta(con, "embedder_name", embedder_id.split("@")[0])
            set_meta(con, "embedder_spec", spec or embedder_id.split("@")[0])
            set_meta(con, "dim", str(dim))
            set_meta(con, "codec", factory)
            con.execute("COMMIT")
        return factory

    def codec(self, sample: np.ndarray | None = None):
        """The trained codec; trains and saves it on `sample` when the store has none yet."""
        if self.vectors.has_codec():
            return self.vectors.read_codec()
        from lensdb.storage.codecs import make_codec, train_codec

        meta = self.meta()
        if "codec" not in meta:
            raise StoreError("the store has no vector space yet; ingest a video first")
        if sample is None:
            raise StoreError("the store's codec is not trained yet; ingest a video first")
        index = make_codec(meta["codec"], int(meta["dim"]))
        index = train_codec(index, meta["codec"], sample)
        self.vectors.save_codec(index)
        return index

    def _is_empty(self) -> bool:
        """No vectors and no trained codec yet: the vector space can still be chosen."""
        if self.vectors.has_codec():
            return False
        with self.catalog.connect() as con:
            return con.execute("SELECT count(*) FROM segments").fetchall()[0][0] == 0

    def commit_batch(self, batch: Batch, codec) -> np.ndarray:
        """Commit frames, detections, counts, predictions and vectors at once; frame ids.

        The caller holds `writer()`, so the next ids cannot change under it: the segment is
        encoded and fsynced before the catalog is locked, and the transaction that lists it
        is short. A crash in between leaves an unlisted file, which the next writer removes.
        """
        n = len(batch.frames)
        for _ in range(2):
            if self._next is None:
                with self.catalog.connect() as con:
                    self._next = next_ids(con)
            first, seg_id = self._next
            ids = np.arange(first, first + n, dtype=np.int64)
            name = self.vectors.write_segment(codec, batch.vectors, ids)
            try:
                if self._commit_rows(batch, ids, seg_id, name):
                    self._next = (first + n, seg_id + 1)
                    return ids
            except BaseException:
                self.vectors.remove(name)  # never listed: nobody reads it
                raise
            self.vectors.remove(name)
            self._next = None  # the catalog moved (not through this Store): once more
        raise StoreError(f"the store at {self.root} is being written by another writer")

    def forget_next_ids(self) -> None:
        """Drop the next ids `commit_batch` keeps (after another write that takes one)."""
        self._next = None

    def _commit_rows(self, batch: Batch, ids: np.ndarray, seg_id: int, name: str) -> bool:
        """The catalog half of a commit; False (nothing written) when the ids are stale."""
        n = len(batch.frames)
        with self.catalog.connect(write=True) as con:
            con.execute("BEGIN")
            if (int(ids[0]), seg_id) != next_ids(con):
                con.execute("ROLLBACK")
                return False
            con.execute("INSERT INTO segments VALUES (?, ?, ?, now())", [seg_id, name, n])
            frames = pa.table(
                {
                    "frame_id": ids,
                    "video_id": np.full(n, batch.video_id, np.int32),
                    "frame_index": np.array([f.frame_index for f in batch.frames], np.int32),
                    "ts": np.array([f.ts for f in batch.frames], np.float64),
                    "labelled": np.array([f.detections is not None for f in batch.frames]),
                    "segment_id": np.full(n, seg_id, np.int32),
                }
            )
            con.register("new_frames", frames)
            con.execute("INSERT INTO frames SELECT * FROM new_frames")
            con.unregister("new_frames")
            dets, counts = _detection_tables(ids, batch.frames)
            if dets.num_rows:
                con.register("new_dets", dets)
                con.execute("INSERT INTO detections SELECT * FROM new_dets")
                con.register("new_counts", counts)
                con.execute("INSERT INTO counts SELECT * FROM new_counts")
            for cls, (model_id, values) in batch.predictions.items():
                preds = pa.table(
                    {
                        "frame_id": ids,
                        "class": [cls] * n,
                        "model_id": np.full(n, model_id, np.int32),
                        "value": np.asarray(values, np.float32),
                        "in_train": np.zeros(n, bool),
                    }
                )
                con.register("new_preds", preds)
                con.execute("INSERT INTO predictions SELECT * FROM new_preds")
            layout_facts.record(con, batch.predictions)  # in this transaction
            con.execute("COMMIT")
        return True

    def label_frames(self, frame_ids: list[int], detections: list) -> int:
        """Store detector output for frames already in the store and mark them labelled, in
        one transaction (writer only). Idempotent: a frame's earlier detections and counts
        are replaced, never doubled. Returns how many frames were labelled."""
        if len(frame_ids) != len(detections):
            raise StoreError("label_frames needs one Detections per frame id")
        if not frame_ids:
            return 0
        ids = np.asarray(frame_ids, np.int64)
        dets, counts = _detection_tables(ids, [FrameRow(0, 0.0, d) for d in detections])
        with self.catalog.connect(write=True) as con:
            con.execute("BEGIN")
            con.register("label_ids", pa.table({"frame_id": ids}))
            con.execute("DELETE FROM detections WHERE frame_id IN (SELECT frame_id FROM label_ids)")
            con.execute("DELETE FROM counts WHERE frame_id IN (SELECT frame_id FROM label_ids)")
            if dets.num_rows:
                con.register("new_dets", dets)
                con.execute("INSERT INTO detections SELECT * FROM new_dets")
            if counts.num_rows:
                con.register("new_counts", counts)
                con.execute("INSERT INTO counts SELECT * FROM new_counts")
            con.execute("UPDATE frames SET labelled = true "
                        "WHERE frame_id IN (SELECT frame_id FROM label_ids)")
            layout_facts.record(con, labelled=ids)  # labelled count, sample: this transaction
            con.execute("COMMIT")
        return len(ids)

    def segments(self) -> list[tuple[int, str, int]]:
        """(segment id, file, vectors) of every listed segment, oldest first."""
        with self.catalog.connect() as con:
            rows = con.execute("SELECT segment_id, file, n FROM segments ORDER BY 1").fetchall()
        return [(int(i), str(f), int(n)) for i, f, n in rows]

    def compact(self) -> CompactionStats:
        """Merge all segments into one file (writer only); what was rewritten."""
        return compaction.merge_all(self)

    def maybe_compact(self) -> CompactionStats:
        """Merge segments of similar size (writer only; see `compaction`): a vector is
        rewritten about once per size tier it climbs, O(log n) times in all."""
        return compaction.merge_tiers(self)

    # ---- reading -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return self.catalog.meta()

    def load_index(self):
        """The committed vectors as one FAISS index (ids = frame ids): an IndexIDMap2 in RAM,
        or a SegmentedIndex whose big segment files are memory-mapped; kept on this Store
        until its commit counter moves (see `index_cache`). Read-only."""
        for attempt in range(5):  # a merge may delete a file between listing and reading
            with self.catalog.connect() as con:
                rows = con.execute("SELECT segment_id, file FROM segments ORDER BY 1").fetchall()
            try:
                return self._kept_index.get(int(rows[-1][0]) if rows else -1,
                                            [str(r[1]) for r in rows])
            except StoreError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def decoded_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(frame ids, vectors as the codec gives them back), sorted by frame id."""
        return decode_all(self.load_index())

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def _detection_tables(ids: np.ndarray, frames: list[FrameRow]) -> tuple[pa.Table, pa.Table]:
    fid, cls, score, boxes = [], [], [], []
    cfid, ccls, cn = [], [], []
    for frame_id, row in zip(ids.tolist(), frames):
        det = row.detections
        if det is None:
            continue
        for i, name in enumerate(det.class_names):
            fid.append(frame_id)
            cls.append(name)
            score.append(float(det.scores[i]))
            boxes.append([float(v) for v in det.boxes[i]])
        for name, n in det.counts().items():
            cfid.append(frame_id)
            ccls.append(name)
            cn.append(n)
    b = np.array(boxes, np.float32).reshape(-1, 4)
    dets = pa.table(
        {
            "frame_id": pa.array(fid, pa.int64()),
            "class": pa.array(cls, pa.string()),
            "score": pa.array(score, pa.float32()),
            "x1": b[:, 0], "y1": b[:, 1], "x2": b[:, 2], "y2": b[:, 3],
        }
    )
    counts = pa.table(
        {
            "frame_id": pa.array(cfid, pa.int64()),
            "class": pa.array(ccls, pa.string()),
            "n": pa.array(cn, pa.int32()),
        }
    )
    return dets, counts

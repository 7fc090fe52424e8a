"""The index a Store keeps between reads (searches, decodes): big segments memory-mapped,
the small ones merged in RAM.

Loading merges every listed segment file, which is what each search request paid before.
A `KeptIndex` lives on the Store its owner keeps (the CLI's, the service's, a `LensDB`
object's), never in a module global, and is keyed by the store's commit counter (the
newest segment id: every commit and every merge adds a segment with a higher id). When
the counter moves and only segments were added, it reads just the new ones, into a copy:
an index once handed out never changes, so a search running in another thread is safe.

Segment files of `mmap_min_bytes` or more (what compaction writes on a big store) are not
read into RAM: each is memory-mapped read-only (`vectors.read_index_file`) and kept by
file name (files never change), and the index handed out is then a `SegmentedIndex` over
them plus the merged small ones. With `mmap=False` the same parts are read into RAM, so
results are identical either way. A store without big segments gets one merged
IndexIDMap2, as before.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from lensdb.errors import StoreError
from lensdb.storage.vectors import VectorFiles, merge_segment, ready_to_reconstruct

MMAP_MIN_BYTES = 16 << 20  # segment files this big are mapped, not merged into RAM


class SegmentedIndex:
    """Read-only union of IndexIDMap2 parts (ids = frame ids, no id in two parts), with
    the calls readers make: `ntotal`, `d`, `search(x, k, params)`, `reconstruct(id)`;
    `vectors.decode_all` reads each part."""

    def __init__(self, parts: list[Any]):
        self.parts = [p for p in parts if p.ntotal > 0] or parts[:1]
        self.d = int(parts[0].d)
        self.ntotal = sum(int(p.ntotal) for p in self.parts)

    def search(self, x: np.ndarray, k: int, params: Any = None):
        """Each part's k nearest, merged by distance (ties: the earlier part first)."""
        dists, ids = [], []
        for part in self.parts:
            if part.ntotal == 0:
                continue
            d, i = part.search(x, min(int(k), int(part.ntotal)), params=params)
            dists.append(d)
            ids.append(i)
        n = len(x)
        if not dists:
            return np.full((n, k), np.inf, np.float32), np.full((n, k), -1, np.int64)
        dist, idx = np.concatenate(dists, axis=1), np.concatenate(ids, axis=1)
        dist = np.where(idx < 0, np.inf, dist)  # empty slots (IVF lists not probed) last
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        dist, idx = np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)
        if dist.shape[1] < k:
            pad = k - dist.shape[1]
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
            idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
        return dist.astype(np.float32), idx

    def reconstruct(self, key: int) -> np.ndarray:
        for part in self.parts:
            try:
                return part.reconstruct(int(key))
            except RuntimeError:
                continue
        raise RuntimeError(f"id {key} not found")


class KeptIndex:
    """One store's index, reused until its commit counter moves."""

    def __init__(self, vectors: VectorFiles, mmap: bool = True,
                 mmap_min_bytes: int = MMAP_MIN_BYTES):
        self._vectors = vectors
        self._mmap = mmap  # big segments memory-mapped (True) or read into RAM
        self._min_bytes = mmap_min_bytes  # the size from which a segment is kept apart
        self._lock = threading.Lock()
        self._kept: tuple[int, Any] | None = None  # commit counter, index handed out
        self._tail: tuple[frozenset[str], Any] | None = None  # small files, their merge
        self._big: dict[str, Any] = {}  # big file name -> its index, read once

    def get(self, counter: int, files: list[str]):
        """The index of exactly `files` (the catalog's list at `counter`); raises StoreError
        when a listed file is gone (a merge removed it: list again)."""
        with self._lock:
            if self._kept is not None and self._kept[0] == counter:
                return self._kept[1]
            big = [f for f in files if f in self._big or self._is_big(f)]
            small = [f for f in files if f not in set(big)]
            tail = self._merge_small(small)
            self._big = {f: self._big[f] if f in self._big
                         else self._vectors.read_segment(f, mmap=self._mmap) for f in big}
            index = SegmentedIndex([*self._big.values(), tail]) if big else tail
            self._kept = (counter, index)
            return index

    def _is_big(self, name: str) -> bool:
        try:
            return self._vectors.file_size(name) >= self._min_bytes
        except OSError:
            raise StoreError(f"vector segment {name} listed in the catalog is missing")

    def _merge_small(self, small: list[str]):
        """The small segments merged in RAM: the kept merge plus the files appended since,
        when no file of it went away, else merged again."""
        import faiss

        if self._tail is not None and self._tail[0] <= set(small):
            new = [f for f in small if f not in self._tail[0]]
            index = self._tail[1]
            if new:  # into a copy: the kept one may be in use by another thread
                index = faiss.clone_index(index)
                for name in new:
                    merge_segment(index, self._vectors.read_segment(name))
        else:
            index = self._vectors.load(small)
        index = ready_to_reconstruct(index)
        self._tail = (frozenset(small), index)
        return index

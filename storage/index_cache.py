"""The merged in-memory index a Store keeps between reads (searches, decodes).

Loading merges every listed segment file, which is what each search request paid before.
A `KeptIndex` lives on the Store its owner keeps (the CLI's, the service's, a `LensDB`
object's), never in a module global, and is keyed by the store's commit counter (the
newest segment id: every commit and every merge adds a segment with a higher id). When
the counter moves and only segments were added, it reads just the new ones, into a copy:
an index once handed out never changes, so a search running in another thread is safe.
"""

from __future__ import annotations

import threading
from typing import Any

from lensdb.storage.vectors import VectorFiles


class KeptIndex:
    """One store's merged index, reused until its commit counter moves."""

    def __init__(self, vectors: VectorFiles):
        self._vectors = vectors
        self._lock = threading.Lock()
        self._kept: tuple[int, frozenset[str], Any] | None = None  # counter, files, index

    def get(self, counter: int, files: list[str]):
        """The index of exactly `files` (the catalog's list at `counter`); raises StoreError
        when a listed file is gone (a merge removed it: list again)."""
        with self._lock:
            kept = self._kept
            if kept is not None and kept[0] == counter:
                return kept[2]
            if kept is not None and kept[1] <= set(files):  # only appended since
                import faiss

                index = faiss.clone_index(kept[2])
                for name in files:
                    if name not in kept[1]:
                        index.merge_from(self._vectors.read_segment(name), 0)
            else:
                index = self._vectors.load(files)
            self._kept = (counter, frozenset(files), index)
            return index

"""What the routes share: the store's path, the path policy, the job queue, the search
embedder. One object on `app.state`, reached through the `context` dependency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from lensdb.service.jobs import JobQueue
from lensdb.service.policy import PathPolicy
from lensdb.storage.store import Store


@dataclass(frozen=True)
class ServiceContext:
    """The server's state, fixed at start."""

    store_path: Path  # the store every request reads (and jobs write)
    policy: PathPolicy  # what requests may make the server open
    jobs: JobQueue  # ingest jobs, one at a time in a child process
    embedder: str | None = None  # embedder spec for search when the store cannot name it

    _kept: list[Store] = field(default_factory=list, repr=False)  # the Store, once it exists
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _bounds: dict[tuple, float | None] = field(default_factory=dict, repr=False)  # see below

    def error_bound(self, key: tuple, compute: Callable[[], float | None]) -> float | None:
        """A class's error bound, computed once per key (the key names what it depends on:
        the class, its model and the labels), for this server only; at most 1000 kept."""
        with self._lock:
            if key in self._bounds:
                return self._bounds[key]
        value = compute()
        with self._lock:
            if len(self._bounds) >= 1000:
                self._bounds.clear()
            self._bounds[key] = value
        return value

    def store(self) -> Store:
        """The store, kept once it exists so its merged index is reused between searches;
        every read still sees what jobs have committed (the index follows the commit
        counter, the catalog is read per request)."""
        with self._lock:
            if not self._kept:
                self._kept.append(Store.open(self.store_path))  # raises until one exists
            return self._kept[0]


def context(request: Request) -> ServiceContext:
    return request.app.state.context

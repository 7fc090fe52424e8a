"""What the routes share: the store's path, the path policy, the job queue, the search
embedder. One object on `app.state`, reached through the `context` dependency."""

from __future__ import annotations

from dataclasses import dataclass
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

    def store(self) -> Store:
        """The store, opened per request so reads see what jobs have committed."""
        return Store.open(self.store_path)


def context(request: Request) -> ServiceContext:
    return request.app.state.context

"""Ingest engines: who decodes, detects and embeds, behind one interface.

`local` is the pipeline of `lensdb.ingest` in this process; `ray` runs the models in Ray
actors (one machine or many) and streams batches back to the one writer in this process,
which commits them exactly as the local pipeline does. `lensdb.ingest.ingest` picks the
engine named by `IngestConfig.engine`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from lensdb.errors import LensDBError, ParameterError

if TYPE_CHECKING:
    from lensdb.config import IngestConfig
    from lensdb.events import OnEvent
    from lensdb.ingest import IngestReport
    from lensdb.storage.store import Store

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Ingests sources into a store; the same contract as `lensdb.ingest.ingest`."""

    name: str

    def ingest(self, store: Store, sources: list[str], config: IngestConfig,
               progress: OnEvent | None = None, stop: threading.Event | None = None,
               wait: bool | float = False) -> IngestReport:
        ...


def get_engine(name: str) -> Engine:
    """The engine called `name` (local | ray)."""
    if name == "local":
        from lensdb.engine.local import LocalEngine

        return LocalEngine()
    if name == "ray":
        from lensdb.engine.driver import RayEngine

        return RayEngine()
    raise ParameterError("engine", f"must be one of {', '.join(ENGINES)}, not '{name}'")


def validate_engine(config: IngestConfig) -> None:
    """The engine options of an IngestConfig (called by its `validate`)."""
    if config.engine not in ENGINES:
        raise ParameterError("engine", f"must be one of {', '.join(ENGINES)}, not "
                             f"'{config.engine}'")
    if not 1 <= config.workers <= 1024:
        raise ParameterError("workers", "must be between 1 and 1024")
    if config.gpus_per_worker < 0:
        raise ParameterError("gpus_per_worker", "must be 0 or more")
    if not config.chunk_seconds > 0:
        raise ParameterError("chunk_seconds", "must be a positive number of seconds")
    if config.address is not None and config.engine != "ray":
        raise ParameterError("address", "is a Ray cluster address: use it with --engine ray")


__all__ = ["ENGINES", "Engine", "LensDBError", "get_engine", "validate_engine"]

"""The local engine: today's pipeline (`lensdb.ingest`), in this process, unchanged."""

from __future__ import annotations

import threading
from dataclasses import replace

from lensdb.config import IngestConfig
from lensdb.events import OnEvent
from lensdb.ingest import IngestReport
from lensdb.storage.store import Store


class LocalEngine:
    """Decoder thread, models in the caller's thread, writer thread (`lensdb.ingest`)."""

    name = "local"

    def ingest(self, store: Store, sources: list[str], config: IngestConfig,
               progress: OnEvent | None = None, stop: threading.Event | None = None,
               wait: bool | float = False) -> IngestReport:
        from lensdb.ingest import ingest

        return ingest(store, sources, replace(config, engine="local"), progress, stop, wait)

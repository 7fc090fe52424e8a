"""LensDB: counting questions over large amounts of video.

    import lensdb
    db = lensdb.open("my-store")
    db.ingest(["street.mp4"], detector="ssd-mobilenet-v2", embedder="mobilenet-v2")
    db.info()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pathlib import Path

    from lensdb.db import LensDB


def open(store: str | Path | None = None, create: bool = False) -> LensDB:  # noqa: A001
    """Open (or, with create=True, create) the store at `store`, default $LENSDB_STORE."""
    from lensdb.db import LensDB

    return LensDB.open(store, create=create)


__all__ = ["open", "__version__"]

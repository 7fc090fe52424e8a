"""The LensDB store: DuckDB catalog, FAISS vector segments, codecs."""

from lensdb.storage.codecs import list_codecs
from lensdb.storage.store import Batch, FrameRow, Store, default_store_path

__all__ = ["Batch", "FrameRow", "Store", "default_store_path", "list_codecs"]

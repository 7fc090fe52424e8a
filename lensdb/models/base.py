"""The two model roles LensDB knows, as protocols every adapter satisfies."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from lensdb.types import Detections


@runtime_checkable
class Detector(Protocol):
    """Finds objects on frames."""

    name: str  # registry name or path the user gave
    model_id: str  # name plus a hash of the weights: what the catalog records

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """One Detections per HxWx3 uint8 RGB image, at the adapter's confidence threshold."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns frames (and, for CLIP-like models, text) into L2-normalised float32 vectors."""

    name: str
    model_id: str  # name plus a hash of the weights: one vector space per model_id
    dim: int
    has_text: bool

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32, each row of unit length."""
        ...

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32; raises LensDBError when the model has no text side."""
        ...


def cache_dir() -> Path:
    """Where fetched weights live: $LENSDB_CACHE, else ~/.cache/lensdb."""
    root = os.environ.get("LENSDB_CACHE") or os.path.join(Path.home(), ".cache", "lensdb")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: str | Path, length: int = 12) -> str:
    """Short sha256 of a file, used in model ids so that other weights give another id."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)

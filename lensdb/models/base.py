"""The two model roles LensDB knows, as protocols every adapter satisfies."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class EmbeddedBatch:
    """One batch of frames embedded, whose detections can be asked for afterwards (for
    the frames chosen to be labelled, which may depend on the vectors)."""

    vectors: np.ndarray  # (n, dim) float32, unit rows, one per frame of the batch
    detect: Callable[[list[int]], list[Detections]]  # positions in the batch -> Detections


@runtime_checkable
class DetectAndEmbed(Protocol):
    """A detector whose forward pass also gives an embedder's vectors (one network, two
    heads: the SSD and its MobileNetV2 backbone). Ingest calls `detect_and_embed` once per
    batch instead of running the network once to embed and again to detect."""

    def embeds_like(self, embedder: Embedder) -> bool:
        """True when `embedder`'s vectors come from this detector's own forward pass."""
        ...

    def detect_and_embed(self, images: list[np.ndarray]) -> EmbeddedBatch:
        """One forward pass per image: the vectors now, detections on request."""
        ...


def embed_batch(detector: Detector, embedder: Embedder,
                images: list[np.ndarray]) -> EmbeddedBatch:
    """Embed a batch, keeping what detection needs: the shared forward pass when the pair
    is one network (`DetectAndEmbed`), else the embedder now and the detector on request."""
    if isinstance(detector, DetectAndEmbed) and detector.embeds_like(embedder):
        return detector.detect_and_embed(images)

    def detect(positions: list[int]) -> list[Detections]:
        return detector.detect([images[i] for i in positions]) if positions else []

    return EmbeddedBatch(embedder.embed_images(images), detect)


def cache_dir() -> Path:
    """Where fetched weights live: $LENSDB_CACHE, else ~/.cache/lensdb."""
    root = os.environ.get("LENSDB_CACHE") or os.path.join(Path.home(), ".cache", "lensdb")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: str | Path, length: int | None = 12) -> str:
    """sha256 of a file, read in chunks: the first `length` hex digits (model ids, so that
    other weights give another id) or all of them (`length=None`: content hashes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest() if length is None else h.hexdigest()[:length]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)

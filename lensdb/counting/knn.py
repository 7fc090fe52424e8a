"""kNN label propagation (the idea behind TASTI): a frame's count is the distance-weighted
mean of the counts of its k most similar labelled frames, by cosine in the stored space.

With labels on every K-th frame this beats an MLP trained on the same few labels, because
the neighbours of an unlabelled frame are mostly its labelled neighbours in time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lensdb.errors import LensDBError

if TYPE_CHECKING:
    import faiss

EPS = 1e-3  # added to the cosine distance so an exact duplicate does not divide by zero


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (decoded vectors are only nearly unit after a codec)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class KnnPropagator:
    """Holds labelled vectors and their counts; `.predict(vectors)` propagates the counts."""

    kind = "knn"

    def __init__(
        self, vectors: np.ndarray, counts: np.ndarray, k: int = 5, meta: dict | None = None
    ):
        if len(vectors) == 0:
            raise LensDBError("kNN propagation needs at least one labelled frame")
        if len(vectors) != len(counts):
            raise ValueError("vectors and counts differ in length")
        self.vectors = unit_rows(vectors)
        self.counts = np.asarray(counts, dtype=np.float32)
        self.k = int(k)
        self.dim = self.vectors.shape[1]
        self.meta = meta or {}
        self._index: faiss.IndexFlatIP | None = None  # built on the first search

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, positions) of the k nearest labelled vectors, best first."""
        try:
            import faiss
        except ImportError:  # pragma: no cover - faiss is a dependency; numpy fallback
            sims = queries @ self.vectors.T
            pos = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            return np.take_along_axis(sims, pos, axis=1), pos
        index = self._index
        if index is None:
            index = self._index = faiss.IndexFlatIP(self.dim)
            index.add(self.vectors)
        return index.search(queries, k)

    def predict(self, vectors: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Predicted counts (float32, >= 0) for (n, D) vectors."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise LensDBError(
                f"kNN count model for '{self.meta.get('class')}' takes {self.dim}-d vectors, "
                f"got shape {tuple(vectors.shape)}"
            )
        if len(vectors) == 0:
            return np.zeros(0, np.float32)
        k = min(self.k, len(self.vectors))
        out = np.empty(len(vectors), np.float32)
        for start in range(0, len(vectors), batch_size):
            q = unit_rows(vectors[start : start + batch_size])
            sims, pos = self._search(q, k)
            out[start : start + len(q)] = propagate(sims, self.counts[pos])
        return out


def propagate(sims: np.ndarray, neighbour_counts: np.ndarray) -> np.ndarray:
    """Distance-weighted mean: weight 1 / (cosine distance + EPS) per neighbour."""
    dist = np.clip(1.0 - sims, 0.0, 2.0)
    weights = 1.0 / (dist + EPS)
    return (weights * neighbour_counts).sum(axis=1) / weights.sum(axis=1)

"""The learned combination of one class: a ridge regression (numpy, closed form) that
corrects the interpolated count with the kNN and embedding-model counts, weighted by where
the frame sits between its labels.

Target: count - interpolated. Features (each a column, standardised):
  knn - interp, emb - interp                 what the embedding space says differently
  s * (knn - interp), s * (emb - interp)     s = distance to the nearer label / spacing
  d * (knn - interp), d * (emb - interp)     d = |count after - count before| (a change)
  s, d                                       where interpolation is weakest on its own
With no useful correction the ridge keeps the weights near 0: the interpolation.
Frames outside the labels of their video (interp undefined) take the embedding model.
Also a plain ridge on the embeddings (`Ridge`), the combination's embedding-model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensdb.counting.interpolate import Interpolated

FEATURES = ("knn-interp", "emb-interp", "s*knn", "s*emb", "d*knn", "d*emb", "s", "d")
LAMBDA = 1.0  # ridge penalty on standardised features (a fixed default, not tuned per store)


class Ridge:
    """y ~ w.x + b, L2 penalty `lam` on w (features standardised first). `clip`: features
    are clipped to the range they had in training before predicting. The combination needs
    it: it trains on held-out labels, which sit a whole (doubled) spacing from their
    neighbours, and predicts frames at most half a spacing from theirs, so `s` is nearly
    constant in training (its scale tiny) and far outside that range when deployed; a weight
    of 0.04 on it once added +1.7 to every frame."""

    def __init__(self, lam: float = LAMBDA, clip: bool = False):
        self.lam = lam
        self.clip = clip
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.lo: np.ndarray | None = None  # the training range of each feature
        self.hi: np.ndarray | None = None
        self.w: np.ndarray | None = None
        self.b = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> Ridge:
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if len(x):
            self.lo, self.hi = x.min(axis=0), x.max(axis=0)
        self.mean = x.mean(axis=0)
        self.scale = np.maximum(x.std(axis=0), 1e-6)
        z = (x - self.mean) / self.scale
        self.b = float(y.mean()) if len(y) else 0.0
        n, d = z.shape
        if n == 0:
            self.w = np.zeros(d)
        elif d <= n:
            self.w = np.linalg.solve(z.T @ z + self.lam * np.eye(d), z.T @ (y - self.b))
        else:  # dual form: n x n
            alpha = np.linalg.solve(z @ z.T + self.lam * np.eye(n), y - self.b)
            self.w = z.T @ alpha
        return self

    def _fitted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, scale, w), which `fit` sets."""
        if self.mean is None or self.scale is None or self.w is None:
            raise RuntimeError("Ridge is not fitted yet")
        return self.mean, self.scale, self.w

    def predict(self, x: np.ndarray) -> np.ndarray:
        mean, scale, w = self._fitted()
        x = np.asarray(x, np.float64)
        if self.clip and self.lo is not None and self.hi is not None:
            x = np.clip(x, self.lo, self.hi)
        return ((x - mean) / scale) @ w + self.b

    def to_dict(self) -> dict:
        mean, scale, w = self._fitted()
        out = {"lam": self.lam, "mean": mean.tolist(), "scale": scale.tolist(),
               "w": w.tolist(), "b": self.b}
        if self.clip and self.lo is not None and self.hi is not None:
            out |= {"lo": self.lo.tolist(), "hi": self.hi.tolist()}
        return out


class EmbeddingRidge:
    """Ridge regression on the embeddings; `.predict(vectors)` -> counts >= 0."""

    kind = "ridge"

    def __init__(self, vectors: np.ndarray, counts: np.ndarray, lam: float = 10.0):
        self.model = Ridge(lam).fit(vectors, counts)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        return np.maximum(self.model.predict(vectors), 0.0).astype(np.float32)


def features(interp: Interpolated, knn: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """(n, len(FEATURES)) for frames inside their labels (the caller masks the others)."""
    base = np.nan_to_num(interp.value)
    dk, de = np.asarray(knn, np.float64) - base, np.asarray(emb, np.float64) - base
    near = np.minimum(interp.dt_before, interp.dt_after)
    spacing = np.where(interp.spacing > 0, interp.spacing, 1.0)
    s = np.clip(np.nan_to_num(near / spacing, posinf=1.0), 0.0, 2.0)
    yb = np.where(np.isnan(interp.y_before), interp.y_after, interp.y_before)
    ya = np.where(np.isnan(interp.y_after), interp.y_before, interp.y_after)
    d = np.nan_to_num(np.abs(ya - yb))
    return np.stack([dk, de, s * dk, s * de, d * dk, d * de, s, d], axis=1)


@dataclass
class Combiner:
    """Fitted on (features, count - interp) of labelled frames; predicts counts >= 0."""

    ridge: Ridge

    @classmethod
    def fit(cls, interp: Interpolated, knn: np.ndarray, emb: np.ndarray,
            y: np.ndarray) -> Combiner:
        ok = interp.inside
        target = np.asarray(y, np.float64)[ok] - interp.value[ok]
        return cls(Ridge(clip=True).fit(features(interp, knn, emb)[ok], target))

    def predict(self, interp: Interpolated, knn: np.ndarray, emb: np.ndarray,
                fallback: np.ndarray) -> np.ndarray:
        """The combination where inside, `fallback` (the embedding model) elsewhere."""
        out = np.asarray(fallback, np.float64).copy()
        ok = interp.inside
        if ok.any():
            x = features(interp, knn, emb)[ok]
            out[ok] = interp.value[ok] + self.ridge.predict(x)
        return np.maximum(out, 0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(FEATURES)} | self.ridge.to_dict()

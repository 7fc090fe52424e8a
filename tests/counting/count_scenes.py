"""Simulated footage for the counting tests, made in code: counts that drift and flicker,
and embeddings that see the true count."""

from __future__ import annotations

import numpy as np

from lensdb.counting.fit import Frames

DIM = 32


def drifting_counts(seed: int, n: int = 40000, q: float = 0.4, eta2: float = 0.3):
    """A random walk (variance q per second, 10 frames a second) plus independent noise."""
    rng = np.random.default_rng(seed)
    x = 6 + np.cumsum(rng.normal(0, np.sqrt(q / 10), n))
    return x, x + rng.normal(0, np.sqrt(eta2), n), np.arange(n) / 10.0


def scene(seed: int, n: int = 800, every: int = 10):
    """Counts that drift and flicker, embeddings that see the true count (not the flicker)."""
    rng = np.random.default_rng(seed)
    x = np.clip(np.rint(5 + np.cumsum(rng.normal(0, 0.3, n))), 0, 15)
    y = np.maximum(x + rng.choice([-1, 0, 1], size=n, p=[0.175, 0.65, 0.175]), 0)
    basis = np.random.default_rng(99).normal(size=(3, DIM))
    v = (basis[0] + 0.25 * x[:, None] * basis[1] + 0.12 * rng.normal(size=(n, DIM))
         + np.sin(np.arange(n) / 50)[:, None] * basis[2])
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    lab = np.flatnonzero(np.arange(n) % every == 0)
    return Frames(v, np.zeros(n, int), np.arange(n) / 10.0, lab, y[lab].astype(np.float32)), y


def flickering_object(seed: int, n: int = 800, every: int = 5, p_detect: float = 0.75):
    """One object at a time that stays for minutes and a detector that misses it on a
    quarter of the frames, independently (the flicker dominates the count's changes)."""
    rng = np.random.default_rng(seed)
    x, alive = np.zeros(n), []
    for t in range(n):
        alive = [end for end in alive if end > t]
        if rng.random() < 0.003:
            alive.append(t + int(rng.exponential(400)) + 1)
        x[t] = len(alive)
    y = rng.binomial(x.astype(int), p_detect).astype(np.float64)
    basis = np.random.default_rng(99).normal(size=(2, DIM))
    v = basis[0] + 0.25 * x[:, None] * basis[1] + 0.12 * rng.normal(size=(n, DIM))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    lab = np.flatnonzero(np.arange(n) % every == 0)
    return Frames(v, np.zeros(n, int), np.arange(n) / 10.0, lab, y[lab].astype(np.float32)), y


def embed(x: np.ndarray, rng: np.random.Generator, weak: bool = False) -> np.ndarray:
    """Embeddings that see the true count `x` plus a slow scene drift; `weak`: they see it
    a third as strongly under 2.5x the noise (kNN then about ties interpolation, as with
    the offline mobilenet-v2 embedder on street video, instead of beating it)."""
    basis = np.random.default_rng(98 if weak else 99).normal(size=(3, DIM))
    scale, noise, period = (0.08, 0.3, 30) if weak else (0.25, 0.12, 50)
    n = len(x)
    v = (basis[0] + scale * x[:, None] * basis[1] + noise * rng.normal(size=(n, DIM))
         + np.sin(np.arange(n) / period)[:, None] * basis[2])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def busy_and_quiet(seed: int, n: int = 800, weak: bool = False):
    """(vectors, detector counts): 100-frame stretches, 40% of them busy (counts move fast),
    the rest nearly still; +-1 flicker on 20% of frames."""
    rng = np.random.default_rng(seed)
    busy = np.repeat(rng.random(n // 100 + 1) < 0.4, 100)[:n]
    step = np.where(busy, rng.normal(0, 0.6, n), rng.normal(0, 0.05, n))
    x = np.clip(np.rint(4 + np.cumsum(step)), 0, 15)
    y = np.maximum(x + rng.choice([-1, 0, 1], size=n, p=[0.1, 0.8, 0.1]), 0)
    return embed(x, rng, weak), y.astype(np.float64)


def passing_objects(seed: int, n: int = 800, weak: bool = False):
    """(vectors, detector counts): objects that pass through in 10-60 frames (traffic), a
    detector that finds each on 85% of frames."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for _ in range(rng.poisson(n / 40)):
        start, stay = rng.integers(0, n), rng.integers(10, 60)
        x[start:start + stay] += 1
    y = rng.binomial(x.astype(int), 0.85).astype(np.float64)
    return embed(x, rng, weak), y


def scene_cuts(seed: int, n: int = 600, cuts: int = 5, dim: int = 16):
    """(video, ts, vectors, detector counts): `cuts` scene cuts, a count per scene with
    +-1 flicker on 15% of frames, embeddings that tell the scenes apart."""
    rng = np.random.default_rng(seed)
    at = np.sort(rng.choice(np.arange(20, n - 20), cuts, replace=False))
    scene = np.searchsorted(at, np.arange(n), side="right")
    centres = rng.normal(size=(cuts + 1, dim))
    y = rng.integers(0, 8, cuts + 1)[scene] + rng.integers(-1, 2, n) * (rng.random(n) < 0.15)
    x = centres[scene] + 0.3 * rng.normal(size=(n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return np.zeros(n, int), np.arange(n) / 10.0, x, y * 1.0


def half_placed(vectors: np.ndarray, y: np.ndarray, every: int = 20,
                video: np.ndarray | None = None, ts: np.ndarray | None = None) -> np.ndarray:
    """Sorted positions of labels on 1 frame in `every / 2`: half on a uniform stride of
    `every`, the other half placed by `placement.place_labels` (the detector's counts `y`
    as the oracle)."""
    from lensdb.counting.placement import Frames as Placing
    from lensdb.counting.placement import place_labels

    n = len(y)
    video = np.zeros(n, int) if video is None else video
    ts = np.arange(n) / 10.0 if ts is None else ts
    start = np.arange(0, n, every)
    labels = {"c": np.full(n, np.nan)}
    labels["c"][start] = y[start]
    more = place_labels(Placing(video, ts, vectors, labels), len(start),
                        lambda pos: {"c": y[pos]})
    return np.sort(np.r_[start, more])

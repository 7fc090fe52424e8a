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

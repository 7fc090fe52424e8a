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

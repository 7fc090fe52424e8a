"""Pairs as tensors: the images (decoded once, preprocessed and cached while they fit),
the tokenised texts, and the batches of an epoch (plain shuffled or topical).

Contrastive objectives go through images: each epoch every image once, with one of its
captions drawn at random, so a batch never holds the same image twice. `bce` goes through
the labelled rows (matches and mismatches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.finetune.pairs import Pair

CACHE_BYTES = 1 << 30  # preprocessed images kept in memory up to this many bytes


@dataclass
class PairData:
    """Usable pairs of one file, indexed."""

    images: list[Path]  # distinct images
    image_of: np.ndarray  # per row: index into images
    texts: list[str]  # per row
    labels: np.ndarray  # per row: 1 match, 0 mismatch
    skipped: int = 0  # unreadable images left out
    generated_mismatches: int = 0  # mismatches made because the file had none
    captions: dict[int, list[int]] = field(default_factory=dict)  # image -> its match rows

    @classmethod
    def from_pairs(cls, pairs: list[Pair], skipped: int = 0, generated: int = 0) -> PairData:
        images = list(dict.fromkeys(p.image for p in pairs))
        index = {img: i for i, img in enumerate(images)}
        data = cls(images, np.array([index[p.image] for p in pairs], np.int64),
                   [p.text for p in pairs], np.array([p.label for p in pairs], np.int64),
                   skipped, generated)
        for row, p in enumerate(pairs):
            if p.label == 1:
                data.captions.setdefault(index[p.image], []).append(row)
        return data

    def match_rows(self) -> np.ndarray:
        return np.flatnonzero(self.labels == 1)


class ImageBank:
    """Preprocessed image tensors by index, decoded on first use and cached while the
    cache stays under CACHE_BYTES."""

    def __init__(self, paths: list[Path], preprocess, cache_bytes: int = CACHE_BYTES):
        self.paths, self.preprocess, self.cache_bytes = paths, preprocess, cache_bytes
        self._cache: dict[int, Any] = {}
        self._bytes = 0

    def get(self, indices) -> Any:
        import torch
        from PIL import Image

        out: list[Any] = []
        for i in (int(i) for i in indices):
            t = self._cache.get(i)
            if t is None:
                with Image.open(self.paths[i]) as img:
                    t = self.preprocess(img.convert("RGB"))
                size = t.numel() * t.element_size()
                if self._bytes + size <= self.cache_bytes:
                    self._cache[i] = t
                    self._bytes += size
            out.append(t)
        return torch.stack(out)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 20) -> np.ndarray:
    """Cluster labels of the rows of x (cosine k-means on unit vectors)."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centres = x[rng.choice(len(x), k, replace=False)]
    labels = np.zeros(len(x), np.int64)
    for _ in range(iters):
        labels = np.argmax(x @ centres.T, axis=1)
        for c in range(k):
            members = x[labels == c]
            if len(members):
                v = members.mean(0)
                centres[c] = v / max(np.linalg.norm(v), 1e-12)
    return labels


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator,
                  clusters: np.ndarray | None = None) -> list[np.ndarray]:
    """Index batches over range(n). With `clusters`, each batch is cut from one cluster
    (near neighbours together, what SANW's weights act on); leftovers are pooled."""
    if clusters is None:
        order = rng.permutation(n)
        batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    else:
        batches, rest = [], []
        for c in np.unique(clusters):
            members = rng.permutation(np.flatnonzero(clusters == c))
            full = len(members) // batch_size * batch_size
            batches += [members[s:s + batch_size] for s in range(0, full, batch_size)]
            rest += members[full:].tolist()
        rest_arr = rng.permutation(np.asarray(rest, np.int64))
        batches += [rest_arr[s:s + batch_size] for s in range(0, len(rest_arr), batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return [b for b in batches if len(b) >= 2]  # a batch of one has no negatives


def contrastive_epoch(data: PairData, batch_size: int, rng: np.random.Generator,
                      clusters: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image indices, text rows) per batch: each image once, one random caption each."""
    imgs = np.array(sorted(data.captions), np.int64)
    out = []
    for b in epoch_batches(len(imgs), batch_size, rng,
                           None if clusters is None else clusters[imgs]):
        rows = np.array([rng.choice(data.captions[int(i)]) for i in imgs[b]], np.int64)
        out.append((imgs[b], rows))
    return out


def pair_epoch(data: PairData, batch_size: int, rng: np.random.Generator
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image indices, rows) per batch over every labelled row (bce)."""
    return [(data.image_of[b], b) for b in epoch_batches(len(data.texts), batch_size, rng)]

"""Where a label helps most: scores for unlabelled frames, a greedy pick with spacing, and
the scene-change placer that `ingest --detect-every auto` uses.

A frame scores high when what propagation would say of it is uncertain:
- disagreement: interpolation in time between the labels around it (per video) against the
  counts of its nearest labelled neighbours in the embedding space (a scene change between
  two labels shows as a ramp that the neighbours contradict);
- spread: how much those neighbours' counts differ among themselves;
- time gap: distance in time to the nearest label of its video, against the typical gap;
- novelty: cosine distance in the embedding to the nearest label anywhere (new footage);
- thresholds: a predicted count near a threshold people query (count(c) >= t flips there).
Each term is scaled to mean 1 over the unlabelled frames and summed with `Weights`.
`place_labels` picks in rounds: score, pick greedily (no two picks closer than a spacing
within a video), have the oracle label them, score again with the new labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TEMPERATURE = 0.05  # cosine similarity scale of the neighbours' weights (softmax)
LabelFn = Callable[[np.ndarray], dict[str, np.ndarray]]  # positions -> class -> counts


@dataclass(frozen=True)
class Weights:
    """How much each term of the score counts (each term has mean 1 before weighting)."""

    disagreement: float = 1.0  # |interpolation in time - embedding neighbours|
    spread: float = 1.0  # std of the embedding neighbours' counts
    time_gap: float = 0.5  # time to the nearest label of the video / typical gap
    novelty: float = 0.5  # embedding distance to the nearest label
    threshold: float = 1.0  # closeness of the predicted count to a queried threshold


@dataclass
class Frames:
    """What placement knows of the store's frames (arrays aligned by position)."""

    video: np.ndarray  # (n,) video id
    ts: np.ndarray  # (n,) seconds
    vectors: np.ndarray  # (n, d) L2-normalised embeddings as the store decodes them
    labels: dict[str, np.ndarray]  # class -> (n,) count, NaN where unlabelled
    predicted: dict[str, np.ndarray] = field(default_factory=dict)  # class -> stored preds

    @property
    def labelled(self) -> np.ndarray:
        first = next(iter(self.labels.values()), None)
        if first is None:
            raise ValueError("placement needs at least one class")
        return ~np.isnan(first)


def interpolate_in_time(video: np.ndarray, ts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of the labelled values of y (non-NaN) per video, by time; NaN
    for videos without a label. Never crosses from one video to another."""
    out = np.full(len(y), np.nan)
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        lab = idx[~np.isnan(y[idx])]
        if len(lab) == 0:
            continue
        order = np.argsort(ts[lab], kind="stable")
        out[idx] = np.interp(ts[idx], ts[lab][order], y[lab][order])
    return out


def _neighbours(vectors: np.ndarray, lab: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, positions into lab) of each frame's k most similar labelled frames."""
    ref = vectors[lab]
    k = min(k, len(lab))
    sims = np.empty((len(vectors), k), np.float32)
    pos = np.empty((len(vectors), k), np.int64)
    for s in range(0, len(vectors), 4096):
        block = vectors[s:s + 4096] @ ref.T
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        sims[s:s + 4096] = np.take_along_axis(block, top, 1)
        pos[s:s + 4096] = top
    return sims, pos


def _unit(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, np.float64))
    m = float(x[mask].mean()) if mask.any() else 0.0
    return x / m if m > 1e-12 else np.zeros_like(x)


def score_frames(frames: Frames, thresholds: tuple[float, ...] = (), k: int = 5,
                 weights: Weights = Weights()) -> np.ndarray:
    """Usefulness of a label on each frame; -inf on labelled frames (see module doc)."""
    lab_mask = frames.labelled
    out = np.full(len(lab_mask), -np.inf)
    free = ~lab_mask
    if not free.any():
        return out
    lab = np.flatnonzero(lab_mask)
    x = np.ascontiguousarray(frames.vectors, np.float32)
    if len(lab) == 0:  # nothing known yet: spread out in time and embedding
        total = _time_gap(frames, lab_mask) + 0.0
        out[free] = total[free]
        return out
    sims, pos = _neighbours(x, lab, k)
    w = np.exp((sims - sims.max(1, keepdims=True)) / TEMPERATURE)  # the nearest count most
    w /= w.sum(1, keepdims=True)
    dis = np.zeros(len(x))
    spread = np.zeros(len(x))
    near = np.zeros(len(x))
    for cls, y in frames.labels.items():
        ny = y[lab][pos]
        knn = (ny * w).sum(1)
        spread += np.sqrt((w * (ny - knn[:, None]) ** 2).sum(1))
        interp = interpolate_in_time(frames.video, frames.ts, y)
        dis += np.abs(np.where(np.isnan(interp), knn, interp) - knn)
        if thresholds:
            guess = frames.predicted.get(cls)
            guess = knn if guess is None else np.where(np.isnan(guess), knn, guess)
            for t in thresholds:
                near += np.exp(-(((guess - (math.ceil(t) - 0.5)) / 0.5) ** 2))
    novelty = 1.0 - sims.max(1)
    total = (weights.disagreement * _unit(dis, free) + weights.spread * _unit(spread, free)
             + weights.time_gap * _unit(_time_gap(frames, lab_mask), free)
             + weights.novelty * _unit(novelty, free))
    if thresholds:
        total += weights.threshold * _unit(near, free)
    out[free] = total[free]
    return out


def _time_gap(frames: Frames, lab_mask: np.ndarray) -> np.ndarray:
    """Seconds to the nearest label of the same video (the video's length when it has none)."""
    gap = np.zeros(len(lab_mask))
    for v in np.unique(frames.video):
        idx = np.flatnonzero(frames.video == v)
        t = frames.ts[idx]
        lt = np.sort(t[lab_mask[idx]])
        if len(lt) == 0:
            gap[idx] = (t.max() - t.min()) + 1.0
            continue
        j = np.searchsorted(lt, t)
        left = np.abs(t - lt[np.maximum(j - 1, 0)])
        right = np.abs(lt[np.minimum(j, len(lt) - 1)] - t)
        gap[idx] = np.minimum(left, right)
    return gap


def pick(frames: Frames, scores: np.ndarray, budget: int, spacing: int | None = None) -> np.ndarray:
    """Up to `budget` positions by score, greedily, none within `spacing` frames (in a video's
    time order) of another pick; `spacing` None: half the gap that `budget` more labels
    spread evenly would leave. Relaxes the spacing when too few frames remain."""
    candidates = np.flatnonzero(np.isfinite(scores))
    budget = min(budget, len(candidates))
    if budget <= 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((frames.ts, frames.video))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    if spacing is None:
        spacing = max(0, int(0.5 * len(scores) / (int(frames.labelled.sum()) + budget)))
    ranked = candidates[np.argsort(-scores[candidates], kind="stable")]
    chosen: list[int] = []
    while spacing >= 0 and len(chosen) < budget:
        taken = {(int(frames.video[i]), int(rank[i])) for i in chosen}
        for i in ranked:
            if len(chosen) >= budget:
                break
            if i in chosen:
                continue
            v, r = int(frames.video[i]), int(rank[i])
            if any((v, r + d) in taken for d in range(-spacing, spacing + 1)):
                continue
            chosen.append(int(i))
            taken.add((v, r))
        spacing = spacing // 2 if spacing > 1 else -1
    return np.array(chosen, np.int64)


def place_labels(frames: Frames, budget: int, label_fn: LabelFn, rounds: int = 4,
                 thresholds: tuple[float, ...] = (), weights: Weights = Weights()) -> np.ndarray:
    """Label `budget` frames in `rounds` rounds of score -> pick -> label; `frames.labels` is
    updated in place. Returns the positions labelled, in order."""
    done: list[np.ndarray] = []
    left = budget
    for r in range(rounds):
        if left <= 0:
            break
        n = math.ceil(left / (rounds - r))
        chosen = pick(frames, score_frames(frames, thresholds, weights=weights), n)
        if len(chosen) == 0:
            break
        got = label_fn(chosen)
        for cls, y in frames.labels.items():
            y[chosen] = np.asarray(got.get(cls, np.zeros(len(chosen))), np.float64)
        done.append(chosen)
        left -= len(chosen)
    return np.concatenate(done) if done else np.zeros(0, np.int64)


class SceneChangePlacer:
    """Decides per ingest batch which frames to detect: a frame is labelled when its
    embedding has moved far enough (cosine distance) from the last labelled frame's. The
    threshold adapts so that about `budget` of the frames are labelled; no gap grows past
    `2 / budget` frames; the first frame is always labelled.

    The threshold starts as the median distance between frames one budget gap
    (`1 / budget` frames) apart, read off the first `1 / budget + 8` frames, which are
    labelled on that uniform stride meanwhile. A start from single-frame steps sits far
    too low and spends a short video's budget in its first seconds."""

    def __init__(self, budget: float, rate: float = 0.2):
        self.budget = budget
        self.rate = rate  # how fast the threshold follows the labelling rate
        self.max_gap = max(1, math.ceil(2.0 / budget))  # half the budget keeps the spacing
        self.lag = max(1, round(1.0 / budget))  # the uniform stride at this budget
        self.last: np.ndarray | None = None  # the last labelled frame's vector
        self.threshold: float | None = None  # set once the warm-up frames are in
        self.warm: list[np.ndarray] = []  # the first frames, until the threshold is set
        self.since = 0

    def _start(self, v: np.ndarray) -> None:
        self.warm.append(v)
        if len(self.warm) >= self.lag + 8:
            w = np.stack(self.warm)
            lagged = 1.0 - np.sum(w[self.lag:] * w[:-self.lag], axis=1)
            self.threshold = max(float(np.median(lagged)), 1e-6)
            self.warm = []

    def choose(self, vectors: np.ndarray) -> list[int]:
        """Positions of the batch's frames to run the detector on."""
        out = []
        for i, v in enumerate(np.asarray(vectors, np.float32)):
            self.since += 1
            if self.threshold is None:
                hit = self.last is None or self.since >= self.lag
                self._start(v)
            else:
                d = 1.0 - float(v @ self.last)
                hit = self.since >= self.max_gap or d >= self.threshold
                self.threshold *= math.exp(self.rate * (float(hit) - self.budget))
            if hit:
                out.append(i)
                self.last, self.since = v, 0
        return out


def scene_placer(sampling: dict) -> SceneChangePlacer | None:
    """The placer a video's stored sampling asks for (`detect_budget`), else None."""
    budget = sampling.get("detect_budget")
    return SceneChangePlacer(float(budget)) if budget else None


__all__ = ["Frames", "SceneChangePlacer", "Weights", "interpolate_in_time", "pick",
           "place_labels", "scene_placer", "score_frames"]

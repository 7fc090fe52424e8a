"""The scene-change placer of `ingest --detect-every auto` / `--detect-budget`: which frames
of a stream to run the detector on, decided as the frames arrive."""

from __future__ import annotations

import math

import numpy as np


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


__all__ = ["SceneChangePlacer", "scene_placer"]

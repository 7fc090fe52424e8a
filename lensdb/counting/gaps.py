"""Gap splitting: where labels cut interpolation's error most when the embedding sees the
counts only weakly (the other half of `placement.place_labels`).

Between two labels h frames apart, a count that moves like a random walk of local
volatility s^2 per frame leaves interpolation an expected absolute error of about
c * s * h^1.5 summed over the gap (c = pi/8 for a Brownian bridge). A label at the gap's
midpoint turns it into two gaps of h/2: the gain is c * s * (h^1.5 - 2 (h/2)^1.5).
Past a video's first or last label the count is carried flat; that open end of d frames
costs 2/3 * s * d^1.5, so its gain is (2/3 - pi/8) * s * d^1.5 once a label sits at its
end. The planner splits the gaps with the largest gains greedily (a split gap's halves go
back into the heap), so busy stretches get labels and still ones keep few.

The volatility comes from the labels themselves: per class, a variogram over label lags
1-3, E (dy)^2 = a + b * h (a: the detector's flicker, b: the drift per frame), fitted by
least squares. Per gap, the volatility is (dy^2 - a) / h, smoothed over neighbouring gaps
and shrunk halfway to b; its square root, scaled to mean 1 per class, summed over
classes, is the gap's s.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from lensdb.counting.blend import label_steps, nnls2
from lensdb.counting.interpolate import time_orders

CLOSED = math.pi / 8  # E|Brownian bridge| summed over a gap, per s * h^1.5
OPEN = 2 / 3  # E|Brownian motion| summed over an open end, per s * d^1.5
THRESHOLD_GAIN = 2.0  # gain factor of a gap whose end labels straddle a queried threshold


@dataclass(frozen=True)
class Gap:
    """A stretch of one video between labels, in ranks of its frames in time order."""

    video: int
    start: int  # rank of the label before it; -1 when the stretch opens the video
    end: int  # rank of the label after it; the video's length when it closes the video
    length: int  # frames in the video
    scale: float  # s: the local volatility's square root (class sum)


def variogram(lags: np.ndarray, sq_diffs: np.ndarray) -> tuple[float, float]:
    """(a, b) of E (dy)^2 = a + b * h, least squares, both kept >= 0 (`blend.nnls2`)."""
    h, d = np.asarray(lags, np.float64), np.asarray(sq_diffs, np.float64)
    b, a = nnls2(np.c_[h, np.ones_like(h)], d)
    return a, b


def _class_variograms(orders: dict[int, np.ndarray], labelled: np.ndarray,
                      labels: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """class -> `variogram` over label pairs 1-3 labels apart, lags in frames."""
    video, rank, at = [], [], []
    for v, idx in orders.items():
        r = np.flatnonzero(labelled[idx])
        video.append(np.full(len(r), v))
        rank.append(r.astype(np.float64))
        at.append(idx[r])
    if not at:
        return {cls: (0.0, 0.0) for cls in labels}
    video_, rank_, at_ = np.concatenate(video), np.concatenate(rank), np.concatenate(at)
    out = {}
    for cls, y in labels.items():
        lags, sq, _ = label_steps(video_, rank_, y[at_], lags=3)
        out[cls] = variogram(lags, sq)
    return out


def _scales(ranks: np.ndarray, idx: np.ndarray, labels: dict[str, np.ndarray],
            fits: dict[str, tuple[float, float]], thresholds: tuple[float, ...]) -> np.ndarray:
    """s of the len(ranks) + 1 stretches around a video's labels (open ends first/last)."""
    out = np.zeros(len(ranks) + 1)
    for cls, y in labels.items():
        a, b = fits[cls]
        yy = y[idx[ranks]]
        raw = np.maximum(np.diff(yy) ** 2 - a, 0) / np.maximum(np.diff(ranks), 1)
        if len(raw) > 2:
            raw = np.convolve(np.r_[raw[0], raw, raw[-1]], [0.25, 0.5, 0.25], "valid")
        s = np.sqrt(0.5 * (raw + b))
        inner = np.r_[s[:1], s, s[-1:]] if len(s) else np.full(2, math.sqrt(b))
        m = inner.mean()
        if m > 0:
            inner = inner / m
            for t in thresholds:  # interpolation flips the predicate inside such a gap
                cross = (np.minimum(yy[:-1], yy[1:]) < t) & (np.maximum(yy[:-1], yy[1:]) >= t)
                inner[1:-1] *= np.where(cross, THRESHOLD_GAIN, 1.0)
            out += inner
    return np.maximum(out, 1e-9)


def _gain(gap: Gap) -> float:
    if gap.start < 0 or gap.end >= gap.length:
        d = gap.end if gap.start < 0 else gap.length - 1 - gap.start
        return gap.scale * (OPEN - CLOSED) * d ** 1.5 if d > 0 else 0.0
    h = gap.end - gap.start
    if h < 2:
        return 0.0
    return gap.scale * CLOSED * (h ** 1.5 - (h // 2) ** 1.5 - (h - h // 2) ** 1.5)


def split_gaps(video: np.ndarray, ts: np.ndarray, labelled: np.ndarray,
               labels: dict[str, np.ndarray], n: int,
               thresholds: tuple[float, ...] = ()) -> np.ndarray:
    """Up to `n` frame positions to label, the midpoints of the gaps with the largest gains
    (see the module doc); `labelled`: mask of the frames labelled so far, `labels`: class ->
    counts (read where labelled)."""
    orders = {int(v): idx for v, idx in time_orders(video, ts).items()}
    fits = _class_variograms(orders, labelled, labels)
    heap: list[tuple[float, int, Gap]] = []
    tie = 0

    def push(gap: Gap) -> None:
        nonlocal tie
        gain = _gain(gap)
        if gain > 0:
            heapq.heappush(heap, (-gain, tie, gap))
            tie += 1

    for v, idx in orders.items():
        ranks = np.flatnonzero(labelled[idx])
        if len(ranks) == 0:
            push(Gap(v, -1, len(idx), len(idx), 1.0))
            continue
        s = _scales(ranks, idx, labels, fits, thresholds)
        bounds = [-1, *ranks.tolist(), len(idx)]
        for j in range(len(bounds) - 1):
            push(Gap(v, bounds[j], bounds[j + 1], len(idx), float(s[j])))
    chosen: list[int] = []
    while heap and len(chosen) < n:
        gap = heapq.heappop(heap)[2]
        if gap.start < 0 and gap.end >= gap.length:  # a video without labels: its middle
            at = gap.length // 2
        elif gap.start < 0:
            at = 0
        elif gap.end >= gap.length:
            at = gap.length - 1
        else:
            at = (gap.start + gap.end) // 2
        chosen.append(int(orders[gap.video][at]))
        if gap.start >= 0 or gap.end < gap.length:
            if gap.start >= 0:
                push(Gap(gap.video, gap.start, at, gap.length, gap.scale))
            if gap.end < gap.length:
                push(Gap(gap.video, at, gap.end, gap.length, gap.scale))
        else:
            push(Gap(gap.video, -1, at, gap.length, gap.scale))
            push(Gap(gap.video, at, gap.length, gap.length, gap.scale))
    return np.array(chosen, np.int64)


__all__ = ["split_gaps", "variogram"]

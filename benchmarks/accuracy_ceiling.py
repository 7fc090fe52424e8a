"""How far propagation in time could get on a video at best: the neighbour ceiling.

Propagation guesses a frame's count from counts on other frames. The ceiling gives it far
more than any label budget does. The detector runs on every frame except the one guessed.
The guess is the mean or median of the detector's counts on the w frames each side
(w = 1 to 10, so 20 smoothers). The best smoother is then picked in hindsight, on the very
frames it is scored on. That is ten times the labels of 1 in 10, plus a choice no method
can make, so it is optimistic. Only the embedding, which sees the frame itself, could beat
it, and at most where the detector's flicker shows in the picture. Where the ceiling
misses a target, no method that works from labels in time meets that target.

`lensdb bench accuracy` puts it next to each 1-in-K row: MAE against the same constant,
±1 accuracy and the F1 of each predicate, all on the same hidden frames.
"""

from __future__ import annotations

import numpy as np

from lensdb.bench.accuracy_estimates import prf
from lensdb.counting.metrics import rounded

WINDOWS = tuple(range(1, 11))  # frames each side of the guessed one


def smoothers(video: np.ndarray, ts: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Leave-one-out guesses of y (one array per window and mean/median), each from the
    same video's frames only, in time order."""
    y = np.asarray(y, np.float64)
    out = [np.full(len(y), np.nan) for _ in range(2 * len(WINDOWS))]
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        idx = idx[np.argsort(ts[idx], kind="stable")]
        seq = y[idx]
        for t in range(len(idx)):
            for j, w in enumerate(WINDOWS):
                around = np.concatenate([seq[max(0, t - w):t], seq[t + 1:t + 1 + w]])
                if len(around):
                    out[2 * j][idx[t]] = around.mean()
                    out[2 * j + 1][idx[t]] = np.median(around)
    return out


def per_frame(guesses: list[np.ndarray], truth: np.ndarray, hidden: np.ndarray,
              base_mae: float) -> dict[str, float]:
    """The best MAE (also / `base_mae`, the row's constant) and the best ±1 accuracy of the
    smoothers on the hidden frames, each picked in hindsight."""
    usable = [g for g in guesses if not np.isnan(g[hidden]).any()]
    if not usable or not len(hidden):
        return {"ceiling_mae": float("nan"), "ceiling_mae_vs_constant": float("nan"),
                "ceiling_within1": float("nan")}
    mae = min(float(np.mean(np.abs(g[hidden] - truth[hidden]))) for g in usable)
    within = max(float(np.mean(np.abs(rounded(g[hidden]) - truth[hidden]) <= 1))
                 for g in usable)
    return {"ceiling_mae": mae,
            "ceiling_mae_vs_constant": mae / base_mae if base_mae else float("nan"),
            "ceiling_within1": within}


def predicate_f1(guesses: list[np.ndarray], truth: np.ndarray, hidden: np.ndarray,
                 k: int) -> float:
    """The best F1 of `count >= k` (decided on the rounded guess, as queries decide) over
    the smoothers on the hidden frames, picked in hindsight."""
    want = truth[hidden] >= k
    scores = [prf(want, rounded(g[hidden]) >= k)["f1"] for g in guesses
              if not np.isnan(g[hidden]).any()]
    scores = [s for s in scores if not np.isnan(s)]
    return max(scores) if scores else float("nan")

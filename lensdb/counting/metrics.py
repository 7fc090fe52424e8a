"""Figures on held-out frames, each next to a constant baseline (the training part's mean).

Accuracy figures compare the prediction rounded to the nearest count (never below 0) with
the detector's count: exact, within +-1, within +-2. Confusion matrices bin both sides
into 0, 1-2, 3-5, 6+ (rows: true bin, columns: predicted bin).
"""

from __future__ import annotations

import math

import numpy as np

BINS: tuple[str, ...] = ("0", "1-2", "3-5", "6+")
BIN_EDGES = np.array([1, 3, 6])  # a count c falls in bin searchsorted(edges, c, "right")
FIGURES = ("mae", "mse", "rmse", "r2", "exact", "within1", "within2")


def rounded(pred: np.ndarray) -> np.ndarray:
    return np.maximum(np.rint(np.asarray(pred, dtype=np.float64)), 0.0)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """MAE, MSE, RMSE, R2 (None when the truth is constant), exact / +-1 / +-2 accuracy."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if len(t) == 0:
        return {name: None for name in FIGURES} | {"n": 0}
    err = p - t
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else None
    off = np.abs(rounded(p) - t)
    return {
        "n": int(len(t)),
        "mae": float(np.mean(np.abs(err))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": r2,
        "exact": float(np.mean(off == 0)),
        "within1": float(np.mean(off <= 1)),
        "within2": float(np.mean(off <= 2)),
    }


def weighted_se(x: np.ndarray, w: np.ndarray) -> float:
    """Standard error of `np.average(x, weights=w)` (the plain one when the weights are
    equal)."""
    n = len(x)
    if n < 2:
        return float("inf")
    dev = x - np.average(x, weights=w)
    return float(np.sqrt(np.sum(w ** 2 * dev ** 2) * n / (n - 1)) / np.sum(w))


def bin_index(values: np.ndarray) -> np.ndarray:
    return np.searchsorted(BIN_EDGES, np.asarray(values, dtype=np.float64), side="right")


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """4x4 counts of (true bin, predicted bin), predictions rounded first."""
    m = np.zeros((len(BINS), len(BINS)), dtype=np.int64)
    np.add.at(m, (bin_index(y_true), bin_index(rounded(y_pred))), 1)
    return m.tolist()


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    baseline: float,
    video_ids: np.ndarray | None = None,
    video_names: dict[int, str] | None = None,
) -> dict:
    """Everything reported for one class on the held-out part, model next to baseline."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    b = np.full(len(t), float(baseline))
    out: dict = {
        "baseline_value": float(baseline),
        "model": regression_metrics(t, p),
        "baseline": regression_metrics(t, b),
        "confusion": {"bins": list(BINS), "model": confusion(t, p), "baseline": confusion(t, b)},
        "per_video": [],
    }
    if video_ids is not None:
        vids = np.asarray(video_ids)
        for vid in np.unique(vids):
            mask = vids == vid
            model = regression_metrics(t[mask], p[mask])
            base = regression_metrics(t[mask], b[mask])
            out["per_video"].append(
                {
                    "video_id": int(vid),
                    "video": (video_names or {}).get(int(vid), str(int(vid))),
                    "frames": int(mask.sum()),
                    "true_mean": float(t[mask].mean()),
                    "mae": model["mae"],
                    "baseline_mae": base["mae"],
                    "within1": model["within1"],
                    "baseline_within1": base["within1"],
                }
            )
    return out


def mae_ratio(report: dict) -> float | None:
    """Model MAE over baseline MAE (below 1: the model adds something)."""
    m, b = report["model"]["mae"], report["baseline"]["mae"]
    if m is None or not b:
        return None
    return m / b

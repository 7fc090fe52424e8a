"""Are the error estimates that queries print honest? (`lensdb bench accuracy`)

For every set of kept labels the benchmark fits, the estimates are computed the way a
query computes them (`lensdb.query.estimate`, held-out basis), from the labelled frames
only:
- `count(c) >= k`: precision and recall of the out-of-fold predictions against the labels,
  each label weighed by the time it stands for (weighted Wilson 95% intervals), what
  `lensdb query "count(c) >= k"` prints under its table;
- `avg(count(c))` over the video: the labels plus the predictions of the other frames, ± the
  95% bound from the out-of-fold residuals (`mean_error_bound`);
- `max(count(c))` and `min(count(c))` over the video, the same way, ± `extreme_error_bound`;
- `frames WHERE count(c) >= k`: the frames the predicate selects, ± `ratio_error_bound`.
Then the hidden frames say what was true: the precision and recall of the deployed
predictions there, and the average of the detector's counts over every frame. An interval
*holds* when the truth is inside it; for precision and recall the truth above it is
*pessimistic* (out-of-fold predictions see labels twice as far apart as deployed ones) and
below it *overstated*, the one outcome a user must not meet more often than 5% of the time.
"""

from __future__ import annotations

import numpy as np

from lensdb.counting.metrics import rounded
from lensdb.query.estimate import (
    Confusion,
    extreme_error_bound,
    mean_error_bound,
    precision_recall,
    ratio_error_bound,
)
from lensdb.query.estimate_sql import time_weights


def prf(truth: np.ndarray, guess: np.ndarray) -> dict:
    """Precision, recall (NaN where undefined) and F1 of boolean guesses."""
    tp, fp, fn = Confusion.of(truth, guess, np.ones(len(truth)))[:3]
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def _residuals(y_kept: np.ndarray, oof: np.ndarray) -> tuple[float, float, int]:
    """(bias, sample sd, n) of the out-of-fold residuals, as the query's SQL reads them."""
    r = np.asarray(oof, np.float64) - y_kept
    return float(r.mean()), float(np.std(r, ddof=1)) if len(r) > 1 else 0.0, len(r)


def _verdict(value: float, low: float, high: float, tol: float = 1e-9) -> str:
    """Inside, above or below [low, high]; `tol` absorbs rounding (Wilson's 1 - 1e-16)."""
    if low - tol <= value <= high + tol:
        return "inside"
    return "above" if value > high else "below"


def query_weights(video: np.ndarray, ts: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The weight a query's estimate gives each of the `kept` frames (positions) as labels
    (`time_weights`), each video's duration taken as its last frame's time plus a step."""
    duration = np.zeros(len(kept))
    for v in np.unique(video[kept]):
        t = np.sort(ts[video == v])
        duration[video[kept] == v] = t[-1] + (float(np.median(np.diff(t))) if len(t) > 1 else 0)
    return time_weights(video[kept], ts[kept], duration)


def selection_rows(y_kept: np.ndarray, oof: np.ndarray, y_hidden: np.ndarray,
                   pred_hidden: np.ndarray, k: int, weights: np.ndarray | None = None
                   ) -> list[dict]:
    """Estimated (from the labelled frames' out-of-fold predictions, weighed by `weights`,
    `query_weights`; None: alike) and actual (hidden frames) precision and recall of
    `count >= k`, and the number of frames it selects; no row where an estimate or the truth
    is undefined."""
    w = np.ones(len(y_kept)) if weights is None else weights
    estimate = precision_recall(Confusion.of(y_kept >= k, rounded(oof) >= k, w))
    actual = prf(y_hidden >= k, rounded(pred_hidden) >= k)
    out = []
    for kind in ("precision", "recall"):
        est, got = estimate[kind], actual[kind]
        if est is None or np.isnan(got):
            continue
        out.append({"kind": kind, "estimate": est["value"], "low": est["low"],
                    "high": est["high"], "n": est["n"], "actual": got,
                    "verdict": _verdict(got, est["low"], est["high"])})
    # `frames WHERE count >= k`: the labelled matches plus the predicted ones, ± the bound
    predicted = int(np.sum(rounded(pred_hidden) >= k))
    half = (ratio_error_bound(estimate["precision"], estimate["recall"], predicted)
            if estimate["precision"] and estimate["recall"] else None)
    if half is not None:
        value = float(np.sum(y_kept >= k) + predicted)
        truth = float(np.sum(y_kept >= k) + np.sum(y_hidden >= k))
        out.append({"kind": "frames", "estimate": value, "low": value - half,
                    "high": value + half, "n": len(y_kept), "actual": truth,
                    "verdict": _verdict(truth, value - half, value + half)})
    return out


def mean_row(y_kept: np.ndarray, oof: np.ndarray, y_all: np.ndarray, deployed: np.ndarray,
             hidden: np.ndarray) -> dict:
    """`avg(count)` over every frame as a query answers it (labels where there are labels),
    its ± bound from the out-of-fold residuals, and the true average."""
    bias, sd, n = _residuals(y_kept, oof)
    half = len(hidden) / len(y_all) * mean_error_bound(bias, sd, n)
    value = (float(y_kept.sum()) + float(deployed[hidden].sum())) / len(y_all)
    truth = float(np.mean(y_all))
    return {"kind": "avg", "estimate": value, "low": value - half, "high": value + half,
            "n": n, "actual": truth, "verdict": _verdict(truth, value - half, value + half)}


def extreme_rows(y_kept: np.ndarray, oof: np.ndarray, y_all: np.ndarray,
                 deployed: np.ndarray, hidden: np.ndarray) -> list[dict]:
    """`max(count)` and `min(count)` over every frame as a query answers them, their ±
    bound from the out-of-fold residuals, and the truth."""
    bias, sd, n = _residuals(y_kept, oof)
    half = extreme_error_bound(bias, sd, n, len(hidden))
    best = np.asarray(y_all, np.float64).copy()
    best[hidden] = deployed[hidden]
    out = []
    for kind, f in (("max", np.max), ("min", np.min)):
        value, truth = float(f(best)), float(f(y_all))
        out.append({"kind": kind, "estimate": value, "low": value - half,
                    "high": value + half, "n": n, "actual": truth,
                    "verdict": _verdict(truth, value - half, value + half)})
    return out


def summary(rows: list[dict]) -> list[dict]:
    """Per label strategy and kind of estimate: how often the truth fell inside, above and
    below the interval."""
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        for kind in ("precision", "recall", "frames", "avg", "max", "min"):
            mine = [r for r in rows if r["kind"] == kind and r["strategy"] == strategy]
            if mine:
                out.append({"strategy": strategy, "kind": kind, "cases": len(mine),
                            **{v: sum(r["verdict"] == v for r in mine)
                               for v in ("inside", "above", "below")}})
    return out


def goals(held: list[dict], goal) -> list[dict]:
    """LensDB's own aims for its estimates, from `summary` (each label strategy, every K):
    precision and recall overstated at most 5% of the time; the frames, avg, max and min
    bounds holding at least 95% of it."""
    out = []
    for s in held:
        where = f"{s['strategy']} labels"
        if s["kind"] in ("frames", "avg", "max", "min"):
            share = s["inside"] / s["cases"]
            what = ("frames WHERE count(c) >= k" if s["kind"] == "frames"
                    else f"{s['kind']}(count(c)) over a video")
            out.append(goal(f"{where}: the ± of {what} holds "
                            "(truth inside) in >= 95% of cases (LensDB's own aim)",
                            f"{s['inside']} of {s['cases']}", share >= 0.95))
        else:
            out.append(goal(f"{where}: the query's {s['kind']} estimate, truth below its "
                            "95% interval in <= 5% of cases (LensDB's own aim)",
                            f"{s['below']} of {s['cases']} below, {s['above']} above "
                            f"(pessimistic)", s["below"] <= 0.05 * s["cases"]))
    return out

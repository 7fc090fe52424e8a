"""Interpolation in time and the embedding model, blended per frame by their error variances.

A model of what the labels show (nothing in it is tuned: three numbers are estimated per
class from the store's own labels):
- the detector's count is y_t = x_t + e_t: x_t moves like a random walk, variance `q` per
  second, and e_t is the detector's flicker, variance `eta2`, independent frame to frame;
- interpolating between labels `a` seconds before and `b` seconds after misses x_t with
  variance q*a*b/(a+b) + eta2*(w^2 + (1-w)^2), w = a/(a+b) (a Brownian bridge between two
  noisy labels); holding the one label on one side `a` away: q*a + eta2;
- the embedding model (kNN) misses x_t with a variance `v` that does not depend on where
  the frame sits between labels.
`q` and `eta2` come from a non-negative least-squares fit of two things every labelled
store has: the squared change between labels of a video one to four labels apart
(q*dt + 2*eta2: a variogram, whose several lags separate the slope from the intercept; with
consecutive steps alone and evenly spaced labels the two are nearly collinear) and the
squared miss of interpolation at held-out labels (the bridge variance + eta2). `v` is the
embedding model's held-out MSE less `eta2`. The blend weighs the interpolation by
v / (v + its variance) (inverse variances): next to a label it is the interpolation, in the
middle of a long gap where counts move fast it leans on the embedding. Because the weights
follow each frame's own distance to its labels, the blend's out-of-fold figure (held-out
labels sit twice as far from their neighbours as unlabelled frames do) measures it at that
spacing honestly, and at the real spacing it leans on interpolation more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensdb.counting.interpolate import Interpolated

_FLOOR = 1e-6  # variances never reach 0 (a weight of exactly 0 or 1 only by the data)


@dataclass(frozen=True)
class Blend:
    q: float  # variance per second of the true count's random walk
    eta2: float  # the detector's flicker: variance of its count around the truth, per frame
    v: float  # the embedding model's error variance around the truth

    @classmethod
    def fit(cls, steps: tuple[np.ndarray, np.ndarray, np.ndarray], held: Interpolated,
            held_y: np.ndarray, held_emb: np.ndarray,
            held_weights: np.ndarray | None = None) -> Blend:
        """`steps`: (dt, squared count change, weight) of label pairs (`label_steps`); `held`:
        interpolation at held-out labels (counts `held_y`), `held_emb`: the embedding model
        there; `held_weights`: the frames each held-out label stands for (`label_weights`).
        Every row weighs as the stretch of time it stands for: a step by its dt per lag, a
        held-out label by its weight, so labels placed densely where counts move fast do not
        make the flicker look larger than it is (their short steps are the busy ones)."""
        dt, d2, step_w = steps
        held_w = (np.ones(len(held_y)) if held_weights is None
                  else np.asarray(held_weights, np.float64))
        both = held.inside & np.isfinite(held.dt_before) & np.isfinite(held.dt_after)
        a, b = held.dt_before[both], held.dt_after[both]
        bridge, noise = _bridge(a, b)
        miss2 = (np.asarray(held_y, np.float64)[both] - held.value[both]) ** 2
        design = np.concatenate([np.stack([dt, np.full(len(dt), 2.0)], 1),
                                 np.stack([bridge, noise + 1.0], 1)])
        target = np.concatenate([d2, miss2])
        root = np.sqrt(np.concatenate([_mean_one(step_w), _mean_one(held_w[both])]))
        q, eta2 = nnls2(design * root[:, None], target * root)
        emb_mse = float(np.average((np.asarray(held_emb, np.float64)
                                    - np.asarray(held_y, np.float64)) ** 2, weights=held_w)
                        ) if len(held_y) else 0.0
        return cls(q=q, eta2=eta2, v=max(emb_mse - eta2, _FLOOR))

    def interp_variance(self, interp: Interpolated) -> np.ndarray:
        """Variance of the interpolation's miss of the truth, per frame (inf: outside)."""
        a, b = interp.dt_before, interp.dt_after
        both = np.isfinite(a) & np.isfinite(b)
        bridge, noise = _bridge(np.where(both, a, 0.0), np.where(both, b, 0.0))
        one_side = np.where(np.isfinite(a), a, np.where(np.isfinite(b), b, np.inf))
        var = np.where(both, self.q * bridge + self.eta2 * noise,
                       self.q * one_side + self.eta2)
        return np.where(interp.inside, np.maximum(var, _FLOOR), np.inf)

    def weight(self, interp: Interpolated) -> np.ndarray:
        """The interpolation's weight per frame (0 outside the labels)."""
        return self.v / (self.v + self.interp_variance(interp))

    def predict(self, interp: Interpolated, emb: np.ndarray, fallback: np.ndarray
                ) -> np.ndarray:
        """The blend inside the labels, `fallback` (the embedding model) outside."""
        w = self.weight(interp)
        mixed = w * np.nan_to_num(interp.value) + (1 - w) * np.asarray(emb, np.float64)
        out = np.where(interp.inside, mixed, np.asarray(fallback, np.float64))
        return np.maximum(out, 0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": "blend", "q_per_second": self.q, "flicker_variance": self.eta2,
                "embedding_variance": self.v}


def label_steps(video: np.ndarray, ts: np.ndarray, y: np.ndarray, lags: int = 4
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dt, squared count change, weight) between labels of the same video 1..`lags` apart
    in time order (a variogram: several lags separate the drift's slope from the flicker's
    intercept far better than consecutive steps alone); weight: dt / lag, the time each
    pair stands for (even labels: the same for all pairs)."""
    video, ts, y = np.asarray(video), np.asarray(ts, np.float64), np.asarray(y, np.float64)
    order = np.lexsort((ts, video))
    v, t, c = video[order], ts[order], y[order]
    dts, d2s, ws = [], [], []
    for lag in range(1, lags + 1):
        same = (v[lag:] == v[:-lag]) & (t[lag:] > t[:-lag])
        dts.append((t[lag:] - t[:-lag])[same])
        d2s.append(((c[lag:] - c[:-lag]) ** 2)[same])
        ws.append(dts[-1] / lag)
    return np.concatenate(dts), np.concatenate(d2s), np.concatenate(ws)


def _mean_one(w: np.ndarray) -> np.ndarray:
    """Weights scaled to mean 1 (each block of rows keeps its share of the fit)."""
    m = float(w.mean()) if len(w) else 0.0
    return w / m if m > 1e-12 else np.ones(len(w))


def _bridge(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a*b/(a+b), w^2 + (1-w)^2) for a frame a after and b before its labels."""
    span = a + b
    safe = np.where(span > 0, span, 1.0)
    w = np.where(span > 0, a / safe, 0.0)
    return np.where(span > 0, a * b / safe, 0.0), w**2 + (1 - w) ** 2


def nnls2(design: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least squares for two non-negative coefficients (the best of the four faces)."""
    if len(target) == 0:
        return 0.0, 0.0
    best: tuple[float, float, float] | None = None
    candidates: list[tuple[float, float]] = [(0.0, 0.0)]
    sol, *_ = np.linalg.lstsq(design, target, rcond=None)
    candidates.append((float(sol[0]), float(sol[1])))
    for j in range(2):
        col = design[:, j]
        denom = float(col @ col)
        coef = float(col @ target) / denom if denom > 0 else 0.0
        candidates.append((coef, 0.0) if j == 0 else (0.0, coef))
    for q, e in candidates:
        if q < 0 or e < 0:
            continue
        resid = float(np.sum((design @ np.array([q, e]) - target) ** 2))
        if best is None or resid < best[0]:
            best = (resid, q, e)
    assert best is not None  # (0, 0) is always feasible
    return best[1], best[2]


"""Out-of-fold values of the fill-in candidates, store-free: what `fit.fit_class` picks by.

Folds interleave by label rank within each video (`split.fill_in_folds`). `out_of_fold`
predicts each fold from the others (the blend's and the combination's training rows nested
inside, so no value depends on its own label); `wide_out_of_fold` predicts it again at twice
that gap, without the neighbouring folds either; `at_label_spacing` carries each label's
error from those two gaps to the labels' own spacing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lensdb.counting.blend import Blend, label_steps
from lensdb.counting.combine import Combiner, EmbeddingRidge
from lensdb.counting.interpolate import (
    Interpolated,
    interpolate,
    interpolate_median,
    time_orders,
)

MIN_WIDE = 20  # labels below which the pick uses the out-of-fold errors alone


@dataclass
class Frames:
    """Every frame (positions 0..n-1) and which of them are labelled with what."""

    vectors: np.ndarray  # (n, D) as queries see them
    video: np.ndarray  # (n,) video id
    ts: np.ndarray  # (n,) seconds (pts)
    labelled: np.ndarray  # positions of labelled frames
    y: np.ndarray  # detector count per labelled frame
    names: dict[int, str] | None = None  # video id -> name, for per-video figures


Fitter = Callable[[np.ndarray, np.ndarray], Any]  # (vectors, counts) -> .predict(vectors)


def label_weights(frames: Frames) -> np.ndarray:
    """Per label, the frames it stands for: itself, plus half of each unlabelled frame
    between it and the next label either side in its video (all of those past its video's
    first or last label). Mean 1. Uniform labels weigh alike; placed labels, denser where
    counts move, weigh less there, so a mean over labels weighted so is a mean over frames."""
    w = np.ones(len(frames.labelled))
    for rank, slot, n in _label_ranks(frames):
        between = (np.diff(rank) - 1) / 2  # half the unlabelled frames to each side
        w[slot] += np.r_[rank[0], between] + np.r_[between, n - 1 - rank[-1]]
    return w / w.mean()


def _label_ranks(frames: Frames) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Per video with labels: (the labels' ranks among its frames in time order, their
    positions into the labelled arrays, its frame count)."""
    slot = np.full(len(frames.ts), -1)
    slot[np.asarray(frames.labelled)] = np.arange(len(frames.labelled))
    for order in time_orders(frames.video, frames.ts).values():
        rank = np.flatnonzero(slot[order] >= 0)
        if len(rank):
            yield rank, slot[order[rank]], len(order)


def spacing_spread(frames: Frames) -> float:
    """How unevenly the labels are spaced in time: the coefficient of variation of the
    steps between consecutive labels of a video (in frame ranks, each video's steps over
    their mean, so videos labelled 1 in 5 and 1 in 20 are each even). 0 for
    `--detect-every K`; scene-change and placed labels (`lensdb label`), dense where
    counts move, lie well above 0.3. 0 with fewer than two steps."""
    steps: list[np.ndarray] = []
    for rank, _, _ in _label_ranks(frames):
        if len(rank) > 1:
            d = np.diff(rank).astype(np.float64)
            steps.append(d / d.mean())
    if not steps or sum(len(d) for d in steps) < 2:
        return 0.0
    return float(np.concatenate(steps).std())


def at_label_spacing(y: np.ndarray, oof: np.ndarray, wide: np.ndarray | None) -> np.ndarray:
    """Per label, its absolute error carried from the out-of-fold gap (2 label steps
    between the labels around it) to the gap unlabelled frames sit in (1 step): linearly
    from the errors at 2 and 4 steps (`wide`), 1.5 e2 - 0.5 e4. Interpolation loses more
    than the embedding models as gaps widen, so the out-of-fold error alone favours the
    embedding. For errors that grow like the square root of the gap (a random walk between
    labels) the line overstates the error at 1 step: the cautious side. Without `wide`, e2."""
    e2 = np.abs(np.asarray(oof, np.float64) - y)
    if wide is None:
        return e2
    return 1.5 * e2 - 0.5 * np.abs(np.asarray(wide, np.float64) - y)


def bases(frames: Frames, train: np.ndarray, query: np.ndarray, fitters: dict[str, Fitter],
          embedding: str, ridge: bool) -> dict[str, Any]:
    """Base predictions at frame positions `query` from the labels at `train` (positions
    into the labelled arrays)."""
    lab = frames.labelled[train]
    xq = frames.vectors[query]
    out: dict[str, Any] = {
        "constant": np.full(len(query), float(frames.y[train].mean()), np.float32),
        "interp": interpolate(frames.video[lab], frames.ts[lab], frames.y[train],
                              frames.video[query], frames.ts[query]),
    }
    out["median"] = interpolate_median(frames.video[lab], frames.ts[lab], frames.y[train],
                                       frames.video[query], frames.ts[query])
    models = {name: fit(frames.vectors[lab], frames.y[train]) for name, fit in fitters.items()}
    for name, model in models.items():
        out[name] = model.predict(xq)
    if ridge:
        out["ridge"] = EmbeddingRidge(frames.vectors[lab], frames.y[train]).predict(xq)
    out["emb"] = out[embedding]
    return out


def interp_or(interp: Interpolated, fallback: np.ndarray) -> np.ndarray:
    return np.where(interp.inside, interp.value, fallback).astype(np.float32)


def _singles(base: dict[str, Any], fitters: dict[str, Fitter]) -> dict[str, np.ndarray]:
    """The candidates that need no other candidate's held-out rows, from `bases` output."""
    return {"constant": base["constant"], "interp": interp_or(base["interp"], base["emb"]),
            "median": interp_or(base["median"], base["emb"]),
            **{name: base[name] for name in fitters}}


def _stacked(name: str, model: Any, base: dict[str, Any]) -> np.ndarray:
    """A fitted blend's or combination's prediction from `bases` output."""
    if name == "blend":
        return model.predict(base["interp"], base["knn"], base["emb"])
    return model.predict(base["interp"], base["knn"], base["ridge"], base["emb"])


def out_of_fold(frames: Frames, folds: np.ndarray, fitters: dict[str, Fitter],
                embedding: str, stacked: tuple[str, ...], weights: np.ndarray
                ) -> tuple[dict[str, np.ndarray], list, dict[str, np.ndarray] | None]:
    """(candidate -> out-of-fold values, [(held positions, base inputs)] per fold, the
    out-of-fold values at twice the gap (`wide_out_of_fold`));
    `stacked`: the candidates fitted on other candidates' held-out rows (blend, combo);
    `weights`: `label_weights(frames)`, for the blend's fit."""
    n = len(frames.labelled)
    combo = "combo" in stacked
    names = ("constant", "interp", "median", *fitters, *stacked)
    oof = {m: np.zeros(n, np.float32) for m in names}
    every = np.arange(n)
    fold_ids = np.unique(folds)
    single: dict = {}
    for f in fold_ids:
        held = every[folds == f]
        base = bases(frames, every[folds != f], frames.labelled[held], fitters, embedding,
                     combo)
        single[f] = (held, base)
        for name, values in _singles(base, fitters).items():
            oof[name][held] = values
    if not stacked:
        return oof, list(single.values()), wide_out_of_fold(frames, folds, fitters, embedding,
                                                            {})
    pair_rows: dict[int, list[tuple[np.ndarray, dict]]] = {f: [] for f in fold_ids}
    for i, f in enumerate(fold_ids):
        for g in fold_ids[i + 1:]:
            train = every[(folds != f) & (folds != g)]
            for outer, rows in ((f, g), (g, f)):
                rows_at = every[folds == rows]
                base = bases(frames, train, frames.labelled[rows_at], {
                    k: v for k, v in fitters.items() if k == "knn"}, "knn", combo)
                pair_rows[outer].append((rows_at, base))
    stackers: dict[int, dict[str, Any]] = {}
    for f in fold_ids:
        held, b = single[f]
        stackers[f] = {}
        if "blend" in stacked:
            stackers[f]["blend"] = fit_blend(frames, pair_rows[f], every[folds != f],
                                             weights)
        if combo:
            stackers[f]["combo"] = fit_combiner(frames, pair_rows[f])
        for name, model in stackers[f].items():
            oof[name][held] = _stacked(name, model, b)
    wide = wide_out_of_fold(frames, folds, fitters, embedding, stackers)
    return oof, list(single.values()), wide


def wide_out_of_fold(frames: Frames, folds: np.ndarray, fitters: dict[str, Fitter],
                     embedding: str, stackers: dict[int, dict[str, Any]]
                     ) -> dict[str, np.ndarray] | None:
    """Out-of-fold values at twice the out-of-fold gap: fold f predicted without folds f-1,
    f and f+1 (mod the fold count), so a held-out label's nearest remaining labels of its
    video are two ranks away each side; the stacked candidates keep fold f's parameters.
    None with fewer than 4 folds or `MIN_WIDE` labels (too little would be left to train
    on, and a handful of errors says nothing of how they grow with the gap)."""
    n_folds = int(folds.max()) + 1 if len(folds) else 0
    if n_folds < 4 or len(folds) < MIN_WIDE:
        return None
    n = len(frames.labelled)
    every = np.arange(n)
    out: dict[str, np.ndarray] = {}
    for f in np.unique(folds):
        held = every[folds == f]
        train = every[~np.isin(folds, [f, (f - 1) % n_folds, (f + 1) % n_folds])]
        base = bases(frames, train, frames.labelled[held], fitters, embedding,
                     "combo" in stackers.get(f, {}))
        values = _singles(base, fitters)
        for name, model in stackers.get(f, {}).items():
            values[name] = _stacked(name, model, base)
        for name, v in values.items():
            out.setdefault(name, np.zeros(n, np.float32))[held] = v
    return out


def fit_blend(frames: Frames, rows: list[tuple[np.ndarray, dict]], kept: np.ndarray,
              weights: np.ndarray) -> Blend:
    """The blend's three numbers from held-out rows and the steps between the `kept` labels
    (positions into the labelled arrays); `weights`: `label_weights(frames)`."""
    at = np.concatenate([r for r, _ in rows])
    lab = frames.labelled[kept]
    steps = label_steps(frames.video[lab], frames.ts[lab], frames.y[kept])
    return Blend.fit(steps, _concat([b["interp"] for _, b in rows]), frames.y[at],
                     np.concatenate([b["knn"] for _, b in rows]), weights[at])


def fit_combiner(frames: Frames, rows: list[tuple[np.ndarray, dict]]) -> Combiner:
    """A combination fitted on (positions into labelled, base predictions there) blocks."""
    at = np.concatenate([r for r, _ in rows])
    interp = _concat([b["interp"] for _, b in rows])
    knn = np.concatenate([b["knn"] for _, b in rows])
    ridge = np.concatenate([b["ridge"] for _, b in rows])
    return Combiner.fit(interp, knn, ridge, frames.y[at])


def _concat(parts: list[Interpolated]) -> Interpolated:
    return Interpolated(**{k: np.concatenate([getattr(p, k) for p in parts])
                           for k in Interpolated.__dataclass_fields__})

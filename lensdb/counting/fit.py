"""Fit one class's counting methods on labelled frames, store-free (the benchmark uses it).

1. The embedding model (MLP or kNN, picked by the *new footage* validation of `split`) is
   evaluated on the held-out part of the split: the figures for later time / other videos.
   It is also the fallback for frames outside the labels of their video.
2. *Fill-in*: every candidate (constant, kNN, interpolation, interpolation through a
   running median of 3 labels, the blend of interpolation and kNN, the
   combination, and the MLP when it won the new-footage validation) is predicted out of
   fold on the labelled
   frames: fold = rank of the labelled frame within its video (in time) mod F, so a
   held-out label's nearest remaining labels are twice as far apart as the labels around
   an unlabelled frame (pessimistic). The blend's and the combination's own training rows
   are computed without the held-out fold too (nested), so no out-of-fold value ever
   depends on its frame's label. The blend wins unless another candidate is better by more
   than two paired standard errors (`_pick`).
3. Every method is refitted on every label and predicts every frame (`deploy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lensdb.counting.blend import Blend, label_steps
from lensdb.counting.combine import Combiner, EmbeddingRidge
from lensdb.counting.config import TrainConfig
from lensdb.counting.interpolate import Interpolated, interpolate, interpolate_median
from lensdb.counting.knn import KnnPropagator
from lensdb.counting.metrics import evaluate, regression_metrics
from lensdb.counting.split import Split, fill_in_folds
from lensdb.counting.train import Progress, fit_mlp

CANDIDATES = ("interp", "median", "knn", "blend", "mlp", "combo")  # tie order: the simpler first
FILL_IN_NOTE = ("out-of-fold on the labelled frames, {folds} interleaved folds by label rank "
                "within each video; pessimistic: a held-out label's nearest remaining labels "
                "are twice as far apart as the labels around an unlabelled frame")


@dataclass
class Frames:
    """Every frame (positions 0..n-1) and which of them are labelled with what."""

    vectors: np.ndarray  # (n, D) as queries see them
    video: np.ndarray  # (n,) video id
    ts: np.ndarray  # (n,) seconds (pts)
    labelled: np.ndarray  # positions of labelled frames
    y: np.ndarray  # detector count per labelled frame
    names: dict[int, str] | None = None  # video id -> name, for per-video figures


@dataclass
class ClassFit:
    method: str  # deployed: interp, median, knn, blend, mlp or combo
    embedding: str  # the embedding model: predicts frames outside the labels (and ingested
    # later): the deployed method when it is mlp or knn, else the new-footage pick
    validation_mae: dict[str, float]  # new-footage validation: mlp / knn / baseline
    test: dict  # new footage: the embedding model on the split's held-out part
    fill_in: dict[str, dict]  # candidate -> regression_metrics, out of fold (+ constant)
    fill_in_test: dict  # metrics.evaluate() of the winner out of fold vs the constant
    why: str  # one line: the winner and the candidates' fill-in MAE
    oof: dict[str, np.ndarray]  # candidate -> out-of-fold prediction per labelled frame
    deploy: dict[str, np.ndarray]  # candidate -> prediction for every frame, all labels
    predictor: Any  # the embedding model refitted on every label (MlpPredictor or kNN)
    combiner: dict | None = None  # the deployed blend's or combination's parameters
    mlp_epochs: int | None = None  # epochs each MLP fit runs (the validation's best)


Fitter = Callable[[np.ndarray, np.ndarray], Any]  # (vectors, counts) -> .predict(vectors)


def fit_class(frames: Frames, split: Split | None, config: TrainConfig, cls: str = "",
              init_state: dict | None = None, progress: Progress | None = None,
              deploy_all: bool = False) -> ClassFit:
    """Everything above for one class; `split` None skips the new-footage part (then the
    embedding model is kNN unless `config.method` is mlp). `deploy_all`: `deploy` holds
    every candidate (the combination too when another method won; for benchmarks)."""
    y = np.asarray(frames.y, np.float32)
    val_mae, test, embedding, epochs = _new_footage(frames, split, config, cls, init_state,
                                                    progress)
    fitters: dict[str, Fitter] = {}
    if config.method != "mlp":
        fitters["knn"] = lambda a, b: KnnPropagator(a, b, config.knn_k)
    if embedding == "mlp":  # an MLP that lost on new footage is not refitted F + 1 times
        fitters["mlp"] = _mlp_fitter(config, epochs, init_state)
    allowed = _allowed(config.method)
    folds = fill_in_folds(frames.video[frames.labelled], frames.ts[frames.labelled],
                          config.folds)
    stacked = tuple(m for m in ("blend", "combo") if m in allowed
                    and (m == "combo" or "knn" in fitters))
    oof, single = _out_of_fold(frames, folds, fitters, embedding, stacked)
    fill_in = {m: regression_metrics(y, v) for m, v in oof.items()}
    blend = (_fit_blend(frames, single, np.arange(len(frames.labelled)))
             if "blend" in stacked else None)
    method, beaten = _pick(y, oof, [m for m in CANDIDATES if m in allowed and m in oof])
    if method in ("mlp", "knn"):  # it predicts frames ingested later too
        embedding = method
    kept = tuple(m for m in stacked if m == method or (deploy_all and m in oof))
    deploy, predictor, params = _deploy(frames, fitters, embedding, single, kept, blend)
    if progress:
        progress(f"{cls}: fill-in", 1, 1)
    listed = ", ".join(f"{m} {fill_in[m]['mae']:.3f}" for m in (*CANDIDATES, "constant")
                       if m in fill_in)
    why = (f"{method}: {beaten} (out-of-fold MAE: {listed}; "
           f"{FILL_IN_NOTE.format(folds=config.folds)})"
           if config.method == "auto" else f"{method}: forced by --method ({listed})")
    lab_video = frames.video[frames.labelled]
    fill_in_test = evaluate(y, oof[method], float(y.mean()), lab_video, frames.names)
    fill_in_test["baseline"] = regression_metrics(y, oof["constant"])
    return ClassFit(method=method, embedding=embedding, validation_mae=val_mae, test=test,
                    fill_in=fill_in, fill_in_test=fill_in_test, why=why, oof=oof,
                    deploy=deploy, predictor=predictor,
                    combiner=params.get(method), mlp_epochs=epochs)


def _pick(y: np.ndarray, oof: dict[str, np.ndarray], names: list[str]) -> tuple[str, str]:
    """(method, why in words). Out-of-fold MAEs of ~100 labels differ by noise as much as
    by merit, so the reference (the blend, else the first of `names`) is kept unless
    another candidate's paired per-label absolute error is lower by more than two standard
    errors; among those that are, the lowest MAE wins."""
    ref = "blend" if "blend" in names else names[0]
    err = {m: np.abs(np.asarray(oof[m], np.float64) - y) for m in names}
    better: list[tuple[float, str]] = []
    for m in names:
        d = err[m] - err[ref]
        if m == ref or len(d) < 2:
            continue
        se = float(np.std(d, ddof=1) / math.sqrt(len(d)))
        if float(d.mean()) < -2 * se:
            better.append((float(err[m].mean()), m))
    if not better:
        if len(names) == 1:
            return ref, "the only candidate"
        return ref, ("the reference; no other method's fill-in error is lower by more than "
                     "two standard errors")
    _, best = min(better)
    return best, f"fill-in error lower than {ref}'s by more than two standard errors"


def _allowed(method: str) -> set[str]:
    if method == "auto":
        return set(CANDIDATES)
    return {method}


def _new_footage(frames: Frames, split: Split | None, config: TrainConfig, cls: str,
                 init_state: dict | None, progress: Progress | None
                 ) -> tuple[dict, dict, str, int]:
    """(validation MAE per model, test figures, embedding model, MLP epochs)."""
    x, y = frames.vectors[frames.labelled], np.asarray(frames.y, np.float32)
    if split is None:
        return {}, {}, "mlp" if config.method == "mlp" else "knn", max(
            1, config.pretrain.max_epochs // 2)
    val_mae = {"baseline": float(np.mean(np.abs(y[split.val] - y[split.fit].mean())))}
    fit = None
    if config.method in ("auto", "mlp", "interp", "combo"):
        stage = config.finetune if init_state is not None else config.pretrain
        fit = fit_mlp(
            x[split.fit], y[split.fit], x[split.val], y[split.val], stage, size=config.size,
            dropout=config.dropout, loss=config.loss, seed=config.seed, init_state=init_state,
            progress=progress, task=f"{cls}: mlp" + (" fine-tune" if init_state else ""),
            device=config.device,
        )
        val_mae["mlp"] = fit.best_val_mae
    if config.method != "mlp":
        knn = KnnPropagator(x[split.fit], y[split.fit], config.knn_k)
        val_mae["knn"] = float(np.mean(np.abs(knn.predict(x[split.val]) - y[split.val])))
    embedding = min((m for m in ("mlp", "knn") if m in val_mae), key=lambda m: val_mae[m])
    if embedding == "mlp":
        from lensdb.counting.mlp import MlpPredictor

        assert fit is not None  # val_mae has "mlp" only when the MLP was fitted

        model: Any = MlpPredictor(fit.model, {"class": cls, "dim": int(x.shape[1])})
    else:
        model = KnnPropagator(x[split.train], y[split.train], config.knn_k)
    test = evaluate(y[split.test], model.predict(x[split.test]), float(y[split.train].mean()),
                    frames.video[frames.labelled][split.test], frames.names)
    epochs = max(1, fit.best_epoch) if fit is not None else 1
    return val_mae, test, embedding, epochs


def _mlp_fitter(config: TrainConfig, epochs: int, init_state: dict | None) -> Fitter:
    """An MLP trained for the `epochs` the new-footage validation chose, no early stop."""
    from lensdb.counting.mlp import MlpPredictor

    stage = config.finetune if init_state is not None else config.pretrain
    stage = replace(stage, max_epochs=epochs, patience=epochs + 1)

    def fit(x: np.ndarray, y: np.ndarray) -> Any:
        res = fit_mlp(x, y, x, y, stage, size=config.size, dropout=config.dropout,
                      loss=config.loss, seed=config.seed, init_state=init_state,
                      device=config.device)
        meta = {"dim": int(x.shape[1]), "size": config.size, "dropout": config.dropout}
        return MlpPredictor(res.model, meta)

    return fit


def _bases(frames: Frames, train: np.ndarray, query: np.ndarray, fitters: dict[str, Fitter],
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


def _interp_or(interp: Interpolated, fallback: np.ndarray) -> np.ndarray:
    return np.where(interp.inside, interp.value, fallback).astype(np.float32)


def _out_of_fold(frames: Frames, folds: np.ndarray, fitters: dict[str, Fitter],
                 embedding: str, stacked: tuple[str, ...]
                 ) -> tuple[dict[str, np.ndarray], list]:
    """(candidate -> out-of-fold values, [(held positions, base inputs)] per fold);
    `stacked`: the candidates fitted on other candidates' held-out rows (blend, combo)."""
    n = len(frames.labelled)
    combo = "combo" in stacked
    names = ("constant", "interp", "median", *fitters, *stacked)
    oof = {m: np.zeros(n, np.float32) for m in names}
    every = np.arange(n)
    fold_ids = np.unique(folds)
    single: dict = {}
    for f in fold_ids:
        held = every[folds == f]
        base = _bases(frames, every[folds != f], frames.labelled[held], fitters, embedding,
                      combo)
        single[f] = (held, base)
        oof["constant"][held] = base["constant"]
        oof["interp"][held] = _interp_or(base["interp"], base["emb"])
        oof["median"][held] = _interp_or(base["median"], base["emb"])
        for name in fitters:
            oof[name][held] = base[name]
    if not stacked:
        return oof, list(single.values())
    pair_rows: dict[int, list[tuple[np.ndarray, dict]]] = {f: [] for f in fold_ids}
    for i, f in enumerate(fold_ids):
        for g in fold_ids[i + 1:]:
            train = every[(folds != f) & (folds != g)]
            for outer, rows in ((f, g), (g, f)):
                rows_at = every[folds == rows]
                base = _bases(frames, train, frames.labelled[rows_at], {
                    k: v for k, v in fitters.items() if k == "knn"}, "knn", combo)
                pair_rows[outer].append((rows_at, base))
    for f in fold_ids:
        held = every[folds == f]
        b = single[f][1]
        if "blend" in stacked:
            blend = _fit_blend(frames, pair_rows[f], every[folds != f])
            oof["blend"][held] = blend.predict(b["interp"], b["knn"], b["emb"])
        if combo:
            combiner = _fit_combiner(frames, pair_rows[f])
            oof["combo"][held] = combiner.predict(b["interp"], b["knn"], b["ridge"], b["emb"])
    return oof, list(single.values())


def _fit_blend(frames: Frames, rows: list[tuple[np.ndarray, dict]], kept: np.ndarray) -> Blend:
    """The blend's three numbers from held-out rows and the steps between the `kept` labels
    (positions into the labelled arrays)."""
    at = np.concatenate([r for r, _ in rows])
    lab = frames.labelled[kept]
    steps = label_steps(frames.video[lab], frames.ts[lab], frames.y[kept])
    return Blend.fit(steps, _concat([b["interp"] for _, b in rows]), frames.y[at],
                     np.concatenate([b["knn"] for _, b in rows]))


def _fit_combiner(frames: Frames, rows: list[tuple[np.ndarray, dict]]) -> Combiner:
    """A combination fitted on (positions into labelled, base predictions there) blocks."""
    at = np.concatenate([r for r, _ in rows])
    interp = _concat([b["interp"] for _, b in rows])
    knn = np.concatenate([b["knn"] for _, b in rows])
    ridge = np.concatenate([b["ridge"] for _, b in rows])
    return Combiner.fit(interp, knn, ridge, frames.y[at])


def _concat(parts: list[Interpolated]) -> Interpolated:
    return Interpolated(**{k: np.concatenate([getattr(p, k) for p in parts])
                           for k in Interpolated.__dataclass_fields__})


def _deploy(frames: Frames, fitters: dict[str, Fitter], embedding: str, rows: list,
            stacked: tuple[str, ...], blend: Blend | None
            ) -> tuple[dict, Any, dict[str, dict]]:
    """Every method refitted on every label, predicting every frame; `rows`: the
    single-fold out-of-fold inputs of every labelled frame (the training rows of the
    `stacked` candidates deployed). Returns (predictions, embedding model, the stacked
    candidates' parameters)."""
    n_all = len(frames.ts)
    models = {name: fit(frames.vectors[frames.labelled], frames.y)
              for name, fit in fitters.items()}
    out = {name: m.predict(frames.vectors) for name, m in models.items()}
    interp = interpolate(frames.video[frames.labelled], frames.ts[frames.labelled], frames.y,
                         frames.video, frames.ts)
    out["interp"] = _interp_or(interp, out[embedding])
    out["median"] = _interp_or(interpolate_median(
        frames.video[frames.labelled], frames.ts[frames.labelled], frames.y, frames.video,
        frames.ts), out[embedding])
    out["constant"] = np.full(n_all, float(np.mean(frames.y)), np.float32)
    params: dict[str, dict] = {}
    if "blend" in stacked and blend is not None:
        out["blend"] = blend.predict(interp, out["knn"], out[embedding])
        params["blend"] = blend.to_dict()
    if "combo" in stacked:
        combiner = _fit_combiner(frames, rows)
        ridge = EmbeddingRidge(frames.vectors[frames.labelled], frames.y).predict(frames.vectors)
        out["combo"] = combiner.predict(interp, out["knn"], ridge, out[embedding])
        params["combo"] = combiner.to_dict()
    return out, models[embedding], params

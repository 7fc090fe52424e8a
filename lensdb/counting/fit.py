"""Fit one class's counting methods on labelled frames, store-free (the benchmark uses it).

1. The embedding model (MLP or kNN, picked by the *new footage* validation of `split`) is
   evaluated on the held-out part of the split: the figures for later time / other videos.
   It is also the fallback for frames outside the labels of their video.
2. *Fill-in*: every candidate (constant, kNN, interpolation, the combination, and the MLP
   when it won the new-footage validation) is predicted out of fold on the labelled
   frames: fold = rank of the labelled frame within its video (in time) mod F, so a
   held-out label's nearest remaining labels are twice as far apart as the labels around
   an unlabelled frame (pessimistic). The combination's own
   training rows are computed without the held-out fold too (nested), so no out-of-fold
   value ever depends on its frame's label. The lowest fill-in MAE wins.
3. Every method is refitted on every label and predicts every frame (`deploy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lensdb.counting.combine import Combiner, EmbeddingRidge
from lensdb.counting.config import TrainConfig
from lensdb.counting.interpolate import Interpolated, interpolate
from lensdb.counting.knn import KnnPropagator
from lensdb.counting.metrics import evaluate, regression_metrics
from lensdb.counting.split import Split, fill_in_folds
from lensdb.counting.train import Progress, fit_mlp

CANDIDATES = ("interp", "knn", "mlp", "combo")  # tie order: the simpler first
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
    method: str  # deployed: interp, knn, mlp or combo
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
    combiner: dict | None = None  # the deployed combination's weights
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
    oof, single = _out_of_fold(frames, folds, fitters, embedding, "combo" in allowed)
    fill_in = {m: regression_metrics(y, v) for m, v in oof.items()}
    method = min((m for m in CANDIDATES if m in allowed and m in oof),
                 key=lambda m: (_rounded_mae(fill_in[m]), CANDIDATES.index(m)))
    if method in ("mlp", "knn"):  # it predicts frames ingested later too
        embedding = method
    combo = method == "combo" or (deploy_all and "combo" in oof)
    deploy, predictor, combiner = _deploy(frames, fitters, embedding, single if combo else None)
    if progress:
        progress(f"{cls}: fill-in", 1, 1)
    listed = ", ".join(f"{m} {fill_in[m]['mae']:.3f}" for m in (*CANDIDATES, "constant")
                       if m in fill_in)
    why = (f"{method}: lowest fill-in MAE ({listed}; {FILL_IN_NOTE.format(folds=config.folds)})"
           if config.method == "auto" else f"{method}: forced by --method ({listed})")
    lab_video = frames.video[frames.labelled]
    fill_in_test = evaluate(y, oof[method], float(y.mean()), lab_video, frames.names)
    fill_in_test["baseline"] = regression_metrics(y, oof["constant"])
    return ClassFit(method=method, embedding=embedding, validation_mae=val_mae, test=test,
                    fill_in=fill_in, fill_in_test=fill_in_test, why=why, oof=oof,
                    deploy=deploy, predictor=predictor,
                    combiner=combiner if method == "combo" else None, mlp_epochs=epochs)


def _rounded_mae(metrics: dict[str, float | None]) -> float:
    """The MAE to rank methods by (rounded, so near-ties go to the simpler); none: last."""
    mae = metrics["mae"]
    return math.inf if mae is None else round(mae, 6)


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
                      loss=config.loss, seed=config.seed, init_state=init_state)
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
                 embedding: str, combo: bool) -> tuple[dict[str, np.ndarray], list]:
    """(candidate -> out-of-fold values, [(held positions, base inputs)] per fold)."""
    n = len(frames.labelled)
    names = ("constant", "interp", *fitters, *(("combo",) if combo else ()))
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
        for name in fitters:
            oof[name][held] = base[name]
    if not combo:
        return oof, list(single.values())
    pair_rows: dict[int, list[tuple[np.ndarray, dict]]] = {f: [] for f in fold_ids}
    for i, f in enumerate(fold_ids):
        for g in fold_ids[i + 1:]:
            train = every[(folds != f) & (folds != g)]
            for outer, rows in ((f, g), (g, f)):
                rows_at = every[folds == rows]
                base = _bases(frames, train, frames.labelled[rows_at], {
                    k: v for k, v in fitters.items() if k == "knn"}, "knn", True)
                pair_rows[outer].append((rows_at, base))
    for f in fold_ids:
        held = every[folds == f]
        combiner = _fit_combiner(frames, pair_rows[f])
        b = single[f][1]
        oof["combo"][held] = combiner.predict(b["interp"], b["knn"], b["ridge"], b["emb"])
    return oof, list(single.values())


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


def _deploy(frames: Frames, fitters: dict[str, Fitter], embedding: str,
            combo_rows: list | None) -> tuple[dict, Any, dict | None]:
    """Every method refitted on every label, predicting every frame; `combo_rows`: the
    single-fold out-of-fold inputs of every labelled frame (the combination's training
    rows), None when no combination is deployed."""
    n_all = len(frames.ts)
    models = {name: fit(frames.vectors[frames.labelled], frames.y)
              for name, fit in fitters.items()}
    out = {name: m.predict(frames.vectors) for name, m in models.items()}
    interp = interpolate(frames.video[frames.labelled], frames.ts[frames.labelled], frames.y,
                         frames.video, frames.ts)
    out["interp"] = _interp_or(interp, out[embedding])
    out["constant"] = np.full(n_all, float(np.mean(frames.y)), np.float32)
    weights = None
    if combo_rows is not None:
        combiner = _fit_combiner(frames, combo_rows)
        ridge = EmbeddingRidge(frames.vectors[frames.labelled], frames.y).predict(frames.vectors)
        out["combo"] = combiner.predict(interp, out["knn"], ridge, out[embedding])
        weights = combiner.to_dict()
    return out, models[embedding], weights

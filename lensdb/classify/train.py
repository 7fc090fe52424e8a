"""`train_classifier`: a linear probe of a condition set on labelled crops, stored in the
store and used by `lensdb classify` from then on.

Crops of the dataset (`data.read_dataset`) are embedded with the embedder (the store's by
default; any embedder works, `mobilenet-v2` included: it has no text side, so it gets a
linear probe and no zero-shot or WiSE-FT), and a logistic regression is fitted with C
picked on validation (`probe.fit_probe`), with the imbalance remedies asked for. With a
CLIP embedder, `wise_ft` blends the zero-shot text head into the probe's weights
((1 - alpha) * zero-shot + alpha * probe; "auto" picks alpha on the validation split).

`vision` fine-tunes the vision tower of an open_clip embedder with the zero-shot text head
as the starting head, `full` both towers with the head recomputed from the text tower's
prompt ensembles at every step (`finetune.finetune_tower`, one loop; early stopping on the
validation split, no refit); the vision tower is stored with the classifier.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lensdb.classify.conditions import get_condition_set
from lensdb.classify.crops import check_context
from lensdb.classify.data import embed_samples, labels, read_dataset, sample_images
from lensdb.classify.finetune import FinetuneConfig
from lensdb.classify.probe import DEFAULT_CS, ProbeConfig, fit_linear, fit_probe, score, wise_ft
from lensdb.classify.registry import save_classifier
from lensdb.errors import LensDBError
from lensdb.storage.store import Store

METHODS = ("linear-probe", "vision", "full")
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    """What `lensdb classify train` does."""

    conditions: str  # condition set name
    data: str  # CSV file or YOLO dataset folder
    method: str = "linear-probe"  # linear-probe | vision (CLIP image tower) | full (both)
    embedder: str | None = None  # None: the store's embedder
    context: str = "crop"  # crop | crop+margin | full+box
    class_weights: bool = False  # n_max / n_c per class ("--class-weights auto")
    oversample: bool = False  # repeat rare classes' samples up to the largest class
    loss: str = "ce"  # ce | focal
    gamma: float = 2.0  # focal loss exponent
    cs: tuple[float, ...] = DEFAULT_CS  # C candidates, picked on validation
    wise_ft: float | str | None = None  # alpha in [0, 1], "auto", or None (no blending)
    val_fraction: float = 0.2  # share of each class held out to pick C (and alpha)
    seed: int = 0
    finetune: FinetuneConfig = FinetuneConfig()  # methods vision and full: the optimisation

    def validate(self) -> None:
        if self.method not in METHODS:
            raise LensDBError(f"unknown method '{self.method}'; use {', '.join(METHODS)}")
        if self.finetune.epochs < 1 or self.finetune.lr <= 0:
            raise LensDBError("--epochs must be at least 1 and --lr positive")
        check_context(self.context)
        if self.wise_ft is not None and self.wise_ft != "auto" and not (
                isinstance(self.wise_ft, int | float) and 0 <= self.wise_ft <= 1):
            raise LensDBError("--wise-ft takes an alpha between 0 and 1, or auto")
        self.probe().validate()

    def probe(self) -> ProbeConfig:
        return ProbeConfig(cs=self.cs, class_weights=self.class_weights,
                           oversample=self.oversample, loss=self.loss, gamma=self.gamma,
                           val_fraction=self.val_fraction, seed=self.seed)


@dataclass
class TrainReport:
    classifier_id: int
    conditions: str
    method: str
    embedder: str
    context: str
    samples: int
    class_counts: dict[str, int]
    imbalance_ratio: float  # n_max / n_min
    C: float
    val_metric: str
    val_scores: dict[str, float]  # C -> validation score
    val_recall: dict[str, float]  # per class, at the chosen C (model fitted on the train split)
    wise_ft_alpha: float | None
    file: str
    seconds: float
    remedies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _alpha(config: TrainConfig, zs, tuned, x, y, k, remedied: bool) -> float:
    if isinstance(config.wise_ft, int | float):  # else "auto" (called only when blending)
        return float(config.wise_ft)
    return max(ALPHAS, key=lambda a: (score(wise_ft(zs, tuned, a).logits(x).argmax(1), y, k,
                                            remedied), a))


def train_classifier(store: Store, config: TrainConfig) -> TrainReport:
    """Fit, store and activate a classifier of the set; see the module docstring."""
    from lensdb.classify.zeroshot import ZeroShot
    from lensdb.models.registry import get_embedder

    config.validate()
    started = time.perf_counter()
    cs = get_condition_set(store, config.conditions)
    samples = read_dataset(config.data, cs)
    spec = config.embedder or store.meta().get("embedder_spec")
    if not spec:
        raise LensDBError("the store has no embedder yet; pass --embedder")
    embedder = get_embedder(spec)
    notes = []
    zs = None
    if config.method in ("vision", "full"):
        return _train_vision(store, config, cs, samples, embedder, spec, started)
    if config.wise_ft is not None:
        if not embedder.has_text:
            raise LensDBError(f"--wise-ft blends in the zero-shot text head; the embedder "
                              f"'{embedder.name}' has no text side")
        zs = ZeroShot(embedder, cs).linear()
    if not embedder.has_text:
        notes.append(f"embedder '{embedder.name}' has no text side: linear probe only (no "
                     "zero-shot, no WiSE-FT)")
    x = embed_samples(embedder, samples, config.context)
    y, k = labels(samples, cs), len(cs.values)
    counts = np.bincount(y, minlength=k)
    probe = config.probe()
    result = fit_probe(x, y, k, probe)
    tr, va = result.train_idx, result.val_idx
    split_model = fit_linear(x[tr], y[tr], k, result.C, probe)
    alpha = None
    model = result.model
    if zs is not None:
        alpha = _alpha(config, zs, split_model, x[va], y[va], k, probe.remedied)
        split_model = wise_ft(zs, split_model, alpha)
        model = wise_ft(zs, result.model, alpha)
    pred = split_model.logits(x[va]).argmax(1)
    recall = {cs.values[c]: float((pred[y[va] == c] == c).mean()) for c in range(k)
              if (y[va] == c).any()}
    remedies = [name for name, on in (("class-weights", config.class_weights),
                                      ("oversample", config.oversample),
                                      ("focal", config.loss == "focal")) if on]
    metrics: dict[str, Any] = {
        "C": result.C, "val_metric": result.val_metric,
        "val_scores": {str(c): s for c, s in result.val_scores.items()},
        "val_recall": recall, "wise_ft_alpha": alpha, "remedies": remedies,
        "class_counts": {v: int(n) for v, n in zip(cs.values, counts)}}
    meta: dict[str, Any] = {
        "set_name": cs.name, "method": "linear-probe" if alpha is None else
        "linear-probe+wise-ft", "embedder_id": embedder.model_id, "embedder_spec": spec,
        "context": config.context, "values": list(cs.values)}
    with store.writer():
        cid, path = save_classifier(store, meta, model, metrics, len(samples))
    present = counts[counts > 0]
    return TrainReport(cid, cs.name, meta["method"], embedder.model_id, config.context,
                       len(samples), metrics["class_counts"],
                       float(present.max() / present.min()), result.C, result.val_metric,
                       metrics["val_scores"], recall, alpha, path.name,
                       time.perf_counter() - started, remedies, notes)


def _train_vision(store: Store, config: TrainConfig, cs, samples, embedder, spec: str,
                  started: float) -> TrainReport:
    from lensdb.classify.conditions import prompts_for
    from lensdb.classify.finetune import finetune_tower, preprocess, tunable
    from lensdb.classify.probe import stratified_split
    from lensdb.classify.zeroshot import ZeroShot

    full = config.method == "full"
    tunable(embedder, "both towers" if full else "the vision tower")  # else a one-line error
    head = ZeroShot(embedder, cs).heads[""]
    prompts = [prompts_for(cs, v) for v in cs.values] if full else None
    y, k = labels(samples, cs), len(cs.values)
    counts = np.bincount(y, minlength=k)
    if (counts > 0).sum() < 2:
        raise LensDBError("the training data has only one class; a classifier needs two")
    probe = config.probe()
    x = preprocess(embedder, list(sample_images(samples, config.context)))
    tr, va = stratified_split(y, config.val_fraction, config.seed)
    model, tower, history = finetune_tower(embedder, head, x[tr], y[tr], x[va], y[va], probe,
                                           config.finetune, config.wise_ft, prompts)
    pred = model.logits(embedder.embed_images(
        list(sample_images([samples[i] for i in va], config.context)))).argmax(1)
    recall = {cs.values[c]: float((pred[y[va] == c] == c).mean()) for c in range(k)
              if (y[va] == c).any()}
    alpha = history["wise_ft_alpha"]
    remedies = [name for name, on in (("class-weights", config.class_weights),
                                      ("oversample", config.oversample),
                                      ("focal", config.loss == "focal")) if on]
    metric = "balanced accuracy" if probe.remedied else "accuracy"
    metrics = {"val_metric": metric, "val_by_epoch": history["val"], "loss": history["loss"],
               "best_epoch": history["best_epoch"], "val_recall": recall,
               "wise_ft_alpha": alpha, "remedies": remedies,
               "class_counts": {v: int(n) for v, n in zip(cs.values, counts)}}
    method = config.method if alpha is None else f"{config.method}+wise-ft"
    meta = {"set_name": cs.name, "method": method, "embedder_id": embedder.model_id,
            "embedder_spec": spec, "context": config.context, "values": list(cs.values)}
    with store.writer():
        cid, path = save_classifier(store, meta, model, metrics, len(samples), tower)
    present = counts[counts > 0]
    scores = {f"epoch {i}": s for i, s in enumerate(history["val"])}
    return TrainReport(cid, cs.name, method, embedder.model_id, config.context, len(samples),
                       metrics["class_counts"], float(present.max() / present.min()), 0.0,
                       metric, scores, recall, alpha, path.name, time.perf_counter() - started,
                       remedies, [f"best epoch {history['best_epoch'] + 1} of "
                                  f"{len(history['loss'])} (0: the zero-shot start)"])

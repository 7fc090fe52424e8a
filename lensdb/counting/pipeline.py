"""`train_counters`: split, train MLP and kNN per class, pick by validation, evaluate on the
held-out part, register the winner and write its predictions for every frame of the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lensdb.counting.config import TrainConfig
from lensdb.counting.knn import KnnPropagator
from lensdb.counting.metrics import evaluate
from lensdb.counting.registry import register_model
from lensdb.counting.split import Split, make_split
from lensdb.counting.train import Progress, fit_mlp
from lensdb.errors import LensDBError
from lensdb.storage import Store


@dataclass
class ClassReport:
    """What was trained for one class and how it did."""

    cls: str
    method: str  # the winner: "mlp" or "knn"
    model_id: int
    file: str  # model file under the store's models dir
    validation_mae: dict[str, float]  # candidate -> MAE on the validation part (+ baseline)
    test: dict  # metrics.evaluate() on the held-out part: model vs baseline
    train_frames: int  # labelled frames the model learned from (fit + validation)
    test_frames: int
    mlp_epochs: int | None = None  # epochs the MLP ran before early stopping
    pretrained: bool = False  # the MLP started from COCO pretraining


@dataclass
class TrainReport:
    """Result of `train_counters`; `.to_dict()` is JSON-able."""

    store: str
    embedder_id: str
    codec: str
    split: str
    frames: int  # frames in the store (all get predictions)
    labelled_frames: int
    train_videos: list[str]
    test_videos: list[str]
    classes: dict[str, ClassReport] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    coco: dict | None = None  # images, cached embeddings?, pretrained classes
    plot: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Data:
    frame_ids: np.ndarray  # every frame with a vector, sorted
    video_of: np.ndarray  # per frame
    ts: np.ndarray  # per frame
    vectors: np.ndarray  # per frame, decoded as queries see them
    labelled: np.ndarray  # positions of labelled frames into the arrays above
    order: np.ndarray  # per labelled frame: frame index (time order within a video)
    names: dict[int, str]  # video id -> name
    totals: dict[str, int]  # class -> detections on labelled frames
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # class -> per labelled frame


def _load(store: Store) -> _Data:
    with store.catalog.connect() as con:
        frames = con.execute(
            "SELECT frame_id, video_id, frame_index, ts, labelled FROM frames ORDER BY frame_id"
        ).fetchall()
        names = con.execute(
            "SELECT video_id, coalesce(name, path, video_id::VARCHAR) FROM videos"
        ).fetchall()
        totals = con.execute(
            "SELECT c.class, sum(c.n)::BIGINT FROM counts c JOIN frames f USING (frame_id) "
            "WHERE f.labelled GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
    if not any(row[4] for row in frames):
        raise LensDBError("the store has no labelled frames; ingest with a detector first")
    ids, vectors = store.decoded_vectors()
    fid = np.array([r[0] for r in frames], np.int64)
    keep = np.isin(fid, ids)
    rows = [r for r, k in zip(frames, keep, strict=True) if k]
    pos = np.searchsorted(ids, fid[keep])
    lab = np.array([bool(r[4]) for r in rows])
    return _Data(
        frame_ids=fid[keep],
        video_of=np.array([r[1] for r in rows], np.int64),
        ts=np.array([r[3] if r[3] is not None else r[2] for r in rows], np.float64),
        vectors=vectors[pos],
        labelled=np.flatnonzero(lab),
        order=np.array([r[2] for r in rows], np.int64)[lab],
        names={int(v): str(n) for v, n in names},
        totals={str(c): int(n) for c, n in totals},
    )


def _classes(data: _Data, config: TrainConfig) -> list[str]:
    if not data.totals:
        raise LensDBError("the store's labelled frames carry no detections; nothing to count")
    known = ", ".join(f"{c} ({n})" for c, n in list(data.totals.items())[:8])
    if not config.classes:
        return list(data.totals)[: config.default_classes]
    for cls in config.classes:
        if data.totals.get(cls, 0) == 0:
            raise LensDBError(
                f"class '{cls}' has no detections in the store's labelled frames; "
                f"classes with detections: {known}"
            )
    return list(dict.fromkeys(config.classes))


def _label_counts(store: Store, data: _Data, classes: list[str]) -> None:
    with store.catalog.connect() as con:
        rows = con.execute(
            "SELECT frame_id, class, n FROM counts WHERE list_contains(?, class)", [classes]
        ).fetchall()
    labelled_ids = data.frame_ids[data.labelled]
    for cls in classes:
        data.counts[cls] = np.zeros(len(labelled_ids), np.float32)
    for frame_id, cls, n in rows:
        i = np.searchsorted(labelled_ids, frame_id)
        if i < len(labelled_ids) and labelled_ids[i] == frame_id:
            data.counts[cls][i] += n


def train_counters(
    store: Store, config: TrainConfig, progress: Progress | None = None, embedder: Any = None
) -> TrainReport:
    """Train, evaluate and register one count model per class; see the module docstring.

    `embedder` overrides the store's embedder for COCO pretraining (its id must match).
    """
    with store.writer():
        meta = store.meta()
        if "embedder_id" not in meta:
            raise LensDBError("the store has no vectors yet; ingest a video first")
        coco = None
        if config.coco_annotations is not None:
            from lensdb.counting.coco import read_coco

            coco = read_coco(config.coco_annotations)  # fails fast on a file that is not COCO
        data = _load(store)
        classes = _classes(data, config)
        _label_counts(store, data, classes)
        split = make_split(
            data.video_of[data.labelled], data.order, config.split, config.train_fraction,
            config.val_fraction, config.seed, config.time_blocks,
        )
        report = TrainReport(
            store=str(store.root), embedder_id=meta["embedder_id"], codec=meta.get("codec", ""),
            split=split.kind, frames=len(data.frame_ids), labelled_frames=len(data.labelled),
            train_videos=[data.names.get(v, str(v)) for v in split.train_videos],
            test_videos=[data.names.get(v, str(v)) for v in split.test_videos],
            config=config.to_dict(),
        )
        states: dict[str, dict] = {}
        if coco is not None and config.method != "knn":  # kNN gains nothing from COCO
            from lensdb.counting.coco import coco_vectors, pretrain_states

            cvec, cached = coco_vectors(store, coco, config.coco_images, embedder, progress)
            states = pretrain_states(cvec, coco, classes, config, progress)
            report.coco = {"images": len(cvec), "cached": cached, "pretrained": sorted(states)}
        all_values: dict[str, np.ndarray] = {}
        for cls in classes:
            rep, values = _train_class(store, data, split, cls, config, states.get(cls), progress)
            report.classes[cls] = rep
            all_values[cls] = values
    if config.plot is not None:
        report.plot = str(_plot(config, data, split, report, all_values))
    return report


def _train_class(
    store: Store, data: _Data, split: Split, cls: str, config: TrainConfig,
    init_state: dict | None, progress: Progress | None,
) -> tuple[ClassReport, np.ndarray]:
    x = data.vectors[data.labelled]
    y = data.counts[cls]
    train = split.train
    val_mae = {"baseline": float(np.mean(np.abs(y[split.val] - y[split.fit].mean())))}
    fit = None
    if config.method in ("auto", "mlp"):
        stage = config.finetune if init_state is not None else config.pretrain
        fit = fit_mlp(
            x[split.fit], y[split.fit], x[split.val], y[split.val], stage, size=config.size,
            dropout=config.dropout, loss=config.loss, seed=config.seed, init_state=init_state,
            progress=progress, task=f"{cls}: mlp" + (" fine-tune" if init_state else ""),
        )
        val_mae["mlp"] = fit.best_val_mae
    if config.method in ("auto", "knn"):
        knn = KnnPropagator(x[split.fit], y[split.fit], config.knn_k)
        val_mae["knn"] = float(np.mean(np.abs(knn.predict(x[split.val]) - y[split.val])))
        if progress:
            progress(f"{cls}: knn", 1, 1)
    method = min((m for m in ("mlp", "knn") if m in val_mae), key=lambda m: val_mae[m])

    base_meta = {
        "class": cls, "method": method, "embedder_id": store.meta()["embedder_id"],
        "codec": store.meta().get("codec"), "dim": int(x.shape[1]), "split": split.kind,
        "seed": config.seed,
    }
    if method == "mlp":
        from lensdb.counting.mlp import MlpPredictor

        predictor: Any = MlpPredictor(fit.model, base_meta)
        meta = base_meta | {"size": config.size, "dropout": config.dropout, "loss": config.loss}
        payload: dict = {"state_dict": fit.model.state_dict()}
    else:
        predictor = KnnPropagator(x[train], y[train], config.knn_k)
        meta = base_meta | {"k": config.knn_k, "size": f"k={config.knn_k}"}
        payload = {"frame_ids": data.frame_ids[data.labelled][train], "counts": y[train]}

    baseline = float(y[train].mean())
    test = evaluate(
        y[split.test], predictor.predict(x[split.test]), baseline,
        data.video_of[data.labelled][split.test], data.names,
    )
    values = predictor.predict(data.vectors)
    in_train = np.zeros(len(data.frame_ids), bool)
    in_train[data.labelled[train]] = True
    stored_metrics = {"test": test, "validation_mae": val_mae, "split": split.kind}
    model_id, path = register_model(
        store, meta, payload, stored_metrics, len(train), data.frame_ids, values, in_train
    )
    if progress:
        progress(f"{cls}: saved", 1, 1)
    return (
        ClassReport(
            cls=cls, method=method, model_id=model_id, file=path.name, validation_mae=val_mae,
            test=test, train_frames=len(train), test_frames=len(split.test),
            mlp_epochs=fit.epochs_run if fit else None, pretrained=init_state is not None,
        ),
        values,
    )


def _plot(
    config: TrainConfig, data: _Data, split: Split, report: TrainReport,
    values: dict[str, np.ndarray],
) -> Any:
    from lensdb.counting.plot import ClassSeries, plot_counts

    test_videos = data.video_of[data.labelled][split.test]
    vids, n = np.unique(test_videos, return_counts=True)
    video = int(vids[np.argmax(n)])
    frames = np.flatnonzero(data.video_of == video)
    lab_mask = data.video_of[data.labelled] == video
    held = np.zeros(len(data.labelled), bool)
    held[split.test] = True
    series = []
    for cls, rep in report.classes.items():
        train_mean = rep.test["baseline_value"]
        series.append(
            ClassSeries(
                cls=cls, method=rep.method, ts=data.ts[frames], predicted=values[cls][frames],
                labelled_ts=data.ts[data.labelled][lab_mask], true=data.counts[cls][lab_mask],
                held_out=held[lab_mask], baseline=train_mean,
            )
        )
    note = f"embedder {report.embedder_id}, codec {report.codec}, {report.split} split"
    return plot_counts(config.plot, data.names.get(video, str(video)), series, note)

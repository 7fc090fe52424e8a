"""`train_counters`: per class, evaluate in both regimes (fit.py: new footage on the split,
fill-in out of fold), refit the fill-in winner on every label, register it and write its
predictions for every frame of the store (labelled frames: their out-of-fold value).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from lensdb.counting.config import TrainConfig
from lensdb.counting.fit import Frames, fit_class
from lensdb.counting.registry import compact_vectors, register_model
from lensdb.counting.split import Split, make_split
from lensdb.counting.train import Progress
from lensdb.errors import LensDBError
from lensdb.storage import Store


@dataclass
class ClassReport:
    """What was trained for one class and how it did, in both regimes."""

    cls: str
    method: str  # deployed, by fill-in MAE: interp, median, knn, blend, mlp or combo
    model_id: int
    file: str  # model file under the store's models dir
    validation_mae: dict[str, float]  # new footage: embedding model -> validation MAE
    test: dict  # new footage: metrics.evaluate() of the embedding model on the held-out part
    train_frames: int  # labelled frames the deployed model was refitted on (all of them)
    test_frames: int  # labelled frames of the new-footage held-out part
    mlp_epochs: int | None = None  # epochs the MLP ran (the validation's best epoch)
    pretrained: bool = False  # the MLP started from COCO pretraining
    embedding_model: str = ""  # "mlp" or "knn": new footage, and the fallback
    fill_in: dict = field(default_factory=dict)  # evaluate() of the winner, out of fold
    fill_in_mae: dict[str, float] = field(default_factory=dict)  # candidate -> fill-in MAE
    why: str = ""  # the winner and the candidates' fill-in MAE, one line


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
    device: str = "cpu"  # where the MLPs trained and predicted (config.device resolved)
    threads: int = 0  # torch threads set for the run

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


def load_labelled(store: Store, classes: list[str] | None = None) -> tuple[_Data, list[str]]:
    """Every frame with its vector, and the labelled frames' counts of `classes` (default:
    every detected class, most detections first); for benchmarks and tools."""
    data = _load(store)
    chosen = list(classes) if classes else list(data.totals)
    _label_counts(store, data, chosen)
    return data, chosen


def train_counters(
    store: Store, config: TrainConfig, progress: Progress | None = None, embedder: Any = None
) -> TrainReport:
    """Train, evaluate and register one count model per class; see the module docstring.

    `embedder` overrides the store's embedder for COCO pretraining (its id must match).
    """
    from lensdb.device import resolve_device, set_threads

    if config.plot is not None:  # the one file training writes, never into the store
        from lensdb.outputs import output_file

        output_file(config.plot, "--plot", store.root)
    threads = set_threads(config.threads)  # on purpose: an import may have set one
    config = replace(config, device=resolve_device(config.device))  # recorded as resolved
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
            config=config.to_dict(), device=config.device, threads=threads,
        )
        states: dict[str, dict] = {}
        if coco is not None and config.method != "knn":  # kNN gains nothing from COCO
            from lensdb.counting.coco import coco_vectors, pretrain_states

            assert config.coco_images is not None  # validate(): given with the annotations
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
    frames = Frames(vectors=data.vectors, video=data.video_of, ts=data.ts,
                    labelled=data.labelled, y=data.counts[cls], names=data.names)
    fit = fit_class(frames, split, config, cls, init_state, progress)
    x = data.vectors[data.labelled]
    meta: dict[str, Any] = {
        "class": cls, "method": fit.method, "embedding_model": fit.embedding,
        "embedder_id": store.meta()["embedder_id"], "codec": store.meta().get("codec"),
        "dim": int(x.shape[1]), "split": split.kind, "seed": config.seed, "folds": config.folds,
        "combiner": fit.combiner,
    }
    if fit.embedding == "mlp":
        meta |= {"size": config.size, "dropout": config.dropout, "loss": config.loss}
        payload: dict = {"state_dict": fit.predictor.model.state_dict()}
    else:
        meta |= {"k": config.knn_k, "size": f"k={config.knn_k}"}
        payload = {"frame_ids": data.frame_ids[data.labelled], "counts": frames.y,
                   **compact_vectors(store.codec(), x)}
    # labelled frames keep their out-of-fold value: what the query error estimates measure
    values = fit.deploy[fit.method].copy()
    values[data.labelled] = fit.oof[fit.method]
    in_train = np.zeros(len(data.frame_ids), bool)
    fill_in_mae = {m: r["mae"] for m, r in fit.fill_in.items()}
    stored_metrics = {
        "mae": fill_in_mae[fit.method], "why": fit.why, "fill_in": fit.fill_in_test,
        "fill_in_mae": fill_in_mae, "new_footage": fit.test, "test": fit.test,
        "validation_mae": fit.validation_mae, "split": split.kind, "folds": config.folds,
        "embedding_model": fit.embedding, "config": config.to_dict(), "device": config.device,
    }
    model_id, path = register_model(
        store, meta, payload, stored_metrics, len(data.labelled), data.frame_ids, values,
        in_train,
    )
    if progress:
        progress(f"{cls}: saved", 1, 1)
    return (
        ClassReport(
            cls=cls, method=fit.method, model_id=model_id, file=path.name,
            validation_mae=fit.validation_mae, test=fit.test, train_frames=len(data.labelled),
            test_frames=len(split.test), mlp_epochs=fit.mlp_epochs if fit.embedding == "mlp"
            else None, pretrained=init_state is not None, embedding_model=fit.embedding,
            fill_in=fit.fill_in_test, fill_in_mae=fill_in_mae, why=fit.why,
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
    assert config.plot is not None  # called only when there is a plot to make
    return plot_counts(config.plot, data.names.get(video, str(video)), series, note)

"""`label_store`: run the store's detector where a label helps most, store it, refit.

    report = label_store(store, LabelConfig(budget=50))
    report.before, report.after          # fill-in MAE per class from the count models

Frames are chosen by `placement.place_labels` (in rounds: plan, label) and labelled
by the oracle (`oracle.Oracle`: decoded again from the source videos, one transaction per
batch, idempotent). Then the count predictors are refitted on every label with the
configuration of their last training (`train_counters`). With `target_error`, rounds go on
(refit after each) until the MAE of the predictions on the frames just labelled, measured
before they were labelled, is at most the target, or the budget cap is spent.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.counting.oracle import Oracle, ProgressFn
from lensdb.counting.placement import Frames, place_labels
from lensdb.counting.split import MIN_LABELLED
from lensdb.errors import LensDBError, ParameterError
from lensdb.storage import Store
from lensdb.storage.catalog import one_row

DEFAULT_SHARE = 0.05  # labels added when neither a budget nor a target error is given
TARGET_CAP_SHARE = 0.25  # with --target-error and no --budget: most frames labelled


@dataclass(frozen=True)
class LabelConfig:
    """What `lensdb label` labels and how."""

    budget: int | None = None  # detector runs; None: DEFAULT_SHARE of the frames (or, with
    # target_error, the cap TARGET_CAP_SHARE)
    target_error: float | None = None  # stop once the fill-in MAE estimate is at most this
    classes: tuple[str, ...] = ()  # classes whose counts guide placement; (): the modelled
    thresholds: tuple[float, ...] = ()  # count thresholds people query (count(c) >= t)
    rounds: int = 4  # plan -> label rounds the budget is spread over
    batch_size: int = 16  # frames per detector batch and per committed transaction
    refit: bool = True  # refit the count predictors afterwards

    def validate(self) -> None:
        if self.budget is not None and self.budget < 1:
            raise ParameterError("budget", f"must be at least 1 detector run, not {self.budget}")
        if self.target_error is not None and not (
                math.isfinite(self.target_error) and self.target_error > 0):
            raise ParameterError("target_error", "must be a positive MAE (counts per frame)")
        for name in ("rounds", "batch_size"):
            if getattr(self, name) < 1:
                raise ParameterError(name, "must be at least 1")
        if any(not math.isfinite(t) or t < 0 for t in self.thresholds):
            raise ParameterError("thresholds", "are counts: numbers 0 or more")


@dataclass
class LabelReport:
    labelled: int  # frames labelled by this run
    detector_runs: int
    frames: int  # frames in the store
    labelled_total: int  # labelled frames after this run
    classes: list[str]
    before: dict[str, float | None]  # fill-in MAE per class before (count models' metric)
    after: dict[str, float | None]  # the same after the refit
    placed_mae: dict[str, float | None]  # predictions vs the new labels, on the placed frames
    rounds: list[dict] = field(default_factory=list)
    refit: dict | None = None  # method per class after the refit
    refit_error: str | None = None  # why the refit failed (the labels stay stored)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def fill_in_mae(store: Store, classes: list[str]) -> dict[str, float | None]:
    """The active count model's fill-in MAE per class (None where none is recorded)."""
    out: dict[str, float | None] = {c: None for c in classes}
    with store.catalog.connect() as con:
        rows = con.execute("SELECT class, metrics FROM count_models WHERE active").fetchall()
    for cls, metrics in rows:
        if cls in out and metrics:
            m = json.loads(metrics)
            fill = m.get("fill_in") if isinstance(m.get("fill_in"), dict) else {}
            value = m.get("mae", fill.get("mae"))
            out[cls] = float(value) if isinstance(value, int | float) else None
    return out


def previous_train_config(store: Store, classes: list[str]) -> Any:
    """The TrainConfig of the last training (stored with the count models), else defaults
    for `classes`."""
    from lensdb.counting.config import StageConfig, TrainConfig

    with store.catalog.connect() as con:
        rows = con.execute("SELECT class, metrics FROM count_models WHERE active "
                           "ORDER BY model_id DESC").fetchall()
    active = sorted({r[0] for r in rows})
    for _, metrics in rows:
        cfg = (json.loads(metrics) if metrics else {}).get("config")
        if isinstance(cfg, dict):
            names = {f.name for f in fields(TrainConfig)}
            kw = {k: v for k, v in cfg.items() if k in names}
            kw["classes"] = tuple(kw.get("classes") or active)
            for key in ("pretrain", "finetune"):
                if isinstance(kw.get(key), dict):
                    kw[key] = StageConfig(**kw[key])
            for key in ("coco_annotations", "coco_images", "plot"):
                kw[key] = Path(kw[key]) if kw.get(key) else None
            kw["plot"] = None  # a refit does not redraw the plot
            return TrainConfig(**kw)
    return TrainConfig(classes=tuple(active or classes))


def load_frames(store: Store, classes: list[str]) -> tuple[np.ndarray, Frames]:
    """(frame ids, placement inputs) for every frame with a vector."""
    ids, vectors = store.decoded_vectors()
    with store.catalog.connect() as con:
        rows = con.execute("SELECT frame_id, video_id, ts, coalesce(labelled, false) "
                           "FROM frames ORDER BY frame_id").fetchnumpy()
        counts = con.execute("SELECT frame_id, class, sum(n)::DOUBLE AS n FROM counts WHERE "
                             "list_contains(?, class) GROUP BY 1, 2", [classes]).fetchnumpy()
    fid = np.asarray(rows["frame_id"], np.int64)
    keep = np.isin(fid, ids)
    fid = fid[keep]
    pos = np.searchsorted(ids, fid)
    lab = np.asarray(rows[list(rows)[3]], bool)[keep]
    labels = {}
    for cls in classes:
        y = np.where(lab, 0.0, np.nan)
        m = (counts["class"] == cls) if len(counts["class"]) else np.zeros(0, bool)
        at = np.searchsorted(fid, np.asarray(counts["frame_id"])[m])
        ok = (at < len(fid)) & lab[np.minimum(at, len(fid) - 1)]
        y[at[ok]] = np.asarray(counts["n"])[m][ok]
        labels[cls] = y
    frames = Frames(np.asarray(rows["video_id"], np.int64)[keep],
                    np.asarray(rows["ts"], np.float64)[keep], vectors[pos], labels,
                    stored_predictions(store, fid, classes))
    return fid, frames


def stored_predictions(store: Store, fid: np.ndarray, classes: list[str]) -> dict:
    """class -> the stored prediction per frame of `fid` (sorted ids), NaN where none."""
    out = {}
    with store.catalog.connect() as con:
        for cls in classes:
            pr = con.execute("SELECT frame_id, value FROM predictions WHERE class = ?",
                             [cls]).fetchnumpy()
            ids = np.asarray(pr["frame_id"], np.int64)
            values = np.full(len(fid), np.nan)
            at = np.searchsorted(fid, ids)
            ok = (at < len(fid)) & (fid[np.minimum(at, len(fid) - 1)] == ids)
            values[at[ok]] = np.asarray(pr["value"], np.float64)[ok]
            out[cls] = values
    return out


def _classes(store: Store, config: LabelConfig) -> list[str]:
    with store.catalog.connect() as con:
        modelled = [r[0] for r in con.execute(
            "SELECT DISTINCT class FROM count_models WHERE active ORDER BY 1").fetchall()]
        known = [r[0] for r in con.execute(
            "SELECT class FROM counts GROUP BY 1 ORDER BY sum(n) DESC, 1").fetchall()]
    for cls in config.classes:
        if cls not in known and cls not in modelled:
            listed = ", ".join(known[:20]) or "none"
            raise ParameterError("classes", f"names '{cls}', which the detector never found in "
                                 f"this store; classes with detections: {listed}")
    return list(config.classes) or modelled or known[:2]


def label_store(store: Store, config: LabelConfig, detector: Any = None,
                progress: ProgressFn | None = None) -> LabelReport:
    """Place labels, run the detector there, store them, refit; see the module docstring."""
    config.validate()
    with store.catalog.connect() as con:
        n_frames, n_lab = one_row(con.execute(
            "SELECT count(*), count(*) FILTER (WHERE labelled) FROM frames"))
    if n_lab == 0:
        raise LensDBError("the store has no labelled frames: ingest with a detector "
                          "(--detect-every) before `lensdb label`")
    classes = _classes(store, config)
    if not classes:
        raise LensDBError("the labelled frames carry no detections; nothing to place by")
    fid, frames = load_frames(store, classes)
    free = np.flatnonzero(~frames.labelled)
    if len(free) == 0:
        raise LensDBError("every frame of the store is labelled already; nothing to label")
    oracle = Oracle(store, detector=detector, batch_size=config.batch_size, progress=progress)
    oracle.check(fid[free])  # every source before the first run: gone or changed fails here
    share = TARGET_CAP_SHARE if config.target_error is not None else DEFAULT_SHARE
    budget = min(len(free), config.budget or max(1, math.ceil(share * n_frames)))
    if config.refit and n_lab + budget < MIN_LABELLED:  # before any detector run
        fix = (f"raise --budget to {MIN_LABELLED - n_lab} or more" if n_frames >= MIN_LABELLED
               else f"the store has only {n_frames} frames; ingest more video")
        raise LensDBError(f"the refit needs at least {MIN_LABELLED} labelled frames and this "
                          f"run would leave {n_lab + budget}: {fix}, or pass --no-refit")
    before = fill_in_mae(store, classes)
    report = LabelReport(0, 0, int(n_frames), int(n_lab), classes, before, dict(before), {})
    placed: list[np.ndarray] = []
    prior = {c: frames.predicted[c].copy() for c in classes}

    def label_fn(pos: np.ndarray) -> dict[str, np.ndarray]:
        got = oracle.label(fid[pos])
        return {c: np.array([got[int(f)].get(c, 0) for f in fid[pos]], np.float64)
                for c in classes}

    if config.target_error is None:
        placed.append(place_labels(frames, budget, label_fn, config.rounds, config.thresholds))
    else:
        step = min(budget, max(10, math.ceil(budget / 8)))  # at most 8 rounds
        while sum(map(len, placed)) < budget:
            got = place_labels(frames, min(step, budget - sum(map(len, placed))), label_fn, 1,
                               config.thresholds)
            if len(got) == 0:
                break
            placed.append(got)
            err = _mae(frames, prior, got, classes)
            report.rounds.append({"labelled": int(len(got)), "placed_mae": err})
            if config.refit:
                if not _refit(store, classes, report):
                    break
                prior = stored_predictions(store, fid, classes)
            values = [v for v in err.values() if v is not None]
            if values and max(values) <= config.target_error:
                break
    chosen = np.concatenate(placed) if placed else np.zeros(0, np.int64)
    report.placed_mae = _mae(frames, {c: frames.predicted[c] for c in classes}, chosen, classes)
    report.labelled, report.detector_runs = int(len(chosen)), oracle.calls
    report.labelled_total = int(n_lab + len(chosen))
    if config.refit and (config.target_error is None or not report.rounds):
        _refit(store, classes, report)
    report.after = fill_in_mae(store, classes)
    if config.target_error is not None and report.rounds:
        last = [v for v in report.rounds[-1]["placed_mae"].values() if v is not None]
        if last and max(last) > config.target_error:
            report.notes.append(f"target error {config.target_error:g} not reached within "
                                f"{budget} labels; raise --budget")
    return report


def _mae(frames: Frames, predicted: dict[str, np.ndarray], pos: np.ndarray,
         classes: list[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for c in classes:
        p, y = predicted[c][pos], frames.labels[c][pos]
        ok = ~np.isnan(p) & ~np.isnan(y)
        out[c] = float(np.abs(p[ok] - y[ok]).mean()) if ok.any() else None
    return out


def _refit(store: Store, classes: list[str], report: LabelReport) -> bool:
    """Refit; a refit that fails leaves the labels just stored (they are detector runs that
    were paid for) and says so in `report.refit_error`."""
    from lensdb.counting import train_counters

    try:
        result = train_counters(store, previous_train_config(store, classes))
    except LensDBError as exc:
        report.refit_error = str(exc)
        report.notes.append(f"the new labels are stored, but the refit failed: {exc}; "
                            "`lensdb train-counter` refits once that is fixed")
        return False
    report.refit = {cls: rep.method for cls, rep in result.classes.items()}
    return True


__all__ = ["LabelConfig", "LabelReport", "fill_in_mae", "label_store", "previous_train_config"]

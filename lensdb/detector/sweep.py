"""`sweep`: a grid of short training runs, a report CSV and the best configuration.

    result = sweep(DetectorTrainConfig("data.yaml", model="light-detr", epochs=3),
                   SweepGrid(lrs=(1e-4, 5e-5), batch_sizes=(8, 16)), root="sweeps/a")

Each grid point trains into ROOT/<key>/ (a normal run folder); a point whose summary.json
says "complete" is not trained again, so an interrupted sweep resumes where it stopped.
Every trained point is then evaluated (LensDB's metric) at each --conf-thres x --nms-iou;
ROOT/sweep.csv gets one row per (point, conf, iou) and ROOT/best.json the best row by
mAP50-95 (ties: mAP50).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lensdb.detector.config import DetectorTrainConfig
from lensdb.detector.evaluate import EVAL_CONF, EVAL_IOU, evaluate_checkpoint
from lensdb.detector.run_list import to_csv
from lensdb.errors import LensDBError, ParameterError
from lensdb.runs import atomic_write_text


@dataclass(frozen=True)
class SweepGrid:
    """The values tried; an empty tuple keeps the base configuration's value."""

    lrs: tuple[float, ...] = ()  # peak learning rates
    batch_sizes: tuple[int, ...] = ()  # images per step
    num_queries: tuple[int, ...] = ()  # light-detr object queries
    decoder_layers: tuple[int, ...] = ()  # light-detr decoder layers
    conf_thres: tuple[float, ...] = (EVAL_CONF,)  # evaluation confidence thresholds
    nms_iou: tuple[float, ...] = (EVAL_IOU,)  # evaluation NMS IoU thresholds


def points(base: DetectorTrainConfig, grid: SweepGrid) -> list[DetectorTrainConfig]:
    axes: dict[str, tuple[Any, ...]] = {
            "lr": grid.lrs or (base.lr,),
            "batch": grid.batch_sizes or (base.effective().batch,),
            "num_queries": grid.num_queries or (base.num_queries,),
            "decoder_layers": grid.decoder_layers or (base.decoder_layers,)}
    if (grid.num_queries or grid.decoder_layers) and base.model != "light-detr":
        raise ParameterError("num_queries", "and --decoder-layers are light-detr settings")
    return [replace(base, **dict(zip(axes, values)))
            for values in itertools.product(*axes.values())]


def point_key(c: DetectorTrainConfig) -> str:
    key = f"lr{c.lr if c.lr is not None else 'default'}-b{c.batch}"
    if c.model == "light-detr":
        key += f"-q{c.num_queries}-d{c.decoder_layers}"
    return key


def _done(folder: Path) -> dict | None:
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("status") == "complete" else None


def sweep(base: DetectorTrainConfig, grid: SweepGrid, root: str | Path,
          progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from lensdb.detector.train import train_detector

    base.check()
    emit = progress or (lambda e: None)
    root = Path(root)
    todo = points(base, grid)
    if len({point_key(c) for c in todo}) != len(todo):
        raise LensDBError("the grid repeats a configuration")
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(todo, 1):
        key = point_key(c)
        folder = root / key
        summary = _done(folder)
        emit({"kind": "point", "key": key, "index": i, "total": len(todo),
              "skipped": summary is not None})
        if summary is None:
            if folder.exists():  # an unfinished run: start it again from nothing
                import shutil

                shutil.rmtree(folder)
            summary = train_detector(replace(c, out=str(folder)))
        for conf, iou in itertools.product(grid.conf_thres, grid.nms_iou):
            ev = evaluate_checkpoint(folder / "best.pt", summary["data"], "val",
                                     device=summary["device"], conf=conf, iou=iou)
            rows.append({"key": key, "lr": c.lr, "batch": c.batch,
                         "num_queries": c.num_queries, "decoder_layers": c.decoder_layers,
                         "conf": conf, "nms_iou": iou, "map50": ev["map50"],
                         "map50_95": ev["map50_95"], "precision": ev["precision"],
                         "recall": ev["recall"], "best_val_loss": summary.get("best_val_loss"),
                         "seconds": summary["seconds"], "run": str(folder)})
    best = max(rows, key=lambda r: (r["map50_95"], r["map50"]))
    atomic_write_text(root / "sweep.csv", to_csv(rows))
    atomic_write_text(root / "best.json", json.dumps(best, indent=2) + "\n")
    return {"root": str(root), "rows": rows, "best": best, "csv": str(root / "sweep.csv")}

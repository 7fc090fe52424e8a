"""`train_detector`: one training run, one run folder, whichever trainer does the work.

    summary = train_detector(DetectorTrainConfig("data.yaml", model="yolo11n.yaml", fast=True))

The run folder (lensdb.runs.RunFolder) gets config.json at the start, one epochs.csv row per
epoch (losses, lr, mAP50, mAP50-95), the checkpoints best.pt (by mAP50-95), best_loss.pt (by
validation loss) and final.pt, each written atomically, and summary.json last, with
status "complete" and LensDB's own evaluation of best.pt on the validation split. A run that
fails or is interrupted gets summary.json with status "failed"/"interrupted", so it never
looks finished. Bad input is refused before the folder is created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.detector.config import FAST_VAL_IMAGES, LIGHT_DETR, DetectorTrainConfig, model_kind
from lensdb.detector.data import DataSpec, load_data_yaml, split_images
from lensdb.device import resolve_device
from lensdb.errors import LensDBError
from lensdb.runs import RunFolder

Progress = Callable[[dict[str, Any]], None]
CHECKPOINTS = ("best.pt", "best_loss.pt", "final.pt")


def default_out(model: str) -> Path:
    stem = Path(model).stem if model != LIGHT_DETR else LIGHT_DETR
    return Path("runs") / "detector" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_data(c: DetectorTrainConfig, ds: DataSpec, run: RunFolder) -> Path:
    """The data.yaml the trainer reads: the user's, or (for --subset/--fast) one in the run
    folder whose splits are .txt lists of the chosen images (labels stay where they are)."""
    import yaml

    train = split_images(ds, "train")
    val = split_images(ds, "val")
    if not c.subset and not c.fast:
        return ds.yaml_path
    rng = np.random.default_rng(c.seed)
    if c.subset and c.subset < len(train):
        train = sorted(train[i] for i in rng.choice(len(train), c.subset, replace=False))
    if c.fast and len(val) > FAST_VAL_IMAGES:
        val = sorted(val[i] for i in rng.choice(len(val), FAST_VAL_IMAGES, replace=False))
    folder = run.root / "data"
    folder.mkdir(exist_ok=True)
    (folder / "train.txt").write_text("".join(f"{p.resolve()}\n" for p in train))
    (folder / "val.txt").write_text("".join(f"{p.resolve()}\n" for p in val))
    doc = {"path": str(ds.root.resolve()), "train": str((folder / "train.txt").resolve()),
           "val": str((folder / "val.txt").resolve()),
           "names": {i: n for i, n in enumerate(ds.names)}}
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def train_detector(config: DetectorTrainConfig, progress: Progress | None = None) -> dict:
    """Train; returns the summary (also in RUN/summary.json)."""
    config.check()
    kind = model_kind(config.model)
    c = config.effective()
    ds = load_data_yaml(c.data)
    for split in ("train", "val"):  # missing folders or no images: refused before any file
        if not split_images(ds, split):
            raise LensDBError(f"{ds.yaml_path}: the {split} split has no images")
    device = resolve_device(c.device)
    if c.is_light_detr and c.backbone == "clip":
        from lensdb.detector.light_ckpt import clip_visual

        clip_visual(c.clip_arch, c.clip_init)  # a non-CLIP file: refused before any file
    out = Path(c.out) if c.out else default_out(c.model)
    run = RunFolder.create(out, {**asdict(c), "kind": kind, "device_resolved": device,
                                 "names": list(ds.names)})
    emit = progress or (lambda e: None)
    started = time.time()
    try:
        data_yaml = prepare_data(c, ds, run)
        emit({"kind": "start", "run": str(run.root), "device": device, "model": c.model,
              "epochs": c.epochs})
        if kind.startswith("ultralytics"):
            from lensdb.detector.ultra_train import train_ultralytics

            result = train_ultralytics(c, data_yaml, run, device, emit)
        else:
            from lensdb.detector.light_train import train_light_detr

            result = train_light_detr(c, data_yaml, run, device, emit)
        missing = [n for n in CHECKPOINTS if not (run.root / n).is_file()]
        if missing:
            raise LensDBError(f"training ended without {', '.join(missing)}")
        from lensdb.detector.evaluate import evaluate_checkpoint

        evaluation = evaluate_checkpoint(run.root / "best.pt", data_yaml, "val", device=device)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.write_json("summary.json", {"status": status, "error": str(exc)[:300],
                                        "seconds": round(time.time() - started, 1)})
        raise
    summary = {"status": "complete", "run": str(run.root), "model": c.model, "kind": kind,
               "device": device, "names": list(ds.names), "data": str(data_yaml),
               "seconds": round(time.time() - started, 1), **result,
               "checkpoints": {n: str(run.root / n) for n in CHECKPOINTS},
               "eval": evaluation}
    run.write_json("summary.json", summary)
    emit({"kind": "done", **summary})
    return summary

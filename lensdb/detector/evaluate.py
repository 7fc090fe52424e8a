"""`evaluate_checkpoint`: a detector checkpoint on a split, by LensDB's own metric code.

    r = evaluate_checkpoint("runs/x/best.pt", "data.yaml", split="val")
    r["map50"], r["map50_95"], r["precision"], r["recall"], r["per_class"]

Predictions are taken at conf 0.001 and NMS IoU 0.7 (the convention every mAP figure uses)
from whichever kind of checkpoint it is (lensdb.detector.checkpoint), then scored by
lensdb.detector.metrics, so two checkpoints from different trainers are compared fairly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lensdb.detector.checkpoint import Predictor, load_predictor
from lensdb.detector.data import label_path, load_data_yaml, read_labels, split_images
from lensdb.detector.metrics import MapAccumulator
from lensdb.device import resolve_device
from lensdb.errors import LensDBError

EVAL_CONF = 0.001  # keep nearly every box: AP integrates over all thresholds
EVAL_IOU = 0.7  # NMS IoU while evaluating (ultralytics' val default)


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001
        raise LensDBError(f"cannot read image {path}: {type(exc).__name__}") from None


def yolo_to_xyxy(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(n, 5) [cls cx cy w h] normalised -> (n, 4) xyxy pixels."""
    cx, cy, w, h = (labels[:, i] for i in range(1, 5))
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height,
                     (cx + w / 2) * width, (cy + h / 2) * height], 1)


def evaluate_predictor(predictor: Predictor, images: list[Path], names: tuple[str, ...],
                       batch: int = 16, conf: float = EVAL_CONF,
                       iou: float = EVAL_IOU) -> dict[str, Any]:
    """Score a loaded predictor on images whose YOLO labels lie beside them."""
    if tuple(predictor.names) != tuple(names):
        raise LensDBError(f"the checkpoint's classes {list(predictor.names)} are not the "
                          f"dataset's {list(names)}")
    acc = MapAccumulator(len(names))
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        rgb = [read_rgb(p) for p in chunk]
        preds = predictor.predict(rgb, conf=conf, iou=iou)
        for path, img, (boxes, scores, cls) in zip(chunk, rgb, preds):
            labels = read_labels(label_path(path))
            labels = labels[labels[:, 0] < len(names)]
            gt = yolo_to_xyxy(labels, img.shape[1], img.shape[0])
            acc.add(boxes, scores, cls, gt, labels[:, 0])
    r = acc.result()
    r["per_class"] = {n: {"ap50": a50, "ap50_95": a} for n, a50, a in
                      zip(names, r.pop("ap50"), r.pop("ap50_95"))}
    return r


def evaluate_checkpoint(ckpt: str | Path, data: str | Path, split: str = "val",
                        device: str = "cpu", max_images: int = 0, conf: float = EVAL_CONF,
                        iou: float = EVAL_IOU) -> dict[str, Any]:
    """mAP50, mAP50-95, per-class AP, precision and recall of `ckpt` on `split` (`conf`
    and `iou`: the prediction threshold and NMS IoU; the defaults are the convention)."""
    ds = load_data_yaml(data)
    images = split_images(ds, split)
    if max_images:
        images = images[:max_images]
    if not images:
        raise LensDBError(f"the {split} split of {ds.yaml_path} has no images")
    predictor = load_predictor(ckpt, resolve_device(device))
    r = evaluate_predictor(predictor, images, ds.names, conf=conf, iou=iou)
    return {"checkpoint": str(ckpt), "data": str(ds.yaml_path), "split": split, "conf": conf,
            "iou": iou, **r}

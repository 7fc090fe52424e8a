"""Which kind of detector checkpoint a file is, and a predictor for either kind.

    kind = checkpoint_kind("runs/x/best.pt")    # "ultralytics" | "light-detr", else an error
    p = load_predictor("runs/x/best.pt", device="cpu")
    p.names                                     # class names by id
    p.predict(rgb_images, conf=0.001, iou=0.7)  # [(xyxy px, scores, class ids), ...]

Evaluation and prediction go through this, so the figures do not depend on which
trainer wrote the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from lensdb.errors import LensDBError

LIGHT_DETR_KIND = "lensdb-light-detr"  # the "kind" key of a light-detr checkpoint

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # (n,4) xyxy px, (n,) scores, (n,) ids


class Predictor(Protocol):
    names: tuple[str, ...]  # class names by id
    imgsz: int  # input size it was trained at

    def predict(self, images: list[np.ndarray], conf: float, iou: float,
                max_det: int = 300) -> list[Prediction]:
        """Boxes for HxWx3 uint8 RGB images, in their pixels."""
        ...


def import_ultralytics():
    """`import ultralytics` offline (YOLO_OFFLINE, YOLO_CONFIG_DIR), its first-run banner
    and its log lines sent to stderr so that stdout stays LensDB's (--json)."""
    import contextlib
    import sys

    from lensdb.models.yolo import _setup_env

    _setup_env()
    with contextlib.redirect_stdout(sys.stderr):
        import ultralytics
    return ultralytics


def _load(path: Path) -> dict:
    import torch

    if not Path(path).is_file():
        raise LensDBError(f"no such checkpoint: {path}")
    import_ultralytics()  # its classes are pickled inside its checkpoints
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: not a checkpoint
        raise LensDBError(f"{path} is not a detector checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise LensDBError(f"{path} is not a detector checkpoint (a {type(obj).__name__})")
    return obj


def checkpoint_kind(path: str | Path) -> str:
    obj = _load(Path(path))
    if obj.get("kind") == LIGHT_DETR_KIND:
        return "light-detr"
    model = obj.get("ema") or obj.get("model")
    if model is not None and hasattr(model, "names") and hasattr(model, "yaml"):
        return "ultralytics"
    raise LensDBError(f"{path} is a checkpoint of an unknown kind (neither ultralytics nor "
                      "light-detr)")


def ultralytics_device(device: str) -> str:
    """LensDB's device string in ultralytics' spelling (cuda:1 -> '1')."""
    if device.startswith("cuda"):
        return device.split(":", 1)[1] if ":" in device else "0"
    return device


class UltralyticsPredictor:
    """An ultralytics checkpoint (YOLO or RT-DETR) through ultralytics' own predict."""

    def __init__(self, path: Path, device: str):
        import_ultralytics()
        from ultralytics import RTDETR, YOLO

        ckpt = _load(path)
        args = ckpt.get("train_args") or {}
        model = ckpt.get("ema") or ckpt.get("model")
        is_rtdetr = "rtdetr" in type(model).__name__.lower() or "rtdetr" in str(
            args.get("model", "")).lower()
        self.model = (RTDETR if is_rtdetr else YOLO)(str(path))
        names = self.model.names or {}
        self.names = tuple(str(names[i]) for i in sorted(names))
        model_args = getattr(self.model.model, "args", None)
        model_args = model_args if isinstance(model_args, dict) else {}
        self.imgsz = int(args.get("imgsz") or model_args.get("imgsz") or 640)
        self.device = ultralytics_device(device)

    def predict(self, images, conf, iou, max_det=300):
        bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images]
        results = self.model.predict(bgr, conf=conf, iou=iou, imgsz=self.imgsz, max_det=max_det,
                                     device=self.device, verbose=False)
        out = []
        for r in results:
            b = r.boxes
            out.append((b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy(),
                        b.cls.cpu().numpy().astype(int)))
        return out


def load_predictor(path: str | Path, device: str = "cpu") -> Predictor:
    path = Path(path)
    kind = checkpoint_kind(path)
    if kind == "ultralytics":
        return UltralyticsPredictor(path, device)
    from lensdb.detector.light_ckpt import LightDetrPredictor

    return LightDetrPredictor(path, device)

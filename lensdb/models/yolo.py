"""Ultralytics YOLO adapter: `yolo11n` by default, any ultralytics name or local .pt/.onnx."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from lensdb.device import uses_half
from lensdb.errors import ModelUnavailableError
from lensdb.models.base import cache_dir, file_digest
from lensdb.models.resolve import resolve_detector
from lensdb.models.spec import ModelSpec, unavailable
from lensdb.types import Detections


def _setup_env() -> None:
    # ultralytics writes settings at import and probes DNS unless told it is offline.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics-config"))
    if os.environ.get("LENSDB_ONLINE") != "1":
        os.environ.setdefault("YOLO_OFFLINE", "1")


def weights_path(name: str) -> Path:
    """The file an ultralytics spec loads: the local file it names, or the cache's copy of
    a hub model (see lensdb.models.resolve for the rules)."""
    resolved = resolve_detector(name)
    if resolved.files:
        return resolved.files[0]
    return cache_dir() / "ultralytics" / f"{resolved.name}.pt"


def fetch_yolo(name: str = "yolo11n") -> Path:
    """Download weights through ultralytics' own downloader into LensDB's cache."""
    _setup_env()
    path = weights_path(name)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        attempt_download_asset(str(path))
    except Exception as exc:  # ConnectionError, HTTP errors, ...
        raise unavailable(name, f"download failed: {str(exc).strip()[:80]}") from None
    if not path.exists():
        raise unavailable(name, "the hub is not reachable")
    return path


class YoloDetector:
    """Runs an ultralytics model and turns its Results into LensDB Detections."""

    def __init__(self, name: str, path: Path, conf: float = 0.25, imgsz: int = 640,
                 device: str = "cpu"):
        _setup_env()
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(path), task="detect")
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load detector {path}: {str(exc)[:120]}") from None
        self.name = name
        self.model_id = f"{Path(name).stem}@{file_digest(path)}"
        self.conf = conf
        self.imgsz = imgsz
        self.device = device  # torch device; fp16 on CUDA
        names = self.model.names or {}
        self.class_names = {int(k): str(v).lower() for k, v in dict(names).items()}
        self._lock = threading.Lock()

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        if not images:
            return []
        # ultralytics expects BGR numpy images, like cv2.imread gives.
        bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images]
        with self._lock:
            results = self.model.predict(
                bgr, conf=self.conf, imgsz=self.imgsz, verbose=False, device=self.device,
                half=uses_half(self.device),
            )
        return [self._to_detections(r) for r in results]

    def _to_detections(self, result) -> Detections:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        cls = boxes.cls.cpu().numpy().astype(int)
        return Detections(
            boxes=boxes.xyxy.cpu().numpy().astype(np.float32),
            scores=boxes.conf.cpu().numpy().astype(np.float32),
            class_names=tuple(self.class_names.get(int(c), str(int(c))) for c in cls),
        )


def load_yolo(name: str, conf: float = 0.25, device: str = "cpu") -> YoloDetector:
    path = weights_path(name)
    if not path.exists():
        path = fetch_yolo(resolve_detector(name).name)
    return YoloDetector(name, path, conf=conf, device=device)


SPECS = (
    ModelSpec(
        name="yolo11n",
        kind="detector",
        description="YOLO11 nano through ultralytics, 80 COCO classes (default)",
        source="ultralytics GitHub release assets",
        size_mb=5.4,
        load=lambda conf=0.25, device="cpu": load_yolo("yolo11n", conf=conf, device=device),
        devices=("cpu", "cuda", "mps"),
        fetch=lambda: fetch_yolo("yolo11n"),
        is_present=lambda: weights_path("yolo11n").exists(),
        default_conf=0.25,  # ultralytics' own default, the one its COCO figures use
    ),
)

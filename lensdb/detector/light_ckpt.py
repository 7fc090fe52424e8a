"""Light DETR checkpoints: build, save, load, predict, and a LensDB Detector.

A checkpoint is `{"kind": "lensdb-light-detr", "spec": LightDetrSpec fields, "names": [...],
"state_dict": ..., "epoch": N, "metrics": {...}}`, written atomically. With the clip
backbone the state dict holds the whole tower, rebuilt from its open_clip architecture.

`LightDetrDetector` has the Detector protocol (name, model_id, detect) so that a
registry hook can hand it to `lensdb ingest`; see the README for what is wired today.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensdb.detector.checkpoint import LIGHT_DETR_KIND
from lensdb.detector.light_detr import LightDetr, LightDetrSpec, postprocess, spec_dict
from lensdb.errors import LensDBError, first_line
from lensdb.runs import atomic_torch_save


def clip_visual(arch: str, checkpoint: str | None) -> torch.nn.Module:
    """The visual tower of an open_clip model (from `checkpoint`, or random init)."""
    import open_clip

    import lensdb.finetune.tiny  # noqa: F401 - registers lensdb-tiny with open_clip

    root = logging.getLogger()
    level = root.level
    if checkpoint is None:  # random init on purpose: open_clip's warning about it is noise
        root.setLevel(logging.ERROR)
    try:
        model = open_clip.create_model(arch, pretrained=checkpoint, device="cpu")
    except Exception as exc:  # noqa: BLE001 - not an open_clip checkpoint of this arch
        if checkpoint is None:
            raise LensDBError(f"--clip-arch {arch}: open_clip cannot build it "
                              f"({first_line(exc)})") from None
        raise LensDBError(f"--clip-init {checkpoint} is not an open_clip {arch} checkpoint "
                          f"({type(exc).__name__})") from None
    finally:
        root.setLevel(level)
    return model.visual


def build_model(spec: LightDetrSpec, clip_init: str | None = None) -> LightDetr:
    visual = clip_visual(spec.clip_arch or "lensdb-tiny", clip_init) if spec.backbone == \
        "clip" else None
    return LightDetr(spec, visual)


def save_light_detr(model: torch.nn.Module, path: Path, names: list[str], epoch: int,
                    metrics: dict[str, Any]) -> Path:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    spec: Any = model.spec
    atomic_torch_save({"kind": LIGHT_DETR_KIND, "version": 1, "spec": spec_dict(spec),
                       "names": list(names), "state_dict": state, "epoch": epoch,
                       "metrics": metrics}, Path(path))
    return Path(path)


def read_light_detr(path: str | Path) -> dict | None:
    """The checkpoint's contents when `path` is a light-detr checkpoint, else None. Loaded
    with `weights_only=True`: tensors, numbers and strings only, so nothing is executed."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an ultralytics pickle (or not a checkpoint at all)
        return None
    return obj if isinstance(obj, dict) and obj.get("kind") == LIGHT_DETR_KIND else None


def load_light_detr(path: str | Path) -> tuple[LightDetr, list[str], dict]:
    obj = read_light_detr(path)
    if not isinstance(obj, dict) or obj.get("kind") != LIGHT_DETR_KIND:
        raise LensDBError(f"{path} is not a light-detr checkpoint")
    try:
        spec = LightDetrSpec(**obj["spec"])
        model = build_model(spec)
        model.load_state_dict(obj["state_dict"])
    except (TypeError, RuntimeError):  # a spec or weights of another light-detr version
        raise LensDBError(f"{path} is a light-detr checkpoint of an older architecture: "
                          "train it again") from None
    model.eval()
    return model, list(obj["names"]), obj


def to_batch(images: list[np.ndarray], imgsz: int, device: str) -> torch.Tensor:
    """RGB uint8 images -> (B, 3, imgsz, imgsz) floats in [0, 1] (stretched: boxes in
    normalised coordinates are unchanged)."""
    import torch.nn.functional as F

    out = []
    for img in images:
        t = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float()[None] / 255
        out.append(F.interpolate(t, size=(imgsz, imgsz), mode="bilinear", align_corners=False))
    return torch.cat(out).to(device)


class LightDetrPredictor:
    def __init__(self, path: Path, device: str = "cpu"):
        self.model, names, _ = load_light_detr(path)
        self.model.to(device)
        self.names = tuple(names)
        self.imgsz = self.model.spec.imgsz
        self.device = device

    @torch.no_grad()
    def predict(self, images, conf, iou, max_det=300):
        if not images:
            return []
        out = self.model(to_batch(images, self.imgsz, self.device))
        sizes = [(img.shape[0], img.shape[1]) for img in images]
        return postprocess(out, sizes, conf, iou, max_det)


class LightDetrDetector:
    """The Detector protocol over a light-detr checkpoint (class names lowercase)."""

    def __init__(self, path: str | Path, conf: float = 0.25, iou: float = 0.5):
        from lensdb.models.base import file_digest
        from lensdb.types import Detections

        self._detections = Detections
        self.predictor = LightDetrPredictor(Path(path))
        self.name = str(path)
        self.model_id = f"{Path(path).stem}@{file_digest(Path(path))}"
        self.conf, self.iou = conf, iou
        self.class_names = {i: n.lower() for i, n in enumerate(self.predictor.names)}
        self._lock = threading.Lock()

    def detect(self, images: list[np.ndarray]):
        with self._lock:
            preds = self.predictor.predict(images, self.conf, self.iou)
        return [self._detections(b.astype(np.float32), s.astype(np.float32),
                                 tuple(self.class_names[int(c)] for c in cls))
                for b, s, cls in preds]

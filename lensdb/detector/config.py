"""What a detector training run is asked to do, checked before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lensdb.errors import LensDBError, ParameterError

LIGHT_DETR = "light-detr"
ULTRALYTICS_YAML = re.compile(r"^(yolo[a-z0-9\-]*|rtdetr-[a-z0-9\-]+)\.yaml$", re.IGNORECASE)
BACKBONES = ("mobilenet_v3_small", "clip")

FAST_TRAIN_IMAGES = 64  # --fast: at most this many training images (unless --subset)
FAST_VAL_IMAGES = 32  # --fast: at most this many validation images
FAST_EPOCHS = 2  # --fast: at most this many epochs
FAST_IMGSZ = 64  # --fast: at most this image size
LIGHT_DETR_LR = 1e-3  # light-detr's peak learning rate unless --lr (everything is from scratch)
LIGHT_DETR_BATCH = 8  # light-detr's batch unless --batch (more steps per epoch on small data)
ULTRALYTICS_BATCH = 16  # YOLO / RT-DETR batch unless --batch


@dataclass(frozen=True)
class DetectorTrainConfig:
    """One detector training run."""

    data: str  # the dataset's data.yaml
    model: str = "yolo11n.yaml"  # ultralytics .yaml (random init) or .pt, rtdetr-*.yaml, light-detr
    epochs: int = 50  # passes over the training split
    imgsz: int | None = None  # square input size; None: 640 for ultralytics, 128 for light-detr
    batch: int | None = None  # images per step; None: ULTRALYTICS_BATCH / LIGHT_DETR_BATCH
    lr: float | None = None  # peak learning rate; None: ultralytics' lr0 / LIGHT_DETR_LR
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (lensdb.device.resolve_device)
    fast: bool = False  # debug run: caps epochs, image size and images (FAST_* above)
    subset: int = 0  # train on this many training images (0: all), drawn with the seed
    seed: int = 0  # random seed for subsets, init and ultralytics
    out: str | None = None  # run folder; None: runs/detector/<model>-<time>
    workers: int = 0  # data-loader worker processes (0: in the training process)
    # light-detr only
    backbone: str = "mobilenet_v3_small"  # mobilenet_v3_small | clip (clip_arch, random init
    # unless clip_init names its weights)
    clip_init: str | None = None  # open_clip checkpoint whose visual tower is the backbone
    clip_arch: str = "lensdb-tiny"  # open_clip architecture of clip_init
    num_queries: int = 20  # learned object queries
    decoder_layers: int = 3  # transformer decoder layers
    hidden_dim: int = 128  # transformer width
    warmup_epochs: float = 1.0  # linear warmup length
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # max gradient norm (DETR's 0.1 starves a from-scratch backbone)
    ema_decay: float = 0.999  # EMA of the weights (evaluated and saved); 0: off

    @property
    def is_light_detr(self) -> bool:
        return self.model == LIGHT_DETR or model_kind(self.model) == LIGHT_DETR + "-pt"

    def effective(self) -> DetectorTrainConfig:
        """The run as it will happen: --fast caps applied, per-model defaults filled."""
        from dataclasses import replace

        imgsz = self.imgsz or (128 if self.is_light_detr else 640)
        batch = self.batch or (LIGHT_DETR_BATCH if self.is_light_detr else ULTRALYTICS_BATCH)
        epochs, subset = self.epochs, self.subset
        if self.fast:
            imgsz, epochs = min(imgsz, FAST_IMGSZ), min(epochs, FAST_EPOCHS)
            subset = min(subset, FAST_TRAIN_IMAGES) if subset else FAST_TRAIN_IMAGES
        backbone = "clip" if self.clip_init else self.backbone
        return replace(self, imgsz=imgsz, epochs=epochs, subset=subset, backbone=backbone,
                       batch=batch)

    def check(self) -> None:
        """Refuse bad values with one-line errors (before any file is written)."""
        if self.epochs < 1:
            raise ParameterError("epochs", f"must be at least 1, not {self.epochs}")
        if self.imgsz is not None and not 32 <= self.imgsz <= 4096:
            raise ParameterError("imgsz", f"must be between 32 and 4096, not {self.imgsz}")
        if self.batch is not None and self.batch < 1:
            raise ParameterError("batch", f"must be at least 1, not {self.batch}")
        if self.lr is not None and not 0 < self.lr < 1:
            raise ParameterError("lr", f"must be in (0, 1), not {self.lr}")
        if self.subset < 0:
            raise ParameterError("subset", "must be 0 (all) or a number of images")
        if self.num_queries < 1 or self.decoder_layers < 1:
            raise ParameterError("num_queries", "and --decoder-layers must be at least 1")
        if self.backbone not in BACKBONES:
            raise ParameterError("backbone", f"must be one of {', '.join(BACKBONES)}")
        if (self.clip_init or self.backbone == "clip") and self.model != LIGHT_DETR:
            raise ParameterError("clip_init", "is for --model light-detr only")
        if self.clip_init and not Path(self.clip_init).is_file():
            raise ParameterError("clip_init", f"names no file: {self.clip_init}")
        model_kind(self.model)


def model_kind(model: str) -> str:
    """'light-detr', 'ultralytics-yaml' or 'ultralytics-pt' for a --model value; anything
    else is refused (nothing is downloaded: a .pt must be a local file)."""
    if model == LIGHT_DETR:
        return LIGHT_DETR
    path = Path(model)
    if model.lower().endswith(".pt"):
        if not path.is_file():
            raise LensDBError(f"--model {model}: no such local file (nothing is downloaded "
                              "here; train from a yaml such as yolo11n.yaml)")
        from lensdb.detector.checkpoint import checkpoint_kind

        kind = checkpoint_kind(path)
        return "ultralytics-pt" if kind == "ultralytics" else LIGHT_DETR + "-pt"
    if model.lower().endswith((".yaml", ".yml")):
        if path.is_file() or ULTRALYTICS_YAML.match(model):
            return "ultralytics-yaml"
        raise LensDBError(f"--model {model}: neither a local yaml nor an ultralytics model "
                          "yaml (yolo11n.yaml, yolov8s.yaml, rtdetr-l.yaml)")
    raise LensDBError(f"unknown --model '{model}': use an ultralytics yaml (yolo11n.yaml, "
                      "rtdetr-l.yaml), a local .pt checkpoint, or light-detr")

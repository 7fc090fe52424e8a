"""Settings of `lensdb train-counter`: one frozen dataclass, defaults from the issue."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lensdb.errors import LensDBError

SIZES = ("tiny", "small", "medium")
SPLITS = ("video", "time")
LOSSES = ("mse", "huber", "poisson")
METHODS = ("auto", "mlp", "knn", "interp", "median", "blend", "combo")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # what matplotlib writes by the name alone


@dataclass(frozen=True)
class StageConfig:
    """Optimiser settings of one training stage (Adam, early stopping)."""

    lr: float  # Adam learning rate
    weight_decay: float  # Adam weight decay (L2)
    batch_size: int  # frames per step
    max_epochs: int  # upper bound on passes over the training part
    patience: int  # epochs without a better validation MAE before stopping


# Training from scratch (on COCO with --pretrain-coco, otherwise on the store's frames).
PRETRAIN = StageConfig(lr=1e-3, weight_decay=1e-4, batch_size=256, max_epochs=50, patience=10)
# Fine-tuning a COCO-pretrained MLP on the store's frames.
FINETUNE = StageConfig(lr=1e-4, weight_decay=1e-5, batch_size=128, max_epochs=30, patience=5)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what `train_counters` trains and how; seeded and reproducible."""

    # Classes to train, lowercase detector names; empty: the `default_classes` classes with
    # the most detections in the store's labelled frames.
    classes: tuple[str, ...] = ()
    # How many classes to pick when `classes` is empty.
    default_classes: int = 2
    # MLP size for a D-dim embedding: tiny D->128->1, small D->256->128->1,
    # medium D->512->256->1 (ReLU, dropout, softplus output so counts are never negative).
    size: str = "tiny"
    # Dropout after each hidden layer.
    dropout: float = 0.1
    # "video": whole videos apart (the default when the store has >= 2 labelled videos);
    # "time": each video cut into contiguous blocks (one camera); None: choose as above.
    split: str | None = None
    # Share of the videos (video split) or of each video's blocks (time split) that train;
    # the rest is held out for the test figures.
    train_fraction: float = 0.4
    # Blocks per video in the time split.
    time_blocks: int = 5
    # Share of the training part carved out (same split kind) for early stopping and for
    # choosing between the MLP and kNN.
    val_fraction: float = 0.25
    # Loss of the MLP: mean squared error, Huber (delta 1) or Poisson NLL on the rate.
    loss: str = "mse"
    # Seed for the split, weight init and batch order.
    seed: int = 0
    # Where the count MLPs train and predict: auto | cpu | cuda | cuda:N | mps (lensdb.device).
    device: str = "auto"
    # Torch threads (None: every core); an MLP's training steps on the CPU use one thread.
    threads: int | None = None
    # Stage settings: from-scratch training, and fine-tuning after COCO pretraining.
    pretrain: StageConfig = PRETRAIN
    finetune: StageConfig = FINETUNE
    # "auto": per class, the embedding model (MLP or kNN) with the lower new-footage
    # validation MAE, then the deployed method (interp, median, knn, blend, the embedding
    # model, combo) by fill-in (out-of-fold) MAE; or force one (mlp / knn: that embedding
    # model alone; interp / median / blend / combo: that, with the auto embedding model as
    # the fallback).
    method: str = "auto"
    # Interleaved folds of the fill-in regime: fold = rank of a labelled frame within its
    # video mod `folds`.
    folds: int = 5
    # Neighbours of kNN label propagation (cosine, distance-weighted mean of counts).
    knn_k: int = 5
    # A COCO instances json and its image folder for two-stage training (person and car).
    coco_annotations: Path | None = None
    coco_images: Path | None = None
    # Write a PNG of true vs predicted counts over time for a held-out video here.
    plot: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.size in SIZES, f"--size must be one of {', '.join(SIZES)}, not '{self.size}'"),
            (self.split in (None, *SPLITS), f"--split must be video or time, not '{self.split}'"),
            (self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, not '{self.loss}'"),
            (self.method in METHODS,
             f"--method must be one of {', '.join(METHODS)}, not '{self.method}'"),
            (self.folds >= 2, "folds must be at least 2"),
            (0.0 < self.train_fraction < 1.0, "--train-fraction must lie strictly between 0 and 1"),
            (0.0 < self.val_fraction < 1.0, "val_fraction must lie strictly between 0 and 1"),
            (self.knn_k >= 1, "knn k must be at least 1"),
            (self.time_blocks >= 2, "time_blocks must be at least 2"),
            (self.default_classes >= 1, "default_classes must be at least 1"),
            (0 <= self.seed < 2**32, f"--seed must be between 0 and {2**32 - 1}, not {self.seed}"),
            (self.plot is None or Path(self.plot).suffix.lower() in PLOT_SUFFIXES,
             f"--plot {self.plot}: give a file ending in {', '.join(PLOT_SUFFIXES)}"),
            (
                (self.coco_annotations is None) == (self.coco_images is None),
                "--pretrain-coco and --coco-images go together",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise LensDBError(message)
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise LensDBError("--threads must be between 1 and 1024")
        if self.plot is not None:
            from lensdb.outputs import output_file

            output_file(self.plot, "--plot")  # before any training, not after it
        from lensdb.device import resolve_device

        resolve_device(self.device)  # an unknown or absent device fails before any work

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("coco_annotations", "coco_images", "plot"):
            out[key] = str(out[key]) if out[key] is not None else None
        out["classes"] = list(self.classes)
        return out

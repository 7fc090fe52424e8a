"""The settings of one fine-tuning run (what config.json of a run folder records)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from lensdb.errors import ParameterError
from lensdb.finetune.losses import Objective, check_objective
from lensdb.finetune.model import FREEZE


@dataclass(frozen=True)
class FinetuneConfig:
    """`lensdb finetune-embedder` options; defaults suit fine-tuning a pretrained CLIP."""

    train: str  # training pairs/captions CSV
    val: str  # validation CSV: picks the best epoch and the match threshold
    test: str | None = None  # optional held-out CSV, evaluated once at the end
    image_root: str | None = None  # relative image paths start here (default: each CSV's)
    embedder: str = "clip-vit-b-32"  # what to start from: registry name or clip:ARCH[:CKPT]
    objective: Objective = field(default_factory=Objective)  # loss and its knobs
    epochs: int = 5  # passes over the training images
    batch_size: int = 16  # pairs per step (SANW weights act within a batch)
    lr: float = 5e-6  # peak learning rate (pretrained CLIP; from scratch wants ~1e-3)
    weight_decay: float = 0.1  # AdamW, on weight matrices only (not gains, biases, scale)
    warmup_epochs: float = 1.0  # linear warmup, then cosine decay to zero
    clip_grad: float = 1.0  # gradient norm cap (applied to unscaled gradients under AMP)
    freeze: str = "none"  # none | text | vision: the tower kept fixed
    topical_batches: int = 0  # K > 0: k-means over the starting image embeddings, batches
    # cut from one cluster so they hold near neighbours
    device: str = "auto"  # auto | cpu | cuda | mps
    amp: bool = True  # mixed precision (float16 + grad scaler) on CUDA
    patience: int = 2  # stop after this many epochs without a better val score; 0: never
    seed: int = 0  # batches, caption draws, init of anything random
    strict: bool = False  # refuse unreadable images instead of skipping them
    out: str | None = None  # run folder (default finetune-runs/<time>-<objective>)
    registry: str | None = None  # run registry CSV (default: runs.csv beside the run folder)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["objective"] = Objective(**values.get("objective", {}))
        return cls(**values)

    def with_objective(self, name: str, out: str | None) -> FinetuneConfig:
        return replace(self, objective=replace(self.objective, name=name), out=out)


def check_config(c: FinetuneConfig) -> FinetuneConfig:
    check_objective(c.objective)
    minimums: tuple[tuple[str, int, int], ...] = (
        ("epochs", c.epochs, 1), ("batch_size", c.batch_size, 2),
        ("topical_batches", c.topical_batches, 0), ("patience", c.patience, 0))
    for name, value, low in minimums:
        if value < low:
            raise ParameterError(name, f"must be at least {low}")
    for name, real in (("lr", c.lr), ("clip_grad", c.clip_grad)):
        if not real > 0:
            raise ParameterError(name, "must be positive")
    if c.weight_decay < 0 or c.warmup_epochs < 0:
        raise ParameterError("weight_decay" if c.weight_decay < 0 else "warmup_epochs",
                             "must not be negative")
    if c.freeze not in FREEZE:
        raise ParameterError("freeze", f"must be one of {', '.join(FREEZE)}")
    return c

"""LensDB's trainer for the light DETR: AdamW (peak lr LIGHT_DETR_LR unless --lr), linear
warmup then cosine decay, gradient clipping, an EMA of the weights (what is validated and
saved), horizontal-flip augmentation. The loss is lensdb.detector.light_loss's.

Each epoch: train, then the EMA model on the validation split gives the validation loss
(the set loss) and mAP50 / mAP50-95 (lensdb.detector.metrics); RUN/epochs.csv gets a row,
best.pt (mAP50-95) and best_loss.pt (validation loss) are replaced when beaten, final.pt is
the last epoch's EMA.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lensdb.detector.config import LIGHT_DETR_BATCH, LIGHT_DETR_LR, DetectorTrainConfig
from lensdb.detector.data import label_path, load_data_yaml, read_labels, split_images
from lensdb.detector.evaluate import read_rgb, yolo_to_xyxy
from lensdb.detector.light_ckpt import build_model, load_light_detr, save_light_detr, to_batch
from lensdb.detector.light_detr import LightDetrSpec, postprocess
from lensdb.detector.light_loss import SetCriterion
from lensdb.detector.metrics import MapAccumulator
from lensdb.runs import RunFolder


class _Split:
    """A split held in memory at the training size: images (N,3,S,S) and targets."""

    def __init__(self, images: list[Path], imgsz: int, num_classes: int):
        self.sizes: list[tuple[int, int]] = []
        self.targets: list[dict[str, Any]] = []
        batches = []
        for p in images:
            rgb = read_rgb(p)
            self.sizes.append((rgb.shape[0], rgb.shape[1]))
            batches.append(to_batch([rgb], imgsz, "cpu"))
            lab = read_labels(label_path(p))
            lab = lab[(lab[:, 0] < num_classes) & (lab[:, 3] > 0) & (lab[:, 4] > 0)]
            self.targets.append({"labels": torch.as_tensor(lab[:, 0], dtype=torch.long),
                                 "boxes": torch.as_tensor(lab[:, 1:5]).clamp(0, 1),
                                 "raw": lab})
        self.x = torch.cat(batches) if batches else torch.zeros(0, 3, imgsz, imgsz)

    def __len__(self) -> int:
        return len(self.targets)


def _flip(x: torch.Tensor, targets: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    out = []
    for t in targets:
        b = t["boxes"].clone()
        b[:, 0] = 1 - b[:, 0]
        out.append({"labels": t["labels"], "boxes": b})
    return x.flip(-1), out


class _Ema:
    """EMA of the weights; the decay ramps up ((1+n)/(10+n)) so early epochs are usable."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval()
        self.decay, self.updates = decay, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def validate(model, criterion, split: _Split, device: str, batch: int) -> dict[str, float]:
    model.eval()
    acc = MapAccumulator(criterion.num_classes)
    losses = []
    for s in range(0, len(split), batch):
        x = split.x[s:s + batch].to(device)
        tg = [{k: v.to(device) for k, v in t.items() if k != "raw"}
              for t in split.targets[s:s + batch]]
        out = model(x)
        losses.append(float(criterion(out, tg)[0]) * len(tg))
        sizes = split.sizes[s:s + batch]
        for (boxes, scores, cls), (h, w), t in zip(postprocess(out, sizes, 0.001, 0.7), sizes,
                                                  split.targets[s:s + batch]):
            acc.add(boxes, scores, cls, yolo_to_xyxy(t["raw"], w, h), t["raw"][:, 0])
    r = acc.result()
    return {"val_loss": sum(losses) / max(1, len(split)), "map50": r["map50"],
            "map50_95": r["map50_95"], "precision": r["precision"], "recall": r["recall"]}


def _spec(c: DetectorTrainConfig, num_classes: int) -> tuple[LightDetrSpec, Any]:
    """The architecture, and the checkpoint to start from (a light-detr .pt), if any."""
    if c.model.endswith(".pt"):
        _, _, obj = load_light_detr(c.model)
        return LightDetrSpec(**obj["spec"]), obj
    imgsz = c.imgsz or 128
    return LightDetrSpec(num_classes, c.num_queries, c.hidden_dim, c.decoder_layers,
                         backbone=c.backbone, clip_arch=c.clip_arch if c.backbone == "clip"
                         else None, imgsz=imgsz), None


def train_light_detr(c: DetectorTrainConfig, data_yaml: Path, run: RunFolder, device: str,
                     emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from lensdb.errors import LensDBError

    torch.manual_seed(c.seed)
    ds = load_data_yaml(data_yaml)
    names = list(ds.names)
    spec, start = _spec(c, len(names))
    if spec.num_classes != len(names):
        raise LensDBError(f"--model {c.model} has {spec.num_classes} classes, the data "
                          f"{len(names)}")
    model = build_model(spec, c.clip_init)
    if start is not None:
        model.load_state_dict(start["state_dict"])
    model.to(device)
    train = _Split(split_images(ds, "train"), spec.imgsz, len(names))
    val = _Split(split_images(ds, "val"), spec.imgsz, len(names))
    criterion = SetCriterion(len(names)).to(device)
    lr = c.lr or LIGHT_DETR_LR
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    batch = c.batch or LIGHT_DETR_BATCH  # effective() filled it in
    steps_per_epoch = math.ceil(len(train) / batch)
    total, warmup = steps_per_epoch * c.epochs, max(1, int(c.warmup_epochs * steps_per_epoch))
    ema = _Ema(model, c.ema_decay) if c.ema_decay > 0 else None
    gen = torch.Generator().manual_seed(c.seed)
    best_map, best_loss, best_map_epoch, best_loss_epoch = -1.0, math.inf, 0, 0
    started, step, row = time.time(), 0, {}
    for epoch in range(1, c.epochs + 1):
        model.train()
        sums: dict[str, float] = {"loss": 0.0, "cls": 0.0, "l1": 0.0, "giou": 0.0}
        for idx in torch.randperm(len(train), generator=gen).split(batch):
            x = train.x[idx]
            tg = [{k: v for k, v in train.targets[i].items() if k != "raw"} for i in idx]
            if torch.rand(1, generator=gen).item() < 0.5:
                x, tg = _flip(x, tg)
            tg = [{k: v.to(device) for k, v in t.items()} for t in tg]
            for g in opt.param_groups:
                g["lr"] = lr * lr_factor(step, total, warmup)
            loss, parts = criterion(model(x.to(device)), tg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model)
            step += 1
            sums["loss"] += float(loss.detach())
            for k, v in parts.items():
                sums[k] += v
        evaluated = ema.model if ema is not None else model
        v = validate(evaluated, criterion, val, device, batch)
        row = {"epoch": epoch, **{f"train_{k}": s / steps_per_epoch for k, s in sums.items()
                                  if k != "loss"},
               "train_loss": sums["loss"] / steps_per_epoch, "val_loss": v["val_loss"],
               "lr": opt.param_groups[0]["lr"], "precision": v["precision"],
               "recall": v["recall"], "map50": v["map50"], "map50_95": v["map50_95"],
               "seconds": round(time.time() - started, 1)}
        run.log_epoch(row)
        if v["map50_95"] > best_map:
            best_map, best_map_epoch = v["map50_95"], epoch
            save_light_detr(evaluated, run.root / "best.pt", names, epoch, v)
        if v["val_loss"] < best_loss:
            best_loss, best_loss_epoch = v["val_loss"], epoch
            save_light_detr(evaluated, run.root / "best_loss.pt", names, epoch, v)
        emit({"kind": "epoch", **row, "epochs": c.epochs})
    save_light_detr(ema.model if ema is not None else model, run.root / "final.pt", names,
                    c.epochs, row)
    return {"epochs_run": c.epochs, "best_epoch_map": best_map_epoch,
            "best_epoch_loss": best_loss_epoch, "best_val_loss": best_loss, "last_epoch": row}

"""Evaluate an open_clip model on a pairs/captions file: retrieval both ways and
match/mismatch, with the threshold picked on validation.

    report = evaluate_checkpoint("runs/x/best.pt", "test.csv")    # `lensdb finetune-embedder eval`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import LensDBError
from lensdb.finetune.data import ImageBank, PairData
from lensdb.finetune.metrics import match_metrics, pick_threshold, retrieval_metrics
from lensdb.finetune.model import ClipModel
from lensdb.finetune.pairs import mismatch_pairs, read_pairs, usable_pairs


def load_data(path: str | Path, image_root: str | Path | None = None, strict: bool = False,
              ensure_mismatches: bool = False, seed: int = 0) -> PairData:
    """A file's usable pairs; unreadable images skipped (counted) or, `strict`, refused.
    `ensure_mismatches`: a file with matches only gets one made mismatch per match."""
    pf = read_pairs(path, image_root)
    pairs, bad = usable_pairs(pf, strict)
    if not any(p.label == 1 for p in pairs):
        raise LensDBError(f"{pf.path.name} has no usable matching pairs"
                          + (f" ({len(bad)} unreadable image(s) skipped)" if bad else ""))
    made = []
    if ensure_mismatches and all(p.label == 1 for p in pairs):
        made = mismatch_pairs(pairs, 1, seed)
    return PairData.from_pairs(pairs + made, skipped=len(bad), generated=len(made))


def embed(cm: ClipModel, data: PairData, bank: ImageBank, device: str,
          batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Unit image embeddings (one per distinct image) and text embeddings (one per row)."""
    import torch
    import torch.nn.functional as F

    model = cm.model
    was_training = model.training
    model.eval()
    imgs, txts = [], []
    with torch.no_grad():
        for s in range(0, len(data.images), batch_size):
            x = bank.get(range(s, min(s + batch_size, len(data.images)))).to(device)
            imgs.append(F.normalize(model.encode_image(x).float(), dim=-1).cpu().numpy())
        for s in range(0, len(data.texts), batch_size):
            tok = cm.tokenizer(data.texts[s:s + batch_size]).to(device)
            txts.append(F.normalize(model.encode_text(tok).float(), dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(imgs), np.concatenate(txts)


@dataclass
class Scores:
    """Raw material of the match metrics: cosine and label per row."""

    cos: np.ndarray
    labels: np.ndarray


def evaluate_model(cm: ClipModel, data: PairData, bank: ImageBank, device: str,
                   threshold: float | None = None) -> tuple[dict[str, float], Scores]:
    """Retrieval over the matches, match metrics over every row; `threshold` None: the one
    that is best on this data (say so: it flatters)."""
    img, txt = embed(cm, data, bank, device)
    rows = data.match_rows()
    metrics = retrieval_metrics(img, txt[rows], data.image_of[rows])
    cos = (img[data.image_of] * txt).sum(1)
    scores = Scores(cos, data.labels)
    if (data.labels == 0).any():
        t = pick_threshold(cos, data.labels) if threshold is None else threshold
        metrics.update(match_metrics(cos, data.labels, t))
    return metrics, scores


@dataclass
class EvalReport:
    """What `lensdb finetune-embedder eval` prints."""

    checkpoint: str  # the embedder spec evaluated
    data: str  # the file
    images: int  # usable distinct images
    rows: int  # rows evaluated (made mismatches included)
    skipped_images: int  # unreadable, left out
    generated_mismatches: int  # made because the file had matches only
    threshold_source: str  # "checkpoint (picked on validation)" or "this data (optimistic)"
    metrics: dict[str, float]
    baseline: dict[str, float] | None = None  # the model it was fine-tuned from, if given

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("metrics", "baseline")}
        out["finetuned"] = self.metrics
        if self.baseline is not None:
            out["pretrained"] = self.baseline
        return out


def evaluate_checkpoint(checkpoint: str, data_file: str | Path,
                        image_root: str | Path | None = None, device: str = "auto",
                        strict: bool = False, baseline: str | None = None,
                        seed: int = 0) -> EvalReport:
    """Evaluate a checkpoint (a LensDB `best.pt` path, or any embedder spec) on a file;
    with `baseline` (an embedder spec) the same metrics for it side by side."""
    from lensdb.device import resolve_device
    from lensdb.finetune.model import load_trainable

    dev = resolve_device(device)
    data = load_data(data_file, image_root, strict, ensure_mismatches=True, seed=seed)
    cm = load_trainable(checkpoint, "evaluation")
    cm.model.to(dev)
    bank = ImageBank(data.images, cm.preprocess)
    metrics, _ = evaluate_model(cm, data, bank, dev, cm.threshold)
    base = None
    if baseline:
        bm = load_trainable(baseline, "evaluation")
        bm.model.to(dev)
        base, _ = evaluate_model(bm, data, ImageBank(data.images, bm.preprocess), dev,
                                 bm.threshold)
    source = ("checkpoint (picked on validation)" if cm.threshold is not None
              else "this data (optimistic)")
    return EvalReport(cm.spec, str(data_file), len(data.images), len(data.texts), data.skipped,
                      data.generated_mismatches, source, metrics, base)

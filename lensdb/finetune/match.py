"""Does this text describe this image? Cosine similarity, a probability where the model
was calibrated (a bce head, or the logistic fit on validation at the end of fine-tuning)
and a match/mismatch call at a threshold (given, else the one picked on validation).

    match("frame.jpg", ["a red bus", "an empty street"], embedder="clip:lensdb-tiny:run/best.pt")
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError, ParameterError


@dataclass(frozen=True)
class MatchResult:
    """One text against the image."""

    text: str
    similarity: float  # cosine of the unit image and text embeddings
    probability: float | None  # P(match); None when the model was never calibrated
    match: bool | None  # similarity >= threshold; None without a threshold
    threshold: float | None  # the cosine threshold used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probability(cm, cos: float) -> float | None:
    if cm.head is not None:
        import torch

        with torch.no_grad():
            return float(torch.sigmoid(cm.head(torch.tensor(cos))))
    cal = cm.meta.get("calibration")
    if cal:
        return 1 / (1 + math.exp(-(cal["a"] * cos + cal["b"])))
    return None


def match(image: str | Path | Any, texts: list[str], embedder: str = "clip-vit-b-32",
          threshold: float | None = None) -> list[MatchResult]:
    """Score each text against one image (a path, or an HxWx3 uint8 RGB array)."""
    import numpy as np

    from lensdb.finetune.model import load_trainable

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ParameterError("text", "needs at least one non-empty text")
    if threshold is not None and not -1 <= threshold <= 1:
        raise ParameterError("threshold", "is a cosine: between -1 and 1")
    if isinstance(image, str | Path):
        from lensdb.finetune.pairs import image_problem

        why = image_problem(Path(image))
        if why:
            raise LensDBError(f"image {image}: {why}")
        from PIL import Image

        with Image.open(image) as img:
            rgb = np.asarray(img.convert("RGB"))
    else:
        rgb = np.asarray(image)
    cm = load_trainable(embedder, "match")
    import torch
    import torch.nn.functional as F
    from PIL import Image

    with torch.no_grad():
        x = cm.preprocess(Image.fromarray(rgb)).unsqueeze(0)
        v = F.normalize(cm.model.encode_image(x).float(), dim=-1)
        t = F.normalize(cm.model.encode_text(cm.tokenizer(texts)).float(), dim=-1)
        cos = (t @ v.T).squeeze(1).tolist()
    t_used = threshold if threshold is not None else cm.threshold
    return [MatchResult(text, float(c), _probability(cm, float(c)),
                        None if t_used is None else bool(c >= t_used), t_used)
            for text, c in zip(texts, cos)]

"""Zero-shot scoring: crop embeddings against the prompt-ensemble text embeddings of the
values, softmax(100 * cosine) as CLIP does; with spatial prompts, each crop is scored
against the head of its own position."""

from __future__ import annotations

import numpy as np

from lensdb.classify.conditions import ConditionSet, text_heads
from lensdb.classify.probe import Linear, softmax

LOGIT_SCALE = 100.0  # CLIP's trained temperature (clamped at 100)


class ZeroShot:
    """A zero-shot classifier of one condition set for one (text-capable) embedder."""

    method = "zero-shot"

    def __init__(self, embedder, cs: ConditionSet, spatial: bool = False):
        self.spatial = spatial
        self.heads = text_heads(embedder, cs, spatial)  # raises for an embedder without text

    def proba(self, vectors: np.ndarray, positions: list[str]) -> np.ndarray:
        """(n, n_values) probabilities; `positions` matter only with spatial prompts."""
        x = np.asarray(vectors, np.float32)
        if not self.spatial:
            return softmax(LOGIT_SCALE * x @ self.heads[""].T)
        out = np.zeros((len(x), next(iter(self.heads.values())).shape[0]), np.float32)
        for pos in set(positions):
            rows = [i for i, p in enumerate(positions) if p == pos]
            out[rows] = softmax(LOGIT_SCALE * x[rows] @ self.heads[pos].T)
        return out

    def linear(self) -> Linear:
        """The non-spatial head as a linear layer (for WiSE-FT blending)."""
        head = self.heads[""] if "" in self.heads else np.mean(list(self.heads.values()), 0)
        return Linear((LOGIT_SCALE * head).astype(np.float32),
                      np.zeros(len(head), np.float32))


class Trained:
    """A stored linear classifier, applied to crop embeddings."""

    method = "linear-probe"

    def __init__(self, model: Linear, classifier_id: int, method: str = "linear-probe"):
        self.model, self.classifier_id, self.method = model, classifier_id, method

    def proba(self, vectors: np.ndarray, positions: list[str]) -> np.ndarray:
        return self.model.proba(vectors)

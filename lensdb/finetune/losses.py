"""The fine-tuning objectives, on a batch of unit-length image and text embeddings.

- `bce`: match/mismatch, `sigmoid(scale * cos + bias)` against labels 0/1, scale and bias
  learnable (`MatchHead`).
- `infonce`: CLIP's symmetric cross-entropy over the batch, `logits = scale * I @ T.T`,
  the pair i, i the positive of row i and of column i.
- `sanw-debias`, `sanw-bandpass`: the same cross-entropy with every negative's term in the
  denominator weighted (the positive's weight stays 1):

      loss_i = -log( e^{l_ii} / (e^{l_ii} + sum_{j != i} w_ij e^{l_ij}) )

  The weights come from a similarity computed without gradients,
  `sim_ij = alpha * cos(v_i, v_j) + (1 - alpha) * cos(t_i, t_j)` (alpha weighs image-image,
  the rest is text-text), through
      debias:   raw_ij = 1 - sigmoid(lam * (sim_ij - delta))          (close: false negative)
      bandpass: raw_ij = sigmoid((sim_ij - m1) / gamma) * (1 - sigmoid((sim_ij - m2) / gamma))
  and are renormalised per row to mean 1 over the row's negatives, so the loss scale stays
  InfoNCE's. sim is symmetric, so one weight matrix serves both directions. With every
  weight 1 the SANW losses equal InfoNCE exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OBJECTIVES = ("bce", "infonce", "sanw-debias", "sanw-bandpass")
MAX_SCALE = 100.0  # logit scale cap (CLIP's), the log of it is what open_clip clamps


@dataclass(frozen=True)
class Objective:
    """An objective and its knobs (defaults inside the ranges seen to work in practice)."""

    name: str = "infonce"  # one of OBJECTIVES
    alpha: float | None = None  # SANW: weight of image-image cosine in sim (None: default)
    delta: float = 0.3  # debias: the similarity where the weight is halfway (0.2-0.5)
    lam: float = 1.0  # debias: steepness (0.5-2.0)
    m1: float = 0.2  # bandpass: lower edge, easier negatives are damped (0.1-0.3)
    m2: float = 0.85  # bandpass: upper edge, harder (likely false) negatives damped (0.8-0.9)
    gamma: float = 0.75  # bandpass: softness of both edges (0.5-1.0)

    @property
    def mix(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 0.2 if self.name == "sanw-debias" else 0.15

    @property
    def is_sanw(self) -> bool:
        return self.name.startswith("sanw-")


def check_objective(obj: Objective) -> Objective:
    from lensdb.errors import ParameterError

    if obj.name not in OBJECTIVES:
        raise ParameterError("objective", f"must be one of {', '.join(OBJECTIVES)}, "
                             f"not '{obj.name}'")
    if not 0 <= obj.mix <= 1:
        raise ParameterError("alpha", "must be in [0, 1]")
    if obj.lam <= 0 or obj.gamma <= 0:
        raise ParameterError("lam" if obj.lam <= 0 else "gamma", "must be positive")
    if obj.m1 >= obj.m2:
        raise ParameterError("m1", "must be below --m2")
    return obj


class MatchHead(nn.Module):
    """Learnable scale and bias on the cosine for match/mismatch (bce)."""

    def __init__(self, scale: float = 10.0, bias: float = 0.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def forward(self, cos: Tensor) -> Tensor:
        return self.log_scale.clamp(max=math.log(MAX_SCALE)).exp() * cos + self.bias


def bce_loss(img: Tensor, txt: Tensor, labels: Tensor, head: MatchHead) -> Tensor:
    """Mean binary cross-entropy of `head(cos(img_i, txt_i))` against labels (0/1)."""
    cos = (img * txt).sum(-1)
    return F.binary_cross_entropy_with_logits(head(cos), labels.float())


def infonce_loss(img: Tensor, txt: Tensor, scale: Tensor | float) -> Tensor:
    """Symmetric cross-entropy; row i of img matches row i of txt."""
    logits = scale * img @ txt.T
    target = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def weighted_infonce(img: Tensor, txt: Tensor, scale: Tensor | float, weights: Tensor) -> Tensor:
    """InfoNCE with each negative's denominator term multiplied by `weights[i, j]` (the
    diagonal is ignored: the positive counts once, unweighted)."""
    logits = scale * img @ txt.T
    n = len(img)
    eye = torch.eye(n, dtype=torch.bool, device=img.device)
    logw = torch.where(eye, torch.zeros_like(weights), torch.log(weights.clamp_min(1e-12)))
    pos = logits.diagonal()
    i2t = torch.logsumexp(logits + logw, dim=1) - pos
    t2i = torch.logsumexp(logits.T + logw, dim=1) - pos
    return (i2t.mean() + t2i.mean()) / 2


def mixed_similarity(img: Tensor, txt: Tensor, alpha: float) -> Tensor:
    """alpha * image-image cosine + (1 - alpha) * text-text cosine, without gradients."""
    with torch.no_grad():
        img, txt = img.detach().float(), txt.detach().float()
        return alpha * img @ img.T + (1 - alpha) * txt @ txt.T


def raw_weights(sim: Tensor, obj: Objective) -> Tensor:
    if obj.name == "sanw-debias":
        return 1 - torch.sigmoid(obj.lam * (sim - obj.delta))
    if obj.name == "sanw-bandpass":
        return torch.sigmoid((sim - obj.m1) / obj.gamma) * (1 - torch.sigmoid((sim - obj.m2)
                                                                               / obj.gamma))
    raise ValueError(f"{obj.name} has no negative weights")


def normalise_negatives(raw: Tensor) -> Tensor:
    """Each row's off-diagonal entries scaled to mean 1; the diagonal set to 1."""
    n = raw.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=raw.device)
    off = raw.masked_fill(eye, 0.0)
    mean = off.sum(1, keepdim=True) / max(n - 1, 1)
    return torch.where(eye, torch.ones_like(raw), off / mean.clamp_min(1e-12))


def sanw_weights(img: Tensor, txt: Tensor, obj: Objective) -> tuple[Tensor, Tensor]:
    """(normalised weights, raw weights) for a batch, both without gradients."""
    with torch.no_grad():
        raw = raw_weights(mixed_similarity(img, txt, obj.mix), obj)
        return normalise_negatives(raw), raw


def batch_loss(obj: Objective, img: Tensor, txt: Tensor, scale: Tensor,
               labels: Tensor | None = None, head: MatchHead | None = None
               ) -> tuple[Tensor, dict[str, float]]:
    """The objective's loss on one batch and, for SANW, statistics of the raw weights of
    the negatives (mean, fraction below 0.5) and of the normalised ones (fraction < 0.5)."""
    if obj.name == "bce":
        if labels is None or head is None:
            raise ValueError("bce needs labels and a MatchHead")
        return bce_loss(img, txt, labels, head), {}
    if obj.name == "infonce":
        return infonce_loss(img, txt, scale), {}
    weights, raw = sanw_weights(img, txt, obj)
    n = len(img)
    off = ~torch.eye(n, dtype=torch.bool, device=img.device)
    stats = {}
    if n > 1:
        stats = {"w_mean": float(raw[off].mean()), "w_below_half": float((raw[off] < 0.5)
                                                                          .float().mean()),
                 "wn_below_half": float((weights[off] < 0.5).float().mean())}
    return weighted_infonce(img, txt, scale, weights), stats

"""The light DETR's set loss: Hungarian matching, sigmoid focal classification, L1, GIoU.

    loss, parts = SetCriterion(num_classes=3)(model(images), targets)
    # targets: [{"labels": (n,) long, "boxes": (n, 4) cxcywh in [0, 1]}] per image
    # parts: {"cls", "l1", "giou"} summed over the final, auxiliary and encoder outputs

Matching (scipy's linear_sum_assignment) costs a focal class cost, L1 and GIoU (Deformable
DETR's weights 2 / 5 / 2). The decoder's outputs are matched one-to-one (a set
prediction: no NMS needed); the encoder's per-cell proposals one-to-many, each object to
its `enc_k` cheapest cells (the targets repeated `enc_k` times, as in H-DETR's hybrid
branch), which trains the proposal map densely and is what makes the first minutes count.
The classification loss is the sigmoid focal loss (alpha 0.25, gamma 2) over every query,
normalised by the number of objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou, sigmoid_focal_loss

from lensdb.detector.light_detr import box_cxcywh_to_xyxy

ALPHA, GAMMA = 0.25, 2.0


class HungarianMatcher(nn.Module):
    def __init__(self, cost_class: float = 2.0, cost_l1: float = 5.0, cost_giou: float = 2.0):
        super().__init__()
        self.cost_class, self.cost_l1, self.cost_giou = cost_class, cost_l1, cost_giou

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict],
                repeat: int = 1):
        """[(query indices, target indices)] per image; with `repeat` > 1 each target is
        matched to `repeat` queries (one-to-many)."""
        from scipy.optimize import linear_sum_assignment

        out = []
        probs = logits.sigmoid()
        for i, t in enumerate(targets):
            if len(t["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.long)
                out.append((empty, empty))
                continue
            p = probs[i][:, t["labels"]]
            neg = (1 - ALPHA) * p ** GAMMA * -(1 - p + 1e-8).log()
            pos = ALPHA * (1 - p) ** GAMMA * -(p + 1e-8).log()
            cost = (self.cost_class * (pos - neg)
                    + self.cost_l1 * torch.cdist(boxes[i], t["boxes"], p=1)
                    - self.cost_giou * generalized_box_iou(box_cxcywh_to_xyxy(boxes[i]),
                                                           box_cxcywh_to_xyxy(t["boxes"])))
            n = len(t["labels"])
            reps = max(1, min(repeat, cost.shape[0] // n))
            qi, ti = linear_sum_assignment(cost.repeat(1, reps).cpu().numpy())
            out.append((torch.as_tensor(qi, dtype=torch.long),
                        torch.as_tensor(ti % n, dtype=torch.long)))
        return out


class SetCriterion(nn.Module):
    """Focal + L1 + GIoU on matched queries, over the final, every auxiliary decoder
    output and the encoder proposals (`enc_k`: objects per proposal cell matching)."""

    def __init__(self, num_classes: int, w_cls: float = 2.0, w_l1: float = 5.0,
                 w_giou: float = 2.0, enc_k: int = 4):
        super().__init__()
        self.num_classes, self.w, self.enc_k = num_classes, (w_cls, w_l1, w_giou), enc_k
        self.matcher = HungarianMatcher()

    def _one(self, out: dict, targets: list[dict], n_boxes: float, repeat: int = 1) -> dict:
        logits, boxes = out["logits"], out["boxes"]
        idx = self.matcher(logits, boxes, targets, repeat)
        onehot = torch.zeros_like(logits)
        src_b, tgt_b = [], []
        for i, (qi, ti) in enumerate(idx):
            onehot[i, qi.to(logits.device), targets[i]["labels"][ti]] = 1.0
            src_b.append(boxes[i, qi])
            tgt_b.append(targets[i]["boxes"][ti])
        norm = n_boxes * repeat
        cls = sigmoid_focal_loss(logits, onehot, ALPHA, GAMMA, reduction="sum") / norm
        src, tgt = torch.cat(src_b), torch.cat(tgt_b)
        if len(src):
            l1 = F.l1_loss(src, tgt, reduction="sum") / norm
            giou = (1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src),
                                                       box_cxcywh_to_xyxy(tgt)))).sum() / norm
        else:
            l1 = giou = boxes.sum() * 0
        return {"cls": cls, "l1": l1, "giou": giou}

    def forward(self, out: dict, targets: list[dict]) -> tuple[torch.Tensor, dict]:
        n_boxes = max(1.0, float(sum(len(t["labels"]) for t in targets)))
        parts = {k: v.clone() for k, v in self._one(out, targets, n_boxes).items()}
        extra = [(aux, 1) for aux in out.get("aux", [])]
        if "enc" in out:
            extra.append((out["enc"], self.enc_k))
        for o, repeat in extra:
            for k, v in self._one(o, targets, n_boxes, repeat).items():
                parts[k] = parts[k] + v
        w_cls, w_l1, w_giou = self.w
        total = w_cls * parts["cls"] + w_l1 * parts["l1"] + w_giou * parts["giou"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

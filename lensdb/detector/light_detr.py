"""LensDB's light DETR: a small backbone, a transformer, learned queries, set prediction.

    model = LightDetr(LightDetrSpec(num_classes=3))       # mobilenet_v3_small, random init
    out = model(images)            # {"logits": (B,Q,C+1), "boxes": (B,Q,4) cxcywh in [0,1],
                                   #  "aux": [per decoder layer, the same]}
    loss, parts = SetCriterion(3)(out, targets)   # Hungarian matching, CE + L1 + GIoU

Backbones: torchvision mobilenet_v3_small (weights=None: nothing is downloaded; GroupNorm
for BatchNorm; stride-16 and stride-32 maps fused to one stride-16 map), or an open_clip
visual tower (`clip`): a ModifiedResNet trunk gives a stride-32 map at any input size, a
ViT its patch tokens at its own image size. Then one encoder layer over the feature tokens
(2-D sine positions) and `decoder_layers` decoder layers over `num_queries` learned
queries, each anchored on a learned reference point whose box every layer refines
(Deformable DETR's iterative refinement: far fewer epochs than the original DETR); a class
head (with a no-object class) and a box head after every decoder layer (auxiliary losses).
Matching costs: class probability, L1 and GIoU (scipy's linear_sum_assignment).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class LightDetrSpec:
    """The architecture: what a checkpoint needs to rebuild the network."""

    num_classes: int  # object classes (a no-object class is added)
    num_queries: int = 20  # learned object queries: the most objects found per image
    hidden_dim: int = 128  # transformer width
    decoder_layers: int = 3  # transformer decoder layers
    encoder_layers: int = 1  # transformer encoder layers over the feature tokens
    heads: int = 4  # attention heads
    backbone: str = "mobilenet_v3_small"  # or "clip"
    clip_arch: str | None = None  # open_clip architecture when backbone == "clip"
    imgsz: int = 128  # square input size


def box_cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def sine_positions(h: int, w: int, dim: int, device) -> torch.Tensor:
    """(h*w, dim) 2-D sine/cosine positions, half the channels for y, half for x."""
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device) / quarter))
    ys = (torch.arange(h, device=device).float() + 0.5) / h * 2 * math.pi
    xs = (torch.arange(w, device=device).float() + 0.5) / w * 2 * math.pi
    py, px = ys[:, None] * freq[None], xs[:, None] * freq[None]
    py = torch.cat([py.sin(), py.cos()], -1)[:, None, :].expand(h, w, -1)
    px = torch.cat([px.sin(), px.cos()], -1)[None, :, :].expand(h, w, -1)
    return torch.cat([py, px], -1).reshape(h * w, -1)


def point_positions(xy: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., 2) points in [0, 1] -> (..., dim) sine positions, like `sine_positions`."""
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=xy.device) / quarter))
    a = xy[..., :, None] * 2 * math.pi * freq  # (..., 2, quarter)
    emb = torch.cat([a.sin(), a.cos()], -1)  # (..., 2, dim/2)
    return emb.flatten(-2)


def _group_norm(module: nn.Module) -> nn.Module:
    """BatchNorm -> GroupNorm(8) throughout: a from-scratch backbone trained for a few
    hundred small batches has running statistics far from its batch statistics, so its
    eval-mode outputs would be nonsense; GroupNorm is the same in training and eval."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(8 if c % 8 == 0 else 1, c))
        else:
            _group_norm(child)
    return module


class MobileNetBackbone(nn.Module):
    """mobilenet_v3_small features, stride 16 (48 ch) + upsampled stride 32 (576 ch)."""

    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, hidden: int):
        super().__init__()
        from torchvision.models import mobilenet_v3_small

        feats: Any = _group_norm(mobilenet_v3_small(weights=None).features)
        self.low, self.high = feats[:9], feats[9:]
        self.proj_low, self.proj_high = nn.Conv2d(48, hidden, 1), nn.Conv2d(576, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low(x)
        high = self.high(low)
        up = F.interpolate(self.proj_high(high), size=low.shape[-2:], mode="nearest")
        return self.proj_low(low) + up


class ClipBackbone(nn.Module):
    """An open_clip visual tower as a feature map (ModifiedResNet trunk or ViT tokens)."""

    mean, std = CLIP_MEAN, CLIP_STD

    def __init__(self, visual: Any, hidden: int):
        super().__init__()
        self.visual: Any = visual
        self.is_vit = hasattr(visual, "transformer")
        if self.is_vit:
            visual.output_tokens = True
            channels = visual.transformer.width
        else:
            channels = visual.layer4[-1].conv3.out_channels if hasattr(
                visual.layer4[-1], "conv3") else visual.attnpool.c_proj.in_features
        self.proj = nn.Conv2d(channels, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v: Any = self.visual
        if self.is_vit:
            _, tokens = v(x)
            side = int(round(math.sqrt(tokens.shape[1])))
            fmap = tokens.transpose(1, 2).reshape(x.shape[0], -1, side, side)
        else:
            x = v.stem(x)
            fmap = v.layer4(v.layer3(v.layer2(v.layer1(x))))
        return self.proj(fmap)


class MLP(nn.Sequential):
    def __init__(self, dim: int, out: int, layers: int = 3):
        mods: list[nn.Module] = []
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, dim), nn.ReLU()]
        super().__init__(*mods, nn.Linear(dim, out))


class LightDetr(nn.Module):
    def __init__(self, spec: LightDetrSpec, clip_visual: nn.Module | None = None):
        super().__init__()
        self.spec = spec
        d = spec.hidden_dim
        if spec.backbone == "clip":
            if clip_visual is None:
                raise ValueError("the clip backbone needs its visual tower")
            self.backbone: nn.Module = ClipBackbone(clip_visual, d)
        else:
            self.backbone = MobileNetBackbone(d)
        bb: Any = self.backbone
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(bb.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(bb.std).view(1, 3, 1, 1))
        enc = nn.TransformerEncoderLayer(d, spec.heads, d * 4, 0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, spec.encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.ModuleList(
            nn.TransformerDecoderLayer(d, spec.heads, d * 4, 0.0, batch_first=True)
            for _ in range(spec.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.queries = nn.Embedding(spec.num_queries, d)
        # each query starts from a learned reference point spread over the image; every
        # decoder layer refines the box of the layer before (iterative refinement)
        self.reference = nn.Parameter(torch.rand(spec.num_queries, 2) * 0.8 + 0.1)
        self.ref_pos = MLP(d, d, 2)
        self.class_head = nn.Linear(d, spec.num_classes + 1)
        self.box_head = MLP(d, 4)
        last: Any = self.box_head[-1]
        nn.init.constant_(last.weight, 0.0)
        nn.init.constant_(last.bias, 0.0)
        nn.init.constant_(self.class_head.bias, 0.0)

    def forward(self, images: torch.Tensor) -> dict:
        """`images`: (B, 3, H, W) floats in [0, 1]."""
        fmap = self.backbone((images - self.mean) / self.std)
        b, d, h, w = fmap.shape
        pos = sine_positions(h, w, d, fmap.device)[None]
        memory = self.encoder(fmap.flatten(2).transpose(1, 2) + pos)
        memory = memory + pos
        tgt = self.queries.weight[None].expand(b, -1, -1)
        ref = self.reference[None].expand(b, -1, -1)  # (B, Q, 2) centre in [0, 1]
        box_logit = torch.cat([torch.logit(ref.clamp(1e-4, 1 - 1e-4)),
                               torch.full_like(ref, -1.5)], -1)  # start ~0.18 of the side
        outs = []
        for layer in self.decoder:
            centre = box_logit[..., :2].sigmoid().detach()
            tgt = layer(tgt + self.ref_pos(point_positions(centre, d)), memory)
            hs = self.norm(tgt)
            box_logit = box_logit.detach() + self.box_head(hs)
            outs.append({"logits": self.class_head(hs), "boxes": box_logit.sigmoid()})
        return {**outs[-1], "aux": outs[:-1]}


class HungarianMatcher(nn.Module):
    def __init__(self, cost_class: float = 1.0, cost_l1: float = 5.0, cost_giou: float = 2.0):
        super().__init__()
        self.cost_class, self.cost_l1, self.cost_giou = cost_class, cost_l1, cost_giou

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict]):
        """[(query indices, target indices)] per image."""
        from scipy.optimize import linear_sum_assignment

        out = []
        probs = logits.softmax(-1)
        for i, t in enumerate(targets):
            if len(t["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.long)
                out.append((empty, empty))
                continue
            cost = (-self.cost_class * probs[i][:, t["labels"]]
                    + self.cost_l1 * torch.cdist(boxes[i], t["boxes"], p=1)
                    - self.cost_giou * generalized_box_iou(box_cxcywh_to_xyxy(boxes[i]),
                                                           box_cxcywh_to_xyxy(t["boxes"])))
            qi, ti = linear_sum_assignment(cost.cpu().numpy())
            out.append((torch.as_tensor(qi, dtype=torch.long),
                        torch.as_tensor(ti, dtype=torch.long)))
        return out


class SetCriterion(nn.Module):
    """DETR's loss: CE over classes (no-object down-weighted), L1 and GIoU on matched boxes,
    summed over the final and every auxiliary decoder output."""

    def __init__(self, num_classes: int, eos_coef: float = 0.1, w_ce: float = 1.0,
                 w_l1: float = 5.0, w_giou: float = 2.0):
        super().__init__()
        self.num_classes, self.w = num_classes, (w_ce, w_l1, w_giou)
        self.matcher = HungarianMatcher()
        weight = torch.ones(num_classes + 1)
        weight[-1] = eos_coef
        self.empty_weight: torch.Tensor
        self.register_buffer("empty_weight", weight)

    def _one(self, out: dict, targets: list[dict], n_boxes: float) -> dict:
        logits, boxes = out["logits"], out["boxes"]
        idx = self.matcher(logits, boxes, targets)
        target_cls = torch.full(logits.shape[:2], self.num_classes, dtype=torch.long,
                                device=logits.device)
        src_b, tgt_b = [], []
        for i, (qi, ti) in enumerate(idx):
            target_cls[i, qi] = targets[i]["labels"][ti]
            src_b.append(boxes[i, qi])
            tgt_b.append(targets[i]["boxes"][ti])
        ce = F.cross_entropy(logits.transpose(1, 2), target_cls, self.empty_weight)
        src, tgt = torch.cat(src_b), torch.cat(tgt_b)
        if len(src):
            l1 = F.l1_loss(src, tgt, reduction="sum") / n_boxes
            giou = (1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src),
                                                       box_cxcywh_to_xyxy(tgt)))).sum() / n_boxes
        else:
            l1 = giou = boxes.sum() * 0
        return {"ce": ce, "l1": l1, "giou": giou}

    def forward(self, out: dict, targets: list[dict]) -> tuple[torch.Tensor, dict]:
        n_boxes = max(1.0, float(sum(len(t["labels"]) for t in targets)))
        parts = {k: v.clone() for k, v in self._one(out, targets, n_boxes).items()}
        for aux in out.get("aux", []):
            for k, v in self._one(aux, targets, n_boxes).items():
                parts[k] = parts[k] + v
        w_ce, w_l1, w_giou = self.w
        total = w_ce * parts["ce"] + w_l1 * parts["l1"] + w_giou * parts["giou"]
        return total, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def postprocess(out: dict, sizes: list[tuple[int, int]], conf: float, iou: float,
                max_det: int = 300) -> list[tuple]:
    """Boxes in each image's pixels: [(xyxy, scores, class ids)] as numpy arrays."""
    from torchvision.ops import batched_nms

    probs = out["logits"].softmax(-1)[..., :-1]
    scores, labels = probs.max(-1)
    results = []
    for i, (h, w) in enumerate(sizes):
        keep = scores[i] >= conf
        s, lab, b = scores[i][keep], labels[i][keep], out["boxes"][i][keep]
        xyxy = box_cxcywh_to_xyxy(b) * torch.tensor([w, h, w, h], device=b.device)
        if len(s) and iou < 1:
            k = batched_nms(xyxy, s, lab, iou)[:max_det]
            s, lab, xyxy = s[k], lab[k], xyxy[k]
        results.append((xyxy.cpu().numpy(), s.cpu().numpy(), lab.cpu().numpy().astype(int)))
    return results


def spec_dict(spec: LightDetrSpec) -> dict:
    return asdict(spec)

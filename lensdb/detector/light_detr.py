"""LensDB's light DETR: a small backbone, a transformer, learned queries, set prediction.

    model = LightDetr(LightDetrSpec(num_classes=3))       # mobilenet_v3_small, random init
    out = model(images)       # {"logits": (B,Q,C) sigmoid class logits, "boxes": (B,Q,4)
                              #  cxcywh in [0,1], "aux": [earlier decoder layers, the same],
                              #  "enc": the encoder's per-cell proposals, the same}
    loss, parts = SetCriterion(3)(out, targets)   # lensdb.detector.light_loss

Backbones: torchvision mobilenet_v3_small (weights=None: nothing is downloaded; GroupNorm
for BatchNorm), or an open_clip visual tower (`clip`): a ModifiedResNet trunk, or a ViT's
patch tokens at its own image size. The convolutional trunks' stride 8, 16 and 32 maps are
fused top-down (a small FPN) into one map at `stride` (8: a 64 px image gives 8x8 cells,
room for small objects). Then `encoder_layers` transformer encoder layers over the cells
(2-D sine positions) and `decoder_layers` decoder layers over `num_queries` queries.

DETR converges slowly; this one learns in a few CPU minutes thanks to known remedies:

- two-stage proposals (Deformable DETR two-stage, DINO's mixed query selection): every
  encoder cell predicts classes and a box relative to its own anchor (the cell, two cells
  wide); the top-`num_queries` cells give the decoder's initial reference boxes and add
  their (detached) features to the learned content queries;
- iterative box refinement (Deformable DETR): each decoder layer predicts a correction of
  the box before it, in logit space, with its own heads; queries' positions are the sine
  embedding of their reference box (DAB-DETR);
- spatially modulated cross-attention (SMCA): a Gaussian bias around each query's
  reference box on the attention logits, a different width per head (one head global);
- sigmoid focal classification loss and focal matching cost (Deformable DETR), auxiliary
  losses on every decoder layer and on the encoder proposals, one-to-many matching of the
  encoder proposals (H-DETR's hybrid idea: each object trains its `enc_k` best cells);
  see light_loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SMCA_BETAS = (0.0, 1.0, 2.0, 4.0)  # per-head Gaussian strength (cycled over the heads)


@dataclass(frozen=True)
class LightDetrSpec:
    """The architecture: what a checkpoint needs to rebuild the network."""

    num_classes: int  # object classes (sigmoid scores, no no-object class)
    num_queries: int = 30  # decoder queries: the most objects found per image
    hidden_dim: int = 128  # transformer width
    decoder_layers: int = 3  # transformer decoder layers
    encoder_layers: int = 1  # transformer encoder layers over the feature cells
    heads: int = 4  # attention heads
    backbone: str = "mobilenet_v3_small"  # or "clip"
    clip_arch: str | None = None  # open_clip architecture when backbone == "clip"
    imgsz: int = 128  # square input size
    stride: int = 8  # feature map stride of convolutional trunks: 8, 16 or 32


def box_cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def sine_positions(h: int, w: int, dim: int, device) -> torch.Tensor:
    """(h*w, dim) 2-D sine/cosine positions of the cell centres, like `point_positions`."""
    ys = (torch.arange(h, device=device).float() + 0.5) / h
    xs = (torch.arange(w, device=device).float() + 0.5) / w
    xy = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(h * w, 2)
    return point_positions(xy, dim)


def point_positions(xy: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., 2) points in [0, 1] -> (..., dim) sine positions, half the channels each."""
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=xy.device) / quarter))
    a = xy[..., :, None] * 2 * math.pi * freq  # (..., 2, quarter)
    return torch.cat([a.sin(), a.cos()], -1).flatten(-2)


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


class Fpn(nn.Module):
    """Stride 8/16/32 maps -> one map at `stride` (top-down sums, then a 3x3 conv)."""

    def __init__(self, channels: tuple[int, int, int], hidden: int, stride: int):
        super().__init__()
        self.levels = {8: 3, 16: 2, 32: 1}[stride]  # how many of the maps are used
        self.lateral = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in channels)
        self.out = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1),
                                 nn.GroupNorm(8, hidden), nn.ReLU())

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[2](maps[2])
        for i in (1, 0)[:self.levels - 1]:
            lat = self.lateral[i](maps[i])
            x = lat + F.interpolate(x, size=lat.shape[-2:], mode="nearest")
        return self.out(x)


class MobileNetBackbone(nn.Module):
    """mobilenet_v3_small features at stride 8 (24 ch), 16 (48 ch), 32 (576 ch), fused."""

    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, hidden: int, stride: int):
        super().__init__()
        from torchvision.models import mobilenet_v3_small

        feats: Any = _group_norm(mobilenet_v3_small(weights=None).features)
        self.s8, self.s16, self.s32 = feats[:4], feats[4:9], feats[9:]
        self.fpn = Fpn((24, 48, 576), hidden, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c3 = self.s8(x)
        c4 = self.s16(c3)
        return self.fpn([c3, c4, self.s32(c4)])


class ClipBackbone(nn.Module):
    """An open_clip visual tower as a feature map (ModifiedResNet stages through the FPN,
    or a ViT's patch tokens)."""

    mean, std = CLIP_MEAN, CLIP_STD

    def __init__(self, visual: Any, hidden: int, stride: int):
        super().__init__()
        self.visual: Any = visual
        self.is_vit = hasattr(visual, "transformer")
        if self.is_vit:
            visual.output_tokens = True
            self.proj = nn.Conv2d(visual.transformer.width, hidden, 1)
        else:
            chans = tuple(_out_channels(getattr(visual, f"layer{i}")) for i in (2, 3, 4))
            self.fpn = Fpn(chans, hidden, stride)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v: Any = self.visual
        if self.is_vit:
            _, tokens = v(x)
            side = int(round(math.sqrt(tokens.shape[1])))
            return self.proj(tokens.transpose(1, 2).reshape(x.shape[0], -1, side, side))
        c3 = v.layer2(v.layer1(v.stem(x)))
        c4 = v.layer3(c3)
        return self.fpn([c3, c4, v.layer4(c4)])


def _out_channels(stage: nn.Module) -> int:
    """Channels out of a ResNet stage: its last convolution's (a block's conv3 or its
    downsampling shortcut, which agree)."""
    return [m for m in stage.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class MLP(nn.Sequential):
    def __init__(self, dim: int, out: int, layers: int = 3, inp: int | None = None):
        mods: list[nn.Module] = []
        width = inp or dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, dim), nn.ReLU()]
            width = dim
        super().__init__(*mods, nn.Linear(width, out))


class DecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the cells (positions added to
    queries and keys only, an SMCA bias around the reference boxes), an FFN; post-norm."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, d * 4), nn.ReLU(), nn.Linear(d * 4, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))

    def forward(self, tgt, qpos, memory, mpos, bias):
        q = tgt + qpos
        tgt = self.norms[0](tgt + self.self_attn(q, q, tgt, need_weights=False)[0])
        tgt = self.norms[1](tgt + self.cross_attn(tgt + qpos, memory + mpos, memory,
                                                  attn_mask=bias, need_weights=False)[0])
        return self.norms[2](tgt + self.ffn(tgt))


def smca_bias(ref: torch.Tensor, centres: torch.Tensor, heads: int) -> torch.Tensor:
    """(B*heads, Q, HW) additive attention bias: -beta * ((dx/w)^2 + (dy/h)^2)."""
    d = (centres[None, None] - ref[:, :, None, :2]) / ref[:, :, None, 2:].clamp(min=0.05)
    dist = (d ** 2).sum(-1)  # (B, Q, HW)
    betas = torch.tensor([SMCA_BETAS[i % len(SMCA_BETAS)] for i in range(heads)],
                         device=ref.device)
    return (-betas[None, :, None, None] * dist[:, None]).flatten(0, 1)


class LightDetr(nn.Module):
    def __init__(self, spec: LightDetrSpec, clip_visual: nn.Module | None = None):
        super().__init__()
        self.spec = spec
        d, c, n_dec = spec.hidden_dim, spec.num_classes, spec.decoder_layers
        if spec.backbone == "clip":
            if clip_visual is None:
                raise ValueError("the clip backbone needs its visual tower")
            self.backbone: nn.Module = ClipBackbone(clip_visual, d, spec.stride)
        else:
            self.backbone = MobileNetBackbone(d, spec.stride)
        bb: Any = self.backbone
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(bb.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(bb.std).view(1, 3, 1, 1))
        enc = nn.TransformerEncoderLayer(d, spec.heads, d * 4, 0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, spec.encoder_layers, enable_nested_tensor=False)
        self.enc_out = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
        self.enc_class, self.enc_box = nn.Linear(d, c), MLP(d, 4)
        self.decoder = nn.ModuleList(DecoderLayer(d, spec.heads) for _ in range(n_dec))
        self.queries = nn.Embedding(spec.num_queries, d)
        # used where the map has fewer cells than there are queries (a ViT tower)
        self.reference = nn.Parameter(torch.rand(spec.num_queries, 2) * 0.8 + 0.1)
        self.query_pos = MLP(d, d, 2, inp=2 * d)
        self.class_heads = nn.ModuleList(nn.Linear(d, c) for _ in range(n_dec))
        self.box_heads = nn.ModuleList(MLP(d, 4) for _ in range(n_dec))
        prior = -math.log((1 - 0.01) / 0.01)  # focal loss prior: scores start at 0.01
        for head in [self.enc_class, *self.class_heads]:
            nn.init.constant_(head.bias, prior)
        for mlp in [self.enc_box, *self.box_heads]:
            last: Any = mlp[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def _proposals(self, memory: torch.Tensor, h: int, w: int) -> dict:
        ys = (torch.arange(h, device=memory.device).float() + 0.5) / h
        xs = (torch.arange(w, device=memory.device).float() + 0.5) / w
        centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        wh = torch.tensor([min(0.9, 2 / w), min(0.9, 2 / h)], device=memory.device)
        anchors = inverse_sigmoid(torch.cat([centres, wh.expand_as(centres)], -1))
        feats = self.enc_out(memory)
        box_logit = anchors[None] + self.enc_box(feats)
        return {"logits": self.enc_class(feats), "box_logit": box_logit, "feats": feats,
                "centres": centres}

    def forward(self, images: torch.Tensor) -> dict:
        """`images`: (B, 3, H, W) floats in [0, 1]."""
        fmap = self.backbone((images - self.mean) / self.std)
        b, d, h, w = fmap.shape
        pos = sine_positions(h, w, d, fmap.device)[None]
        memory = self.encoder(fmap.flatten(2).transpose(1, 2) + pos)
        prop = self._proposals(memory, h, w)
        nq = self.spec.num_queries
        k = min(nq, h * w)
        top = prop["logits"].max(-1).values.topk(k, dim=1).indices  # (B, k)
        box_logit = prop["box_logit"].gather(1, top[..., None].expand(-1, -1, 4)).detach()
        tgt = self.queries.weight[None].expand(b, -1, -1)
        chosen = prop["feats"].gather(1, top[..., None].expand(-1, -1, d)).detach()
        tgt = torch.cat([tgt[:, :k] + chosen, tgt[:, k:]], 1)
        if k < nq:  # fewer cells than queries: the rest start from learned points
            rest = torch.cat([self.reference[k:], torch.full_like(self.reference[k:], 0.2)], -1)
            box_logit = torch.cat([box_logit, inverse_sigmoid(rest)[None].expand(b, -1, -1)], 1)
        outs = []
        for layer, cls_head, box_head in zip(self.decoder, self.class_heads, self.box_heads):
            ref = box_logit.sigmoid().detach()
            qpos = self.query_pos(torch.cat([point_positions(ref[..., :2], d),
                                             point_positions(ref[..., 2:], d)], -1))
            bias = smca_bias(ref, prop["centres"], self.spec.heads)
            tgt = layer(tgt, qpos, memory, pos, bias)
            box_logit = box_logit.detach() + box_head(tgt)
            outs.append({"logits": cls_head(tgt), "boxes": box_logit.sigmoid()})
        enc = {"logits": prop["logits"], "boxes": prop["box_logit"].sigmoid()}
        return {**outs[-1], "aux": outs[:-1], "enc": enc}


@torch.no_grad()
def postprocess(out: dict, sizes: list[tuple[int, int]], conf: float, iou: float,
                max_det: int = 100) -> list[tuple]:
    """Boxes in each image's pixels: [(xyxy, scores, class ids)] as numpy arrays. The
    `max_det` best (query, class) pairs by sigmoid score above `conf`, then per-class NMS."""
    from torchvision.ops import batched_nms

    probs = out["logits"].sigmoid()
    n_cls = probs.shape[-1]
    flat = probs.flatten(1)
    top_scores, top_idx = flat.topk(min(max_det, flat.shape[1]), dim=1)
    results = []
    for i, (h, w) in enumerate(sizes):
        keep = top_scores[i] >= conf
        s, idx = top_scores[i][keep], top_idx[i][keep]
        lab, b = idx % n_cls, out["boxes"][i][idx // n_cls]
        xyxy = box_cxcywh_to_xyxy(b) * torch.tensor([w, h, w, h], device=b.device)
        if len(s) and iou < 1:
            k = batched_nms(xyxy, s, lab, iou)
            s, lab, xyxy = s[k], lab[k], xyxy[k]
        results.append((xyxy.cpu().numpy(), s.cpu().numpy(), lab.cpu().numpy().astype(int)))
    return results


def spec_dict(spec: LightDetrSpec) -> dict:
    return asdict(spec)

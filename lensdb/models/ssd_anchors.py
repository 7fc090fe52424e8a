"""SSD MobileNet anchors and box decoding in numpy; NMS through `torchvision.ops`.

The anchors follow the TF object detection API (`create_ssd_anchors` feeding a
`MultipleGridAnchorGenerator`), which is how the SSD-MobileNetV2 models were trained and
exported: for each layer, for each cell row y, for each cell column x, for each box spec.
Boxes are (ycenter, xcenter, height, width), normalised to the image.
"""

from __future__ import annotations

import math

import numpy as np

FEATURE_MAP_SIZES: tuple[int, ...] = (19, 10, 5, 3, 2, 1)
ASPECT_RATIOS: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
BOX_CODER_SCALES: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w


def layer_scales(
    num_layers: int = 6, min_scale: float = 0.2, max_scale: float = 0.95
) -> list[float]:
    """Linearly spaced scales, one per layer."""
    return [min_scale + (max_scale - min_scale) * i / (num_layers - 1) for i in range(num_layers)]


def box_specs(
    num_layers: int = 6,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: tuple[float, ...] = ASPECT_RATIOS,
    reduce_boxes_in_lowest_layer: bool = True,
) -> list[list[tuple[float, float]]]:
    """(scale, aspect_ratio) per anchor, per layer, in the generator's order."""
    scales = layer_scales(num_layers, min_scale, max_scale) + [1.0]
    specs: list[list[tuple[float, float]]] = []
    for layer in range(num_layers):
        scale, scale_next = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_boxes_in_lowest_layer:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        layer_specs = [(scale, ratio) for ratio in aspect_ratios]
        # The interpolated scale between this layer and the next, at aspect ratio 1.
        layer_specs.append((math.sqrt(scale * scale_next), 1.0))
        specs.append(layer_specs)
    return specs


def ssd_anchors(feature_map_sizes: tuple[int, ...] = FEATURE_MAP_SIZES) -> np.ndarray:
    """(n, 4) float32 anchors as (ycenter, xcenter, height, width); 1917 by default."""
    out = []
    specs_per_layer = box_specs(num_layers=len(feature_map_sizes))
    for size, specs in zip(feature_map_sizes, specs_per_layer, strict=True):
        scales = np.array([s for s, _ in specs], dtype=np.float64)
        ratio_sqrts = np.sqrt(np.array([r for _, r in specs], dtype=np.float64))
        heights = scales / ratio_sqrts
        widths = scales * ratio_sqrts
        stride = 1.0 / size
        centers = (np.arange(size, dtype=np.float64) + 0.5) * stride
        # Index order y, x, anchor: the last axis varies fastest.
        yc, xc, kk = np.meshgrid(centers, centers, np.arange(len(specs)), indexing="ij")
        k = kk.ravel()
        out.append(np.stack([yc.ravel(), xc.ravel(), heights[k], widths[k]], axis=1))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(
    encodings: np.ndarray,
    anchors: np.ndarray,
    scales: tuple[float, float, float, float] = BOX_CODER_SCALES,
) -> np.ndarray:
    """Raw (ty, tx, th, tw) against anchors -> (ymin, xmin, ymax, xmax), normalised."""
    enc = np.asarray(encodings, dtype=np.float32)
    ya, xa, ha, wa = (anchors[:, i] for i in range(4))
    yc = enc[:, 0] / scales[0] * ha + ya
    xc = enc[:, 1] / scales[1] * wa + xa
    # Clip the exponent: untrained or background anchors can carry huge raw values.
    h = np.exp(np.minimum(enc[:, 2] / scales[2], 10.0)) * ha
    w = np.exp(np.minimum(enc[:, 3] / scales[3], 10.0)) * wa
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box against many, any corner layout (a0, b0, a1, b1)."""
    a0 = np.maximum(box[0], boxes[:, 0])
    b0 = np.maximum(box[1], boxes[:, 1])
    a1 = np.minimum(box[2], boxes[:, 2])
    b1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(a1 - a0, 0, None) * np.clip(b1 - b0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def multiclass_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    score_threshold: float,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    skip_class: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class NMS over (n, 4) boxes and (n, c) scores (`torchvision.ops.batched_nms`:
    a box is dropped when its IoU with a better box of its class is above the threshold).

    Returns (boxes (k, 4), scores (k,), class ids (k,)), best score first, k <= max_detections.
    """
    mask = np.asarray(scores) > score_threshold
    if skip_class is not None:
        mask[:, skip_class] = False
    anchor, cls = np.nonzero(mask)
    if anchor.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    import torch  # lazily: importing this module stays cheap
    from torchvision.ops import batched_nms

    cand_boxes = np.ascontiguousarray(boxes[anchor], dtype=np.float32)
    cand_scores = np.ascontiguousarray(scores[anchor, cls], dtype=np.float32)
    keep = batched_nms(torch.from_numpy(cand_boxes), torch.from_numpy(cand_scores),
                       torch.from_numpy(cls.astype(np.int64)), float(iou_threshold))
    keep = keep.numpy()[:max_detections]  # sorted by decreasing score
    return cand_boxes[keep], cand_scores[keep], cls[keep].astype(np.int64)

"""LensDB's own detection metrics: mAP50, mAP50-95, per-class AP, precision, recall.

The same numbers whatever produced the boxes (an ultralytics model, the light DETR, a file):

    acc = MapAccumulator(num_classes=3)
    acc.add(pred_boxes, pred_scores, pred_classes, true_boxes, true_classes)   # per image
    acc.result()   # {"map50", "map50_95", "precision", "recall", "ap50": [...], "ap": [...]}

Protocol (COCO's, as ultralytics 8.4 implements it, so the figures are comparable): ten
IoU thresholds 0.50:0.05:0.95; detections taken in descending confidence claim the
unclaimed same-class box they overlap most; AP is the area under the precision envelope
sampled at 101 recall points; precision and recall are read at the confidence that
maximises the mean (smoothed) F1 over classes. Classes without ground truth are left out
of the means (their AP is None).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0, 1, 101)
_CONF_GRID = np.linspace(0, 1, 1000)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def match(pred_boxes, pred_scores, pred_classes, true_boxes, true_classes) -> np.ndarray:
    """(n_pred, 10) bool: is each prediction a true positive at each IoU threshold."""
    n = len(pred_scores)
    correct = np.zeros((n, len(IOU_THRESHOLDS)), bool)
    if n == 0 or len(true_classes) == 0:
        return correct
    order = np.argsort(-np.asarray(pred_scores), kind="stable")
    iou = box_iou(true_boxes, np.asarray(pred_boxes)[order])  # (gt, pred)
    iou = iou * (np.asarray(true_classes)[:, None] == np.asarray(pred_classes)[order][None])
    claimed = np.zeros((iou.shape[0], len(IOU_THRESHOLDS)), bool)
    for j in range(n):
        available = np.where(claimed, 0.0, iou[:, j, None])
        k = available.argmax(0)
        hit = available[k, np.arange(len(IOU_THRESHOLDS))] >= IOU_THRESHOLDS
        correct[order[j]] = hit
        claimed[k, np.arange(len(IOU_THRESHOLDS))] |= hit
    return correct


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, sampled at 101 recall points."""
    mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(np.trapezoid(np.interp(_RECALL_POINTS, mrec, mpre), _RECALL_POINTS))


def _smooth(y: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    nf = round(len(y) * fraction * 2) // 2 + 1
    p = np.ones(nf // 2)
    yp = np.concatenate((p * y[0], y, p * y[-1]))
    return np.convolve(yp, np.ones(nf) / nf, mode="valid")


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray,
                 target_cls: np.ndarray, num_classes: int) -> dict:
    """Per-class AP at each IoU threshold (None for classes without ground truth) and
    the max-F1 precision and recall."""
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    classes, n_true = np.unique(target_cls.astype(int), return_counts=True)
    ap = np.zeros((len(classes), len(IOU_THRESHOLDS)))
    p_curve = np.zeros((len(classes), len(_CONF_GRID)))
    r_curve = np.zeros_like(p_curve)
    for ci, c in enumerate(classes):
        sel = pred_cls == c
        if not sel.any():
            continue
        tpc = tp[sel].cumsum(0)
        fpc = (1 - tp[sel]).cumsum(0)
        recall = tpc / (n_true[ci] + 1e-16)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = np.interp(-_CONF_GRID, -conf[sel], recall[:, 0], left=0)
        p_curve[ci] = np.interp(-_CONF_GRID, -conf[sel], precision[:, 0], left=1)
        for j in range(len(IOU_THRESHOLDS)):
            ap[ci, j] = average_precision(recall[:, j], precision[:, j])
    if len(classes):
        f1 = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
        best = int(_smooth(f1.mean(0)).argmax())
        p, r = p_curve[:, best], r_curve[:, best]
    else:
        p = r = np.zeros(0)
    ap_full: list[list[float] | None] = [None] * num_classes
    for ci, c in enumerate(classes):
        if c < num_classes:
            ap_full[c] = ap[ci].tolist()
    return {"ap": ap_full, "precision": float(p.mean()) if p.size else 0.0,
            "recall": float(r.mean()) if r.size else 0.0,
            "map50": float(ap[:, 0].mean()) if len(classes) else 0.0,
            "map50_95": float(ap.mean()) if len(classes) else 0.0}


@dataclass
class MapAccumulator:
    """Collects per-image matches; `result()` gives the dataset's figures."""

    num_classes: int  # classes of the dataset (ids 0..n-1)
    _tp: list = field(default_factory=list)
    _conf: list = field(default_factory=list)
    _pred_cls: list = field(default_factory=list)
    _true_cls: list = field(default_factory=list)
    images: int = 0  # images added

    def add(self, pred_boxes, pred_scores, pred_classes, true_boxes, true_classes) -> None:
        """One image: predictions (xyxy, scores, class ids) and ground truth (xyxy, ids),
        boxes in any one unit (pixels or normalised) shared by both."""
        pred_boxes = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
        true_boxes = np.asarray(true_boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(pred_scores, np.float64).reshape(-1)
        pcls = np.asarray(pred_classes).reshape(-1).astype(int)
        tcls = np.asarray(true_classes).reshape(-1).astype(int)
        self._tp.append(match(pred_boxes, scores, pcls, true_boxes, tcls))
        self._conf.append(scores)
        self._pred_cls.append(pcls)
        self._true_cls.append(tcls)
        self.images += 1

    def result(self) -> dict:
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, 10), bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        pcls = np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, int)
        tcls = np.concatenate(self._true_cls) if self._true_cls else np.zeros(0, int)
        out = ap_per_class(tp.astype(float), conf, pcls, tcls, self.num_classes)
        out["ap50"] = [a[0] if a is not None else None for a in out["ap"]]
        out["ap50_95"] = [float(np.mean(a)) if a is not None else None for a in out["ap"]]
        del out["ap"]
        out["images"], out["instances"], out["predictions"] = self.images, len(tcls), len(conf)
        return out

"""Retrieval and match metrics on embeddings (numpy only).

Retrieval, with `img` (n_images, d) and `txt` (n_captions, d) unit vectors and `owner[k]`
the image of caption k:
- text to image: each caption ranks all images; one relevant image. R@K = share of
  captions whose image is in the top K; median rank (1 = first); mAP@10 = mean over
  captions of 1/rank when rank <= 10, else 0 (one relevant item: AP is the reciprocal rank).
- image to text: each image ranks all captions; every caption of the image is relevant.
  R@K = share of images with at least one of their captions in the top K; median rank of
  the first relevant caption; AP@10 = (1 / min(R, 10)) * sum_{k<=10} precision@k * rel(k),
  R = the image's number of captions (the normaliser), averaged over images.
A rank counts the items scored strictly higher, plus one (ties resolve in the item's favour).

Match/mismatch: accuracy, precision, recall, F1 and ROC-AUC of cosine scores against labels,
at a threshold picked on validation (`pick_threshold`: the best accuracy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

KS = (1, 5, 10)


def retrieval_metrics(img: np.ndarray, txt: np.ndarray, owner: np.ndarray) -> dict[str, float]:
    """Both directions, flat names like `text_to_image_R@1`, `image_to_text_mAP@10`."""
    owner = np.asarray(owner, dtype=np.int64)
    sims = txt @ img.T  # (captions, images)
    out: dict[str, float] = {}
    # text -> image: one relevant image per caption
    own = sims[np.arange(len(txt)), owner]
    t2i = (sims > own[:, None]).sum(1) + 1
    for k in KS:
        out[f"text_to_image_R@{k}"] = float((t2i <= k).mean())
    out["text_to_image_median_rank"] = float(np.median(t2i))
    out["text_to_image_mAP@10"] = float(np.where(t2i <= 10, 1.0 / t2i, 0.0).mean())
    # image -> text: every caption of the image is relevant
    i2t_scores = sims.T  # (images, captions)
    relevant = owner[None, :] == np.arange(len(img))[:, None]
    first, aps = [], []
    for i in range(len(img)):
        order = np.argsort(-i2t_scores[i], kind="stable")
        rel = relevant[i][order]
        n_rel = int(relevant[i].sum())
        if n_rel == 0:
            continue
        best = i2t_scores[i][relevant[i]].max()
        first.append(int((i2t_scores[i] > best).sum()) + 1)
        top = rel[:10].astype(np.float64)
        precision = np.cumsum(top) / np.arange(1, len(top) + 1)
        aps.append(float((precision * top).sum() / min(n_rel, 10)))
    first_arr = np.asarray(first)
    for k in KS:
        out[f"image_to_text_R@{k}"] = float((first_arr <= k).mean()) if len(first) else 0.0
    out["image_to_text_median_rank"] = float(np.median(first_arr)) if len(first) else 0.0
    out["image_to_text_mAP@10"] = float(np.mean(aps)) if aps else 0.0
    return out


def retrieval_score(m: dict[str, float]) -> float:
    """One number to select checkpoints by: mean of R@1/5/10 over both directions."""
    keys = [f"{d}_R@{k}" for d in ("text_to_image", "image_to_text") for k in KS]
    return float(np.mean([m[k] for k in keys]))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pick_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold (predict match when score >= t) with the best accuracy; midway
    between neighbouring scores so it generalises a little better than a data point."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    s = np.unique(scores)
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    acc = [((scores >= t) == labels).mean() for t in cands]
    return float(cands[int(np.argmax(acc))])


def match_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Flat names `match_accuracy`, ..., `match_threshold`."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    pred = scores >= threshold
    tp, fp = int((pred & labels).sum()), int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"match_accuracy": float((pred == labels).mean()), "match_precision": precision,
            "match_recall": recall, "match_f1": f1, "match_roc_auc": roc_auc(scores, labels),
            "match_threshold": float(threshold)}


def fit_platt(scores: np.ndarray, labels: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Logistic calibration p = sigmoid(a * score + b) by Newton steps (a small ridge keeps
    it finite on separable data). Returns (a, b)."""
    x, y = np.asarray(scores, np.float64), np.asarray(labels, np.float64)
    w = np.zeros(2)
    design = np.stack([x, np.ones_like(x)], 1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + 1e-3 * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def table_rows(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(metric, pretrained, fine-tuned) for the metrics both have, in a stable order."""
    return [(k, before.get(k), after.get(k)) for k in after if k in before]

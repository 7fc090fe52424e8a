"""Retrieval and match metrics on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.finetune.metrics import (
    fit_platt,
    match_metrics,
    pick_threshold,
    retrieval_metrics,
    roc_auc,
)


def test_retrieval_by_hand():
    img = np.eye(3, dtype=np.float32)
    # captions 0,1 belong to image 0, caption 2 to image 1, caption 3 to image 2
    txt = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0.5, 0.8, 0.3]], np.float32)
    owner = np.array([0, 0, 1, 2])
    m = retrieval_metrics(img, txt, owner)
    # text->image ranks: 1, 2 (image 1 scores higher), 1, 3 (0.8 and 0.5 above 0.3)
    assert m["text_to_image_R@1"] == pytest.approx(2 / 4)
    assert m["text_to_image_R@5"] == 1.0
    assert m["text_to_image_median_rank"] == pytest.approx(1.5)
    assert m["text_to_image_mAP@10"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 3) / 4)
    # image->text: image 0 ranks captions [0 (1.0), 3 (.5), 1, 2 (0)] : relevant at 1 and
    # at 3 (caption 1 ties caption 2 at 0 and the stable order keeps caption 1 first)
    # AP = (1/1 + 2/3) / 2; image 1: caption 1, 2 tie at 1.0 then 3 (.8): relevant caption 2
    # has rank 1 (no strictly higher score), AP by list order: caption 1 (not rel) then 2
    # -> precision 1/2 at k=2; image 2: caption 3 (0.3) above the zeros -> rank 1, AP 1
    assert m["image_to_text_R@1"] == 1.0
    assert m["image_to_text_mAP@10"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2 + 1) / 3)
    assert m["image_to_text_median_rank"] == 1.0


def test_random_embeddings_are_near_chance():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(200, 32))
    txt = rng.normal(size=(200, 32))
    m = retrieval_metrics(img, txt, np.arange(200))
    assert m["text_to_image_R@10"] < 0.15
    assert 60 < m["text_to_image_median_rank"] < 140


def test_match_metrics_and_threshold():
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    labels = np.array([1, 1, 0, 1, 0, 0])
    assert roc_auc(scores, labels) == pytest.approx(8 / 9)  # one of 9 pos-neg pairs inverted
    t = pick_threshold(scores, labels)
    m = match_metrics(scores, labels, t)
    assert m["match_accuracy"] == pytest.approx(5 / 6)
    assert m["match_threshold"] == t
    fixed = match_metrics(scores, labels, 0.35)  # predicted: .9 .8 .7 .4 -> tp 3, fp 1
    assert fixed["match_precision"] == pytest.approx(3 / 4)
    assert fixed["match_recall"] == 1.0
    assert fixed["match_f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_platt_is_monotone_and_calibrated():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0.6, 0.1, 300), rng.normal(0.2, 0.1, 300)])
    labels = np.concatenate([np.ones(300), np.zeros(300)])
    a, b = fit_platt(scores, labels)
    assert a > 0
    p_mid = 1 / (1 + np.exp(-(a * 0.4 + b)))
    assert p_mid == pytest.approx(0.5, abs=0.1)

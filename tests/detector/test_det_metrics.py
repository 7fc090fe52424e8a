"""LensDB's mAP code against hand-made boxes, and against ultralytics' own AP function."""

from __future__ import annotations

import numpy as np

from lensdb.detector.metrics import MapAccumulator, ap_per_class, match

TRUE = np.array([[10, 10, 50, 50], [60, 60, 90, 100], [5, 60, 40, 95]], float)
CLS = np.array([0, 1, 0])


def _run(pred, scores, cls, n_images=4):
    acc = MapAccumulator(num_classes=3)
    for _ in range(n_images):
        acc.add(pred, scores, cls, TRUE, CLS)
    return acc.result()


def test_perfect_predictions_give_map_one():
    r = _run(TRUE, [0.9, 0.8, 0.7], CLS)
    assert r["map50"] > 0.99 and r["map50_95"] > 0.99
    assert r["precision"] > 0.99 and r["recall"] > 0.99
    assert r["ap50"][2] is None  # no ground truth for class 2


def test_shifted_boxes_score_lower_and_wrong_class_scores_zero():
    perfect = _run(TRUE, [0.9, 0.8, 0.7], CLS)
    shifted = _run(TRUE + 6, [0.9, 0.8, 0.7], CLS)  # IoU ~0.6-0.75: passes 0.5, fails 0.8+
    assert shifted["map50"] > 0.99
    assert 0.1 < shifted["map50_95"] < perfect["map50_95"] - 0.3
    far = _run(TRUE + 30, [0.9, 0.8, 0.7], CLS)
    assert far["map50"] < 0.01
    wrong = _run(TRUE, [0.9, 0.8, 0.7], [1, 0, 1])
    assert wrong["map50"] < 0.01


def test_missed_box_and_extra_false_positive():
    missed = _run(TRUE[:2], [0.9, 0.8], CLS[:2])  # one class-0 box never found
    assert 0.4 < missed["ap50"][0] < 0.6 and missed["ap50"][1] > 0.99
    low_fp = _run(np.vstack([TRUE, [[100, 0, 120, 20]]]), [0.9, 0.8, 0.7, 0.1], [0, 1, 0, 0])
    assert low_fp["map50"] > 0.99  # a false positive below every true one costs no AP
    high_fp = _run(np.vstack([TRUE, [[100, 0, 120, 20]]]), [0.5, 0.8, 0.4, 0.95], [0, 1, 0, 0])
    assert high_fp["ap50"][0] < 0.9


def test_duplicate_detection_counts_once():
    tp = match(np.array([TRUE[0], TRUE[0]]), [0.9, 0.8], [0, 0], TRUE, CLS)
    assert tp[:, 0].tolist() == [True, False]


def test_same_numbers_as_ultralytics_ap_per_class():
    from ultralytics.utils.metrics import ap_per_class as ul_ap

    rng = np.random.default_rng(0)
    n, nc = 300, 3
    tp = rng.random((n, 10)) < np.linspace(0.8, 0.2, 10)
    conf = rng.random(n)
    pred_cls = rng.integers(0, nc, n)
    target_cls = rng.integers(0, nc, 200)
    ours = ap_per_class(tp.astype(float), conf, pred_cls, target_cls, nc)
    _, _, p, r, _, ap, *_ = ul_ap(tp.astype(float), conf, pred_cls, target_cls)
    assert np.allclose(np.array(ours["ap"]), ap, atol=1e-9)
    assert abs(ours["map50_95"] - ap.mean()) < 1e-9 and abs(ours["map50"] - ap[:, 0].mean()) < 1e-9
    assert abs(ours["precision"] - p.mean()) < 1e-9 and abs(ours["recall"] - r.mean()) < 1e-9

"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensdb.counting.metrics import bin_index, confusion, evaluate, mae_ratio, regression_metrics


def test_regression_metrics_hand_computed():
    y = np.array([0, 1, 2, 3, 6])
    p = np.array([0.4, 2.6, 2.0, 1.0, 6.2])
    # errors 0.4, 1.6, 0, -2, 0.2 -> |e| sum 4.2, e^2 sum 0.16+2.56+0+4+0.04 = 6.76
    m = regression_metrics(y, p)
    assert m["n"] == 5
    assert m["mae"] == pytest.approx(4.2 / 5)
    assert m["mse"] == pytest.approx(6.76 / 5)
    assert m["rmse"] == pytest.approx(math.sqrt(6.76 / 5))
    # mean 2.4; ss_tot = 5.76+1.96+0.16+0.36+12.96 = 21.2
    assert m["r2"] == pytest.approx(1 - 6.76 / 21.2)
    # rounded: 0, 3, 2, 1, 6 -> off by 0, 2, 0, 2, 0
    assert m["exact"] == pytest.approx(3 / 5)
    assert m["within1"] == pytest.approx(3 / 5)
    assert m["within2"] == pytest.approx(1.0)


def test_rounding_never_below_zero_and_perfect_case():
    m = regression_metrics(np.array([0, 0, 4]), np.array([-0.7, 0.4, 4.0]))
    assert m["exact"] == 1.0
    perfect = regression_metrics(np.array([1, 2, 3]), np.array([1, 2, 3]))
    assert perfect["mae"] == 0 and perfect["r2"] == 1.0 and perfect["within1"] == 1.0


def test_r2_undefined_for_constant_truth_and_empty():
    assert regression_metrics(np.array([2, 2]), np.array([1, 3]))["r2"] is None
    assert regression_metrics(np.array([]), np.array([]))["mae"] is None


def test_bins_and_confusion():
    assert bin_index(np.array([0, 1, 2, 3, 5, 6, 40])).tolist() == [0, 1, 1, 2, 2, 3, 3]
    y = np.array([0, 1, 2, 4, 7, 7])
    p = np.array([0.2, 2.4, 3.0, 4.6, 5.4, 9.0])  # rounded: 0, 2, 3, 5, 5, 9
    assert confusion(y, p) == [
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 1],
    ]


def test_evaluate_puts_the_baseline_next_to_every_figure():
    y = np.array([0, 2, 4, 6])
    p = np.array([0, 2, 4, 5])
    out = evaluate(y, p, baseline=3.0, video_ids=np.array([7, 7, 8, 8]), video_names={7: "a"})
    assert set(out["model"]) == set(out["baseline"])
    assert out["baseline"]["mae"] == pytest.approx((3 + 1 + 1 + 3) / 4)
    assert out["model"]["mae"] == pytest.approx(0.25)
    assert out["baseline_value"] == 3.0
    assert mae_ratio(out) == pytest.approx(0.25 / 2.0)
    rows = {r["video"]: r for r in out["per_video"]}
    assert rows["a"]["frames"] == 2 and rows["a"]["mae"] == 0.0
    assert rows["a"]["baseline_mae"] == pytest.approx(2.0)
    assert rows["8"]["mae"] == pytest.approx(0.5) and rows["8"]["true_mean"] == 5.0
    assert out["confusion"]["bins"] == ["0", "1-2", "3-5", "6+"]
    assert np.array(out["confusion"]["baseline"])[:, 2].sum() == 4  # all predicted 3

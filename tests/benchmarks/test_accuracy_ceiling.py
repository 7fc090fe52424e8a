"""The neighbour ceiling of `lensdb bench accuracy` (benchmarks/accuracy_ceiling): guesses
from the other frames of the same video only, the best smoother picked in hindsight."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.bench import accuracy_ceiling as ceiling


def test_a_frame_is_never_guessed_from_its_own_count():
    y = np.zeros(30)
    y[12] = 9.0
    guesses = ceiling.smoothers(np.zeros(30, np.int64), np.arange(30.0), y)
    assert len(guesses) == 2 * len(ceiling.WINDOWS)
    assert all(g[12] == 0.0 for g in guesses)  # the spike is seen only by its neighbours
    assert max(g[13] for g in guesses) == pytest.approx(9.0 / 2)  # w = 1, mean of 9 and 0


def test_guesses_never_cross_from_one_video_to_another():
    video = np.repeat([3, 7], 20)
    ts = np.tile(np.arange(20.0), 2)  # both videos start at 0 s
    y = np.where(video == 3, 0.0, 5.0)
    order = np.random.default_rng(0).permutation(40)  # rows in no particular order
    guesses = ceiling.smoothers(video[order], ts[order], y[order])
    for g in guesses:
        assert np.all(g[video[order] == 3] == 0.0)
        assert np.all(g[video[order] == 7] == 5.0)


def test_the_ceiling_is_the_best_smoother_on_the_hidden_frames():
    rng = np.random.default_rng(1)
    truth = np.round(3 + np.cumsum(rng.normal(0, 0.3, 400)) + rng.normal(0, 0.7, 400))
    truth = np.maximum(truth, 0)
    guesses = ceiling.smoothers(np.zeros(400, np.int64), np.arange(400.0), truth)
    hidden = np.setdiff1d(np.arange(400), np.arange(0, 400, 10))
    base = float(np.mean(np.abs(np.median(truth[::10]) - truth[hidden])))
    best = ceiling.per_frame(guesses, truth, hidden, base)
    maes = [np.mean(np.abs(g[hidden] - truth[hidden])) / base for g in guesses]
    assert best["ceiling_mae_vs_constant"] == pytest.approx(min(maes))
    assert best["ceiling_mae"] == pytest.approx(min(maes) * base)
    assert best["ceiling_mae_vs_constant"] < 0.6  # a smooth walk: neighbours tell a lot
    # interpolating every 10th frame is worse than the ceiling, which sees every frame
    interp = np.interp(hidden, np.arange(0, 400, 10), truth[::10])
    assert best["ceiling_mae_vs_constant"] < np.mean(np.abs(interp - truth[hidden])) / base
    k = int(np.median(truth))  # a predicate that matches about half the frames
    f1 = ceiling.predicate_f1(guesses, truth, hidden, k)
    assert 0.8 < f1 <= 1.0


def test_pure_flicker_has_a_ceiling_near_the_constant():
    # counts that are independent from frame to frame: no neighbour says anything
    truth = np.random.default_rng(2).binomial(1, 0.5, 600).astype(float)
    guesses = ceiling.smoothers(np.zeros(600, np.int64), np.arange(600.0), truth)
    hidden = np.arange(600)
    base = float(np.mean(np.abs(1.0 - truth)))
    assert ceiling.per_frame(guesses, truth, hidden, base)["ceiling_mae_vs_constant"] > 0.9
    assert ceiling.predicate_f1(guesses, truth, hidden, 1) < 0.75

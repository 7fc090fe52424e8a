"""The benchmark's check of the error estimates queries print (benchmarks/accuracy_estimates):
estimates from the labelled frames only, truth from the hidden ones, and honest on
simulated footage made in code."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lensdb.bench import accuracy_estimates as ae
from lensdb.counting import TrainConfig
from lensdb.counting.fit import fit_class
from lensdb.query.estimate import ratio_error_bound, wilson

sys.path.insert(0, str(Path(__file__).parents[1] / "counting"))
from count_scenes import scene  # noqa: E402


def test_selection_estimate_uses_the_labelled_frames_and_truth_the_hidden_ones():
    y_kept = np.array([0, 1, 2, 2, 0, 3.0])
    oof = np.array([0.2, 1.6, 1.4, 2.6, 1.7, 2.9])  # rounded >= 2: F T F T T T
    y_hidden = np.array([2, 2, 0, 1.0])
    pred_hidden = np.array([2.2, 1.1, 0.1, 2.0])  # rounded >= 2: T F F T
    rows = {r["kind"]: r for r in ae.selection_rows(y_kept, oof, y_hidden, pred_hidden, 2)}
    # labelled: truth >= 2 at 2, 3, 5; guess at 1, 3, 4, 5 -> tp 2, fp 2, fn 1
    assert rows["precision"]["estimate"] == pytest.approx(0.5)
    assert rows["precision"]["low"] == pytest.approx(wilson(2, 4)["low"])
    assert rows["recall"]["estimate"] == pytest.approx(2 / 3) and rows["recall"]["n"] == 3
    # hidden: tp 1 (frame 0), fp 1 (frame 3), fn 1 (frame 1)
    assert rows["precision"]["actual"] == pytest.approx(0.5)
    assert rows["recall"]["actual"] == pytest.approx(0.5)
    # frames WHERE count >= 2: 3 labelled + 2 predicted matches; truly 3 + 2
    assert rows["frames"]["estimate"] == rows["frames"]["actual"] == 5
    assert rows["frames"]["high"] - 5 == pytest.approx(
        ratio_error_bound(wilson(2, 4), wilson(2, 3), 2))
    moved = {r["kind"]: r for r in ae.selection_rows(y_kept, oof, y_hidden, pred_hidden + 5, 2)}
    for kind in ("precision", "recall"):  # the estimates never look at the hidden frames
        assert moved[kind]["estimate"] == rows[kind]["estimate"]


def test_a_mean_from_four_agreeing_labels_is_not_claimed_exact():
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1.0])
    kept, hidden = np.array([0, 4, 8, 11]), np.array([1, 2, 3, 5, 6, 7, 9, 10])
    row = ae.mean_row(y[kept], np.ones(4), y, np.ones(12), hidden)
    assert row["estimate"] == pytest.approx(1.0) and row["actual"] == pytest.approx(10 / 12)
    # the residuals are all 0; the bound is the rule of three: 8/12 x 3/4
    assert row["high"] - row["estimate"] == pytest.approx(8 / 12 * 0.75)
    assert row["verdict"] == "inside"


def test_estimates_are_not_overstated_on_simulated_footage():
    rows = []
    for seed in range(12):
        frames, y = scene(seed, n=600, every=10)
        fit = fit_class(frames, None, TrainConfig(classes=("person",)), "person")
        hidden = np.setdiff1d(np.arange(len(y)), frames.labelled)
        deployed = fit.deploy[fit.method]
        rows.append(ae.mean_row(frames.y, fit.oof[fit.method], y, deployed, hidden))
        rows += ae.extreme_rows(frames.y, fit.oof[fit.method], y, deployed, hidden)
        k = int(np.median(y))  # a predicate that matches about half the frames
        rows += ae.selection_rows(frames.y, fit.oof[fit.method], y[hidden], deployed[hidden], k)
    rows = [{**r, "strategy": "uniform"} for r in rows]
    summary = {s["kind"]: s for s in ae.summary(rows)}
    assert summary["precision"]["cases"] == summary["recall"]["cases"] == 12
    assert summary["precision"]["below"] + summary["recall"]["below"] <= 2, summary
    for kind in ("frames", "avg", "max", "min"):
        assert summary[kind]["inside"] >= 10, summary


def test_placed_labels_weighed_by_their_time_give_intervals_that_hold():
    """Labels half placed where counts move are no random sample of frames: weighing each by
    the time it stands for (as queries do) puts the truth inside the precision and recall
    intervals more often than counting them alike, and overstates no more often."""
    from count_scenes import busy_and_quiet, half_placed, passing_objects, scene_cuts

    from lensdb.counting.fit import Frames

    makers = (lambda s: passing_objects(s, weak=True), lambda s: busy_and_quiet(s, weak=True),
              lambda s: scene_cuts(s, n=800)[2:])
    tally = {"alike": Counter(), "weighted": Counter()}
    for make in makers:
        for seed in range(8):
            v, y = make(seed)
            n = len(y)
            video, ts = np.zeros(n, int), np.arange(n) / 10
            lab = half_placed(v, y)
            frames = Frames(v, video, ts, lab, y[lab].astype(np.float32))
            fit = fit_class(frames, None, TrainConfig(classes=("c",)))
            hid = np.setdiff1d(np.arange(n), lab)
            for k in sorted(set(np.percentile(y, [50, 80]).round().astype(int)) - {0}):
                for name, w in (("alike", None), ("weighted", ae.query_weights(video, ts, lab))):
                    for r in ae.selection_rows(y[lab], fit.oof[fit.method], y[hid],
                                               fit.deploy[fit.method][hid], int(k), w):
                        if r["kind"] in ("precision", "recall"):
                            tally[name][r["verdict"]] += 1
    # measured: inside 54 -> 65 of 76, below 2 -> 0
    assert tally["weighted"]["inside"] >= tally["alike"]["inside"] + 6, tally
    assert tally["weighted"]["below"] <= tally["alike"]["below"], tally


def test_query_weights_are_the_time_each_kept_frame_stands_for():
    video = np.array([0, 0, 0, 0, 0, 1, 1])
    ts = np.array([0, 1, 2, 3, 4, 0, 1.0])
    # video 0 lasts 5 s (last frame at 4 plus a step): labels at 1 and 3 stand for 0-2, 2-5
    assert ae.query_weights(video, ts, np.array([1, 3, 6])).tolist() == [2000, 3000, 2000]

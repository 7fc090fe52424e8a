"""Interpolation in time: per video, between labels, never across videos; the running
median of the labels drops a lone flicker, keeps a step, and beats plain interpolation
where the detector flickers (simulated footage)."""

from __future__ import annotations

import numpy as np
from count_scenes import flickering_object

from lensdb.counting.config import TrainConfig
from lensdb.counting.fit import fit_class
from lensdb.counting.interpolate import interpolate, running_median


def test_linear_between_labels_and_exact_at_them():
    out = interpolate([0, 0, 0], [0.0, 1.0, 3.0], [2, 4, 0], [0, 0, 0, 0], [0.0, 0.5, 2.0, 3.0])
    assert np.allclose(out.value, [2, 3, 2, 0]) and out.inside.all()
    assert np.allclose(out.dt_before, [0, 0.5, 1, 0]) and np.allclose(out.dt_after, [0, 0.5, 1, 0])
    assert np.allclose(out.y_before, [2, 2, 4, 0]) and np.allclose(out.y_after, [2, 4, 0, 0])


def test_never_across_videos():
    # video 0: labels 0 at t=0 and t=10; video 1: a label of 100 at t=5 in between
    lv, lt, ly = [0, 0, 1], [0.0, 10.0, 5.0], [0, 0, 100]
    out = interpolate(lv, lt, ly, [0, 0, 1, 2], [5.0, 9.0, 5.0, 5.0])
    assert np.allclose(out.value[:3], [0, 0, 100])
    assert not out.inside[3] and np.isnan(out.value[3])  # a video without labels: fallback
    # the labels are given in any order and video ids are not sorted either
    shuffled = interpolate([1, 0, 0], [5.0, 10.0, 0.0], [100, 0, 0], [0, 1], [5.0, 5.0])
    assert np.allclose(shuffled.value, [0, 100])


def test_hold_within_one_spacing_then_fall_back():
    # labels every 2 s up to t=10: t=11 (video ended between labels) holds the last count,
    # t=13 (a live stream past its last label) is left to the embedding model
    lt = np.arange(0.0, 10.1, 2.0)
    ly = np.arange(len(lt), dtype=float)
    out = interpolate(np.zeros(len(lt)), lt, ly, [0, 0, 0], [11.0, 13.0, -1.0])
    assert out.inside.tolist() == [True, False, True]
    assert out.value[0] == ly[-1] and out.value[2] == ly[0] and np.isnan(out.value[1])
    assert np.isinf(out.dt_after[0]) and out.dt_before[0] == 1.0


def test_running_median_drops_a_lone_flicker_and_keeps_a_step():
    ts = np.arange(8.0)
    y = np.array([1, 1, 0, 1, 1, 3, 3, 3.0])  # a missed detection at 2, a step at 5
    assert running_median(np.zeros(8, int), ts, y).tolist() == [1, 1, 1, 1, 1, 3, 3, 3]


def test_running_median_never_across_videos_and_in_time_order():
    video = np.array([1, 0, 1, 0, 0, 1])
    ts = np.array([2.0, 0.0, 0.0, 2.0, 1.0, 1.0])
    y = np.array([5, 0, 5, 0, 9, 0.0])  # video 0 in time: 0 9 0; video 1: 5 0 5
    assert running_median(video, ts, y).tolist() == [5, 0, 5, 0, 0, 5]


def test_median_beats_interpolation_where_the_detector_flickers():
    wins, ratios = 0, []
    for seed in range(7):
        frames, y = flickering_object(seed)
        fit = fit_class(frames, None, TrainConfig(classes=("car",)), "car", deploy_all=True)
        hidden = np.setdiff1d(np.arange(len(y)), frames.labelled)
        mae = {m: float(np.mean(np.abs(fit.deploy[m][hidden] - y[hidden])))
               for m in ("interp", "median", "constant")}
        wins += mae["median"] < mae["interp"]
        ratios.append(mae["median"] / mae["interp"])
        assert mae["median"] < mae["constant"]
    assert wins >= 5 and float(np.median(ratios)) < 0.95

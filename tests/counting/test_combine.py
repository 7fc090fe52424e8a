"""The learned combination: it never extrapolates a feature past what it trained on."""

from __future__ import annotations

import numpy as np
import pytest
from count_scenes import scene

from lensdb.counting.combine import Ridge
from lensdb.counting.config import TrainConfig
from lensdb.counting.fit import Frames, fit_class


def test_a_clipped_ridge_predicts_within_its_training_range():
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(size=200), 1.0 + 0.01 * rng.normal(size=200)], axis=1)
    y = x[:, 0] + 5.0 * (x[:, 1] - 1.0) + 0.01 * rng.normal(size=200)
    free, clipped = Ridge().fit(x, y), Ridge(clip=True).fit(x, y)
    far = np.array([[0.0, 0.25]])  # the nearly constant column, far below its range
    edge = np.array([[0.0, x[:, 1].min()]])
    assert clipped.predict(far)[0] == pytest.approx(clipped.predict(edge)[0])
    assert abs(free.predict(far)[0]) > 1.0  # unclipped it follows the line out of range
    assert clipped.to_dict()["lo"][1] == pytest.approx(x[:, 1].min())


def test_labels_a_little_off_the_grid_do_not_blow_up_the_deployed_combination():
    # Held-out labels sit one whole spacing from their neighbours, unlabelled frames at most
    # half of one: with two labels moved off the grid, the distance feature's training
    # scale was tiny and the deployed combination missed by 1.69 a frame (interp: 0.68).
    base, y = scene(62)
    kept = np.array(sorted(set(range(0, 800, 10)) - {770, 790} | {789, 799}))
    frames = Frames(base.vectors, base.video, base.ts, kept, y[kept].astype(np.float32))
    fit = fit_class(frames, None, TrainConfig(classes=("c",)), "c", deploy_all=True)
    hidden = np.setdiff1d(np.arange(len(y)), kept)
    mae = {m: float(np.mean(np.abs(fit.deploy[m][hidden] - y[hidden])))
           for m in ("interp", "knn", "combo", "constant")}
    assert mae["combo"] <= 1.2 * max(mae["interp"], mae["knn"]), mae
    assert mae["combo"] < 0.5 * mae["constant"], mae

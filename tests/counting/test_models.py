"""The MLP learns a simple relation; kNN propagates labels from neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.counting.config import StageConfig
from lensdb.counting.knn import KnnPropagator, propagate
from lensdb.counting.mlp import HIDDEN, build_mlp, count_parameters, predict_mlp
from lensdb.counting.train import fit_mlp


def _relation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    y = np.clip(np.rint(2 + 2 * x[:, 0] - x[:, 1]), 0, None).astype(np.float32)
    return x, y


@pytest.mark.parametrize("loss", ["mse", "huber", "poisson"])
def test_mlp_beats_the_constant_baseline(loss):
    x, y = _relation(400, 0)
    xt, yt = _relation(200, 1)
    stage = StageConfig(lr=3e-3, weight_decay=0.0, batch_size=64, max_epochs=30, patience=8)
    seen = []
    fit = fit_mlp(x[:300], y[:300], x[300:], y[300:], stage, loss=loss, seed=0,
                  progress=lambda task, done, total: seen.append((task, done, total)))
    pred = predict_mlp(fit.model, xt)
    assert (pred >= 0).all()
    mae, base = np.abs(pred - yt).mean(), np.abs(y.mean() - yt).mean()
    assert mae < 0.6 * base, (mae, base)
    assert seen and seen[-1][1] == seen[-1][2] == stage.max_epochs
    assert 1 <= fit.epochs_run <= stage.max_epochs and fit.best_epoch <= fit.epochs_run


def test_mlp_is_seeded():
    x, y = _relation(200, 0)
    stage = StageConfig(lr=1e-3, weight_decay=0.0, batch_size=32, max_epochs=3, patience=3)
    a = fit_mlp(x[:150], y[:150], x[150:], y[150:], stage, seed=5)
    b = fit_mlp(x[:150], y[:150], x[150:], y[150:], stage, seed=5)
    assert np.array_equal(predict_mlp(a.model, x), predict_mlp(b.model, x))


def test_sizes_and_non_negative_output():
    dims = {"tiny": 16 * 128 + 128 + 129, "small": 16 * 256 + 256 + 256 * 128 + 128 + 129}
    for size, expect in dims.items():
        assert count_parameters(build_mlp(16, size)) == expect
    assert set(HIDDEN) == {"tiny", "small", "medium"}
    model = build_mlp(16, "medium")
    assert (predict_mlp(model, np.random.default_rng(0).normal(size=(50, 16)) * 100) >= 0).all()


def test_knn_hand_case_distance_weighted():
    v = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    counts = np.array([2.0, 6.0, 100.0])
    knn = KnnPropagator(v, counts, k=2)
    q = np.array([[1, 0], [0.7071, 0.7071]], np.float32)
    out = knn.predict(q)
    # first: itself (distance 0, weight 1000) and [0,1] (distance 1, weight ~1)
    assert out[0] == pytest.approx((2 * 1000 + 6 * 1 / 1.001) / (1000 + 1 / 1.001), rel=1e-4)
    assert out[1] == pytest.approx(4.0, rel=1e-4)  # equidistant -> plain mean
    assert propagate(np.array([[0.5, 0.5]]), np.array([[1.0, 3.0]]))[0] == pytest.approx(2.0)


def test_knn_propagates_between_labelled_frames():
    # a smooth trajectory on the sphere; label every 5th point, predict the rest
    t = np.linspace(0, 3, 300)
    v = np.stack([np.cos(t), np.sin(t), 0.1 * np.ones_like(t)], axis=1).astype(np.float32)
    counts = np.rint(4 + 3 * np.sin(3 * t))
    lab = np.arange(0, 300, 5)
    knn = KnnPropagator(v[lab] * 3.0, counts[lab], k=2)  # scale does not matter: cosine
    rest = np.setdiff1d(np.arange(300), lab)
    err = np.abs(knn.predict(v[rest]) - counts[rest]).mean()
    assert err < 0.3 * np.abs(counts[lab].mean() - counts[rest]).mean()
    assert knn.predict(np.zeros((0, 3), np.float32)).shape == (0,)

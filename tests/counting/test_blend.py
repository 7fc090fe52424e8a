"""The blend of interpolation and kNN: its error model recovers the process that made the
counts, its weights follow the distance to the labels, placed labels weigh as the time they stand
for, and it learns (held-out frames)."""

from __future__ import annotations

import numpy as np
import pytest
from count_scenes import drifting_counts, scene

from lensdb.counting.blend import Blend, label_steps
from lensdb.counting.config import TrainConfig
from lensdb.counting.fit import fit_class
from lensdb.counting.interpolate import interpolate


def test_the_error_model_recovers_drift_and_flicker():
    x, y, ts = drifting_counts(0)
    video = np.zeros(len(y), int)
    lab = np.arange(0, len(y), 10)
    kept, held = lab[lab % 50 != 0], lab[lab % 50 == 0]
    interp = interpolate(video[kept], ts[kept], y[kept], video[held], ts[held])
    emb = x[held] + np.random.default_rng(1).normal(0, 0.5, len(held))  # v = 0.25
    blend = Blend.fit(label_steps(video[kept], ts[kept], y[kept]), interp, y[held], emb)
    assert blend.q == pytest.approx(0.4, rel=0.2)
    assert blend.eta2 == pytest.approx(0.3, rel=0.2)
    assert blend.v == pytest.approx(0.25, rel=0.3)


def test_several_lags_estimate_drift_and_flicker_better_than_consecutive_steps():
    def relative_errors(lags: int) -> np.ndarray:
        errs = []
        for seed in range(10):  # short footage: 240 labels, 60 of them held out
            x, y, ts = drifting_counts(seed, n=3000)
            video = np.zeros(len(y), int)
            lab = np.arange(0, len(y), 10)
            kept, held = lab[lab % 50 != 0], lab[lab % 50 == 0]
            interp = interpolate(video[kept], ts[kept], y[kept], video[held], ts[held])
            blend = Blend.fit(label_steps(video[kept], ts[kept], y[kept], lags), interp,
                              y[held], x[held])
            errs.append((abs(blend.q / 0.4 - 1), abs(blend.eta2 / 0.3 - 1)))
        return np.mean(errs, axis=0)

    one, four = relative_errors(1), relative_errors(4)
    assert (four < 0.7 * one).all()
    assert (four < 0.25).all()


def test_weights_follow_the_distance_to_the_labels():
    blend = Blend(q=0.5, eta2=0.2, v=0.3)
    lv, lt, ly = np.zeros(3, int), np.array([0.0, 10.0, 10.5]), np.array([2.0, 4.0, 4.0])
    at = interpolate(lv, lt, ly, np.zeros(4, int), np.array([0.1, 5.0, 10.2, 30.0]))
    w = blend.weight(at)
    assert w[0] > w[1] and w[2] > w[1]  # next to a label vs the middle of a long gap
    assert w[3] == 0.0  # past the last label by more than a spacing: the embedding only
    out = blend.predict(at, np.full(4, 9.0), np.full(4, 7.0))
    assert out[3] == pytest.approx(7.0) and 3.0 < out[1] < 9.0


def test_the_blend_learns_on_held_out_frames():
    maes = []
    for seed in range(3):
        frames, y = scene(seed)
        fit = fit_class(frames, None, TrainConfig(classes=("person",)), "person",
                        deploy_all=True)
        hidden = np.setdiff1d(np.arange(len(y)), frames.labelled)
        maes.append({m: float(np.mean(np.abs(fit.deploy[m][hidden] - y[hidden])))
                     for m in ("constant", "interp", "knn", "blend")})
        assert fit.combiner is None or fit.method != "blend" or fit.combiner["kind"] == "blend"
    mean = {m: np.mean([r[m] for r in maes]) for m in maes[0]}
    assert mean["blend"] < 0.5 * mean["constant"]
    assert mean["blend"] < max(mean["interp"], mean["knn"])  # never the worse of the two
    assert mean["blend"] <= 1.03 * min(mean["interp"], mean["knn"])


def test_placed_labels_weigh_as_the_time_they_stand_for(monkeypatch):
    """Labels dense where counts move (placed by gap splitting): fitted with every step and
    held-out label weighed alike, their short busy steps pass for flicker and the blend
    leans on kNN; weighed by the time each stands for, it stays nearer interpolation."""
    from count_scenes import busy_and_quiet, half_placed

    import lensdb.counting.fit as fit_module
    import lensdb.counting.out_of_fold as oof
    from lensdb.counting.fit import Frames

    def hidden_blend_mae() -> float:
        out = []
        for seed in range(6):
            v, y = busy_and_quiet(seed, weak=True)
            n, lab = len(y), half_placed(v, y)
            fit = fit_class(Frames(v, np.zeros(n, int), np.arange(n) / 10.0, lab,
                                   y[lab].astype(np.float32)), None,
                            TrainConfig(classes=("c",)), deploy_all=True)
            hid = np.setdiff1d(np.arange(n), lab)
            out.append(np.abs(fit.deploy["blend"][hid] - y[hid]).mean())
        return float(np.mean(out))

    weighted = hidden_blend_mae()
    monkeypatch.setattr(fit_module, "label_weights",
                        lambda frames: np.ones(len(frames.labelled)))
    monkeypatch.setattr(oof, "label_steps",
                        lambda *a: (*label_steps(*a)[:2], np.ones(len(label_steps(*a)[0]))))
    alike = hidden_blend_mae()
    assert weighted < 0.92 * alike  # measured: 0.81x

"""Answers with guarantees: the SUPG recall and precision targets hold in >= 95 of 100 seeded
trials (synthetic proxy and oracle), the control-variate interval covers and narrows, and on a
store: every detector run is stored as a label, nothing runs without the flags, and each bad
input is one line, a non-zero exit, and no change to the catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "counting"))
from fake_models import (  # noqa: E402
    SCENES,
    SCRIPT,
    build_scene_store,
    catalog_checksum,
    fresh_scene_store,
    no_labels,
    scene_counts,
    video_gone,
)

from lensdb.query import run_query, run_verified  # noqa: E402
from lensdb.query.guarantee import (  # noqa: E402
    mean_with_error,
    precision_select,
    recall_select,
)
from lensdb.storage import Store  # noqa: E402


def _trial_data(seed: int, n: int = 5000):
    """~10% positives; the proxy is a noisy, monotone view of the latent score."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    truth = z > 1.3
    proxy = 1.0 / (1.0 + np.exp(-2.0 * (z + 0.5 * rng.normal(size=n) - 1.3)))
    return truth, proxy


def _run_trials(select, measure):
    met, sizes, other = 0, [], []
    for seed in range(100):
        truth, proxy = _trial_data(seed)
        calls = []

        def oracle(pos, truth=truth, calls=calls):
            calls.append(len(pos))
            return truth[pos]
        sel = select(proxy, oracle, 0.9, 0.95, 400, np.random.default_rng(10_000 + seed))
        chosen = np.zeros(len(truth), bool)
        chosen[sel.selected] = True
        tp = (chosen & truth).sum()
        recall, precision = tp / truth.sum(), tp / max(1, chosen.sum())
        met += measure(recall, precision) >= 0.9
        sizes.append(chosen.sum())
        other.append((recall, precision))
        assert sum(calls) == sel.oracle_calls <= 400  # the budget is the detector runs
    return met, np.mean(sizes), np.mean(other, axis=0)


def test_recall_target_met_in_95_of_100_trials():
    met, size, (recall, precision) = _run_trials(recall_select, lambda r, p: r)
    assert met >= 95
    # not the trivial answer (everything): positives are ~500 of 5000 frames
    assert size < 0.5 * 5000 and precision > 0.2


def test_precision_target_met_in_95_of_100_trials():
    met, size, (recall, precision) = _run_trials(precision_select, lambda r, p: p)
    assert met >= 95
    assert recall > 0.2  # not the trivial answer (only the sampled positives)


def test_recall_with_a_budget_over_the_frames_is_exact():
    truth, proxy = _trial_data(0, n=300)
    sel = recall_select(proxy, lambda pos: truth[pos], 0.9, 0.95, 500, np.random.default_rng(0))
    assert sorted(sel.selected.tolist()) == np.flatnonzero(truth).tolist()
    assert sel.oracle_calls == 300


def test_control_variates_cover_and_need_fewer_samples():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.poisson(3.0, n).astype(float)
    pred = y + rng.normal(0, 0.5, n)  # good predictions
    covered, cv_samples, plain_samples = 0, [], []
    for seed in range(100):
        def oracle(pos):
            return y[pos], np.ones(len(pos))
        est = mean_with_error(pred, np.ones(n), oracle, 0.05, 0.95, 4000,
                              np.random.default_rng(seed))
        assert est.reached and est.half_width <= 0.05
        covered += abs(est.value - y.mean()) <= est.half_width
        cv_samples.append(est.sampled)
        if seed < 10:
            plain = mean_with_error(np.zeros(n), np.ones(n), oracle, 0.05, 0.95, 4000,
                                    np.random.default_rng(seed))
            plain_samples.append(plain.sampled)
    assert covered >= 90  # a 95% CLT interval at the stopping time
    assert np.mean(cv_samples) < 0.5 * np.mean(plain_samples)


# ---- on a store ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_scene_store(tmp_path_factory.mktemp("scenes"))


@pytest.fixture
def scene_store(template: Path, tmp_path: Path) -> Path:
    return fresh_scene_store(template, tmp_path / "store")


def _n_labelled(store_dir: Path) -> int:
    with duckdb.connect(str(store_dir / "catalog.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM frames WHERE labelled").fetchone()[0]


def test_recall_on_a_store_stores_every_detector_run(scene_store: Path):
    truth = scene_counts(SCENES) >= 5
    before = _n_labelled(scene_store)
    result = run_verified(Store.open(scene_store), "count(person) >= 5", recall=0.9,
                          budget=120, frames=True)
    est = result.to_dict()["estimate"]
    picked = {r["frame_index"] for r in result.rows}
    assert len(picked & set(np.flatnonzero(truth).tolist())) >= 0.9 * truth.sum()
    assert est["oracle_calls"] > 0 and est["sample_size"] == 120
    assert "recall >= 0.9" in est["guarantee"] and "95%" in est["guarantee"]
    assert _n_labelled(scene_store) == before + est["oracle_calls"]


def test_conditions_without_counts_are_settled_without_the_detector(scene_store: Path):
    result = run_verified(Store.open(scene_store), "count(person) >= 5 OR time <= 2s",
                          recall=0.9, budget=30, frames=True)
    picked = {r["frame_index"] for r in result.rows}
    assert set(range(21)) <= picked  # 10 fps: every frame of the first 2 s, unsampled
    assert result.estimate["population"] == 240 - 21 - result.estimate["labelled_frames"] + 3


def test_error_on_an_aggregate(scene_store: Path):
    result = run_verified(Store.open(scene_store), "avg(count(person))", error=0.1, budget=200)
    row = result.rows[0]
    assert abs(row["avg(count(person))"] - scene_counts(SCENES).mean()) <= max(
        row["±avg(count(person))"], 0.1)
    assert result.estimate["reached"] and result.estimate["oracle_calls"] >= 32


def test_without_the_flags_nothing_runs_the_detector(scene_store: Path):
    before = catalog_checksum(scene_store)
    run_query(Store.open(scene_store), "count(person) >= 5")
    out = subprocess.run([sys.executable, str(SCRIPT), "query", "avg(count(person))",
                          "--store", str(scene_store)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert catalog_checksum(scene_store) == before


@pytest.mark.parametrize("args, setup, message", [
    (["count(person) >= 5", "--recall", "0.9", "--source", "detected"], None,
     "--source detected"),
    (["count(person) >= 5", "--recall", "0.9", "--budget", "0"], None, "--budget must be"),
    (["count(person) >= 5", "--recall", "0"], None, "strictly between 0 and 1"),
    (["count(person) >= 5", "--recall", "1"], None, "strictly between 0 and 1"),
    (["count(person) >= 5", "--precision", "1.5"], None, "strictly between 0 and 1"),
    (["count(person) >= 5", "--recall", "0.9", "--confidence", "1"], None,
     "--confidence must lie strictly"),
    (["avg(count(person))", "--error", "0"], None, "--error must be a positive"),
    (["avg(count(person))", "--error", "0.1", "--confidence", "0"], None,
     "--confidence must lie strictly"),
    (["count(person) >= 5", "--recall", "0.9"], video_gone, "is gone"),
    (["avg(count(person))", "--error", "0.1"], video_gone, "is gone"),
    (["count(person) >= 5", "--recall", "0.9"], no_labels, "no labelled frames"),
    (["count(person) >= 5", "--error", "0.1"], None, "--error applies to aggregates"),
    (["count(person) >= 5", "--budget", "10"], None, "needs one of recall"),
    (["count(person) >= 5 AND video = 'nope.mp4'", "--recall", "0.9"], None,
     "no video named 'nope.mp4'"),
])
def test_guarantee_bad_input_is_one_line_and_changes_nothing(scene_store, args, setup, message):
    if setup is not None:
        setup(scene_store)
    before = catalog_checksum(scene_store)
    out = subprocess.run([sys.executable, str(SCRIPT), "query", *args, "--store",
                          str(scene_store)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:") and message in lines[0], out.stderr
    assert len(lines) <= 2 and "Traceback" not in out.stderr  # a query error adds a caret
    assert catalog_checksum(scene_store) == before


def test_http_query_takes_the_guarantee_parameters(scene_store: Path):
    from fastapi.testclient import TestClient

    from lensdb.service.app import create_app

    before = _n_labelled(scene_store)
    with TestClient(create_app(scene_store)) as http:
        r = http.post("/query/verified", json={"q": "count(person) >= 5", "recall": 0.9,
                                               "budget": 60, "frames": True})
        assert r.status_code == 200, r.text
        est = r.json()["estimate"]
        assert est["method"] == "supg-recall" and est["oracle_calls"] > 0
        assert "recall >= 0.9" in est["guarantee"]
        bad = http.post("/query/verified", json={"q": "count(person) >= 5", "recall": 1.5})
        assert bad.status_code == 400 and "strictly between" in bad.text
        plain = http.get("/query", params={"q": "count(person) >= 5", "recall": 0.9})
        assert plain.status_code == 400 and "POST /query/verified" in plain.text
        dl = http.get("/query/download", params={"q": "count(person) >= 5", "recall": 0.9})
        assert dl.status_code == 400 and "POST /query/verified" in dl.text
        only_q = http.post("/query/verified", json={"q": "count(person) >= 5"})
        assert only_q.status_code == 400 and "needs one of recall" in only_q.text
    assert _n_labelled(scene_store) == before + est["oracle_calls"]  # GET wrote nothing

"""`lensdb label`: placement beats uniform labels, the oracle stores what it ran, crash
safety (kill -9, re-run, nothing duplicated), --detect-every auto, and the bad inputs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from count_scenes import scene_cuts
from fake_models import (
    SCENES,
    SCRIPT,
    build_scene_store,
    catalog_checksum,
    few_labels,
    fresh_scene_store,
    no_labels,
    scene_counts,
    video_gone,
)

from lensdb.counting.label import LabelConfig, label_store, previous_train_config
from lensdb.counting.oracle import Oracle
from lensdb.counting.placement import Frames, interpolate_in_time, place_labels
from lensdb.counting.scene_change import SceneChangePlacer
from lensdb.errors import LensDBError
from lensdb.storage import Store
from lensdb.storage.catalog import Catalog

CUTS = np.cumsum([n for n, _ in SCENES])[:-1]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_scene_store(tmp_path_factory.mktemp("scenes"))


@pytest.fixture
def scene_store(template: Path, tmp_path: Path) -> Path:
    return fresh_scene_store(template, tmp_path / "store")


def _labelled(store_dir: Path) -> dict[int, int]:
    """frame index -> stored person count, for every labelled frame (through LensDB's
    catalog locks, so a writer in another process is not disturbed)."""
    with Catalog(store_dir / "catalog.duckdb", lock_timeout=10).connect() as con:
        return dict(con.execute(
            "SELECT f.frame_index, coalesce(sum(c.n), 0)::INT FROM frames f LEFT JOIN counts c "
            "USING (frame_id) WHERE f.labelled GROUP BY 1").fetchall())


def _duplicates(store_dir: Path) -> tuple[int, int]:
    """(count rows duplicated per frame and class, frames whose detections != counts)."""
    con = duckdb.connect(str(store_dir / "catalog.duckdb"), read_only=True)
    try:
        dup = con.execute("SELECT count(*) FROM (SELECT frame_id, class FROM counts GROUP BY 1, "
                          "2 HAVING count(*) > 1)").fetchone()[0]
        bad = con.execute(
            "SELECT count(*) FROM (SELECT frame_id, class, count(*) AS k FROM detections GROUP "
            "BY 1, 2) d FULL JOIN counts c USING (frame_id, class) WHERE d.k IS DISTINCT FROM "
            "c.n").fetchone()[0]
        return dup, bad
    finally:
        con.close()


# ---- placement on synthetic data (pure functions) -------------------------------------------

def _fill_in_mae(video, ts, y, labelled) -> float:
    known = np.full(len(y), np.nan)
    known[labelled] = y[labelled]
    free = np.ones(len(y), bool)
    free[labelled] = False
    return float(np.abs(interpolate_in_time(video, ts, known)[free] - y[free]).mean())


def test_placed_labels_beat_uniform_at_the_same_budget():
    placed_mae, uniform_mae = [], []
    for seed in range(12):
        video, ts, x, y = scene_cuts(seed)
        start = np.arange(0, len(y), 30)  # labels every 30 frames, then 20 more
        labels = np.full(len(y), np.nan)
        labels[start] = y[start]
        got = place_labels(Frames(video, ts, x, {"person": labels}), 20,
                           lambda pos, y=y: {"person": y[pos]})
        assert len(got) == 20 and len(set(got.tolist()) | set(start.tolist())) == 40
        placed_mae.append(_fill_in_mae(video, ts, y, np.r_[start, got]))
        uniform = np.linspace(0, len(y) - 1, len(start) + 20).round().astype(int)
        uniform_mae.append(_fill_in_mae(video, ts, y, uniform))
    placed_mae, uniform_mae = np.array(placed_mae), np.array(uniform_mae)
    assert placed_mae.mean() < 0.75 * uniform_mae.mean()
    assert (placed_mae < uniform_mae).sum() >= 10


def test_interpolation_never_crosses_videos():
    video = np.array([0, 0, 0, 1, 1, 1])
    ts = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    y = np.array([1.0, np.nan, np.nan, np.nan, np.nan, 9.0])
    out = interpolate_in_time(video, ts, y)
    assert out.tolist() == [1.0, 1.0, 1.0, 9.0, 9.0, 9.0]


@pytest.mark.parametrize("batch", [1, 16])
def test_scene_change_placer_follows_cuts_and_budget(batch):
    rng = np.random.default_rng(0)
    scene = np.repeat(np.arange(6), [37, 50, 23, 61, 29, 40])
    centres = rng.normal(size=(6, 24))
    x = centres[scene] + 0.05 * rng.normal(size=(len(scene), 24))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    placer = SceneChangePlacer(0.1)
    chosen = [s + i for s in range(0, len(x), batch) for i in placer.choose(x[s:s + batch])]
    for cut in CUTS:
        assert any(cut <= c <= cut + 1 for c in chosen), cut  # labelled right at each cut
    assert 0.05 * len(x) <= len(chosen) <= 0.2 * len(x)
    assert max(np.diff(chosen)) <= placer.max_gap


# ---- the oracle and label_store on a real (encoded) video ----------------------------------

def test_label_stores_what_the_detector_found(scene_store: Path):
    store = Store.open(scene_store)
    before = _labelled(scene_store)
    report = label_store(store, LabelConfig(budget=12, refit=False))
    after = _labelled(scene_store)
    truth = scene_counts(SCENES)
    assert report.labelled == report.detector_runs == 12
    assert len(after) == len(before) + 12 and set(before) < set(after)
    assert all(after[i] == truth[i] for i in after)  # what the detector sees in the frame
    assert _duplicates(scene_store) == (0, 0)
    placed = sorted(set(after) - set(before))
    changes = np.flatnonzero(np.diff(truth)) + 1  # first frames of a new count
    assert sum(any(abs(i - c) <= 3 for c in CUTS) for i in placed) >= 4, placed  # uniform: ~2
    assert sum(np.min(np.abs(changes - i)) <= 1 for i in placed) >= 10, placed  # uniform: ~6

    oracle = Oracle(store)  # the same frames again: read back, not detected again
    with duckdb.connect(str(scene_store / "catalog.duckdb"), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT frame_id FROM frames WHERE labelled").fetchall()]
    counts = oracle.label(np.array(ids))
    assert oracle.calls == 0 and len(counts) == len(after)
    assert _duplicates(scene_store) == (0, 0)


def test_label_refits_with_the_new_labels(scene_store: Path):
    store = Store.open(scene_store)
    with duckdb.connect(str(scene_store / "catalog.duckdb"), read_only=True) as con:
        old = con.execute("SELECT max(model_id) FROM count_models").fetchone()[0]
    report = label_store(store, LabelConfig(budget=10))
    with duckdb.connect(str(scene_store / "catalog.duckdb"), read_only=True) as con:
        new = con.execute("SELECT model_id FROM count_models WHERE active").fetchall()
        n_pred = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    assert report.refit and [r[0] for r in new] != [old] and new[0][0] > old
    assert n_pred == 240
    assert report.before["person"] is not None and report.after["person"] is not None
    assert report.placed_mae["person"] is not None


def test_a_refit_that_fails_keeps_the_labels_and_says_so(scene_store: Path, monkeypatch):
    import lensdb.counting as counting

    def refuse(store, config):
        raise LensDBError("no refit today")
    monkeypatch.setattr(counting, "train_counters", refuse)
    before = len(_labelled(scene_store))
    report = label_store(Store.open(scene_store), LabelConfig(budget=4))
    assert len(_labelled(scene_store)) == before + 4 == report.labelled_total
    assert report.refit is None and report.refit_error == "no refit today"
    assert any("refit failed: no refit today" in n for n in report.notes)


def test_refit_reuses_the_last_training_config(scene_store: Path):
    config = previous_train_config(Store.open(scene_store), ["person"])
    assert config.method == "knn" and config.classes == ("person",)


def test_target_error_labels_in_rounds_until_reached(scene_store: Path):
    store = Store.open(scene_store)
    easy = label_store(store, LabelConfig(target_error=50.0, budget=30))
    assert len(easy.rounds) == 1 and easy.labelled == easy.rounds[0]["labelled"] < 30
    assert not easy.notes
    hard = label_store(store, LabelConfig(target_error=1e-9, budget=12, refit=False))
    assert hard.labelled == 12 and len(hard.rounds) >= 2
    assert hard.notes and "not reached" in hard.notes[0]


@pytest.mark.slow  # two CLI processes, ~10 s
def test_kill_9_mid_label_then_rerun_duplicates_nothing(scene_store: Path):
    truth = scene_counts(SCENES)
    before = len(_labelled(scene_store))
    cmd = [sys.executable, str(SCRIPT), "label", "--store", str(scene_store), "--budget", "60",
           "--no-refit", "--json"]
    env = {**os.environ, "FAKE_DETECTOR_DELAY": "0.03"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(_safe_labelled(scene_store)) < before + 16:  # a batch or more committed
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    mid = _labelled(scene_store)
    assert before < len(mid) < before + 60
    assert _duplicates(scene_store) == (0, 0)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = _labelled(scene_store)
    assert set(mid) <= set(final) and len(final) == len(mid) + 60
    assert all(final[i] == truth[i] for i in final)
    assert _duplicates(scene_store) == (0, 0)


def _safe_labelled(store_dir: Path) -> dict[int, int]:
    try:
        return _labelled(store_dir)
    except (duckdb.Error, LensDBError):
        return {}  # the writer holds the file this instant


def test_label_refuses_a_changed_video(scene_store: Path, tmp_path: Path):
    copy = tmp_path / "scenes.mp4"
    shutil.copy(_video_of(scene_store), copy)
    with duckdb.connect(str(scene_store / "catalog.duckdb")) as con:
        con.execute("UPDATE videos SET path = ?", [str(copy)])
    copy.write_bytes(copy.read_bytes()[:-100] + b"x" * 100)
    sum_before = catalog_checksum(scene_store)
    with pytest.raises(Exception, match="changed since it was ingested"):
        label_store(Store.open(scene_store), LabelConfig(budget=5, refit=False))
    assert catalog_checksum(scene_store) == sum_before


def _video_of(store_dir: Path) -> str:
    with duckdb.connect(str(store_dir / "catalog.duckdb"), read_only=True) as con:
        return con.execute("SELECT path FROM videos").fetchone()[0]


# ---- bad input: one line, non-zero exit, the store unchanged -------------------------------

def _cli(store_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--store", str(store_dir)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, setup, message", [
    (["--budget", "0"], None, "--budget must be at least 1"),
    (["--budget", "-3"], None, "--budget must be at least 1"),
    (["--target-error", "0"], None, "--target-error must be a positive"),
    (["--budget", "5"], video_gone, "is gone"),
    (["--budget", "5"], no_labels, "no labelled frames"),
    (["--budget", "2"], few_labels, "the refit needs at least 10 labelled frames"),
    (["--budget", "5", "--thresholds", "a,b"], None, "--thresholds must be"),
    (["--budget", "5", "--classes", "dog"], None, "--classes names 'dog'"),
])
def test_label_bad_input_is_one_line_and_changes_nothing(scene_store, args, setup, message):
    if setup is not None:
        setup(scene_store)
    before = catalog_checksum(scene_store)
    out = _cli(scene_store, "label", *args)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert catalog_checksum(scene_store) == before


def test_ingest_detect_every_auto_labels_the_scene_changes(tmp_path: Path, template: Path):
    store = tmp_path / "auto"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "ingest", str(template.parent / "scenes.mp4"), "--store",
         str(store), "--detector", "fake-squares", "--embedder", "fake-colour",
         "--detect-every", "auto", "--codec", "Flat", "--json"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    labelled = sorted(_labelled(store))
    for cut in CUTS:
        assert any(cut <= i <= cut + 2 for i in labelled), (cut, labelled)
    assert 0.05 * 240 <= len(labelled) <= 0.2 * 240


@pytest.mark.slow
def test_oracle_on_a_real_video_matches_what_ingest_detected(tmp_path, bikes, offline_pair):
    """Frames decoded again by pts and run through the recorded detector and threshold give
    the counts the ingest stored for the same frames (bikes.mp4, H.264, SSD at conf 0.4)."""
    from lensdb.config import IngestConfig
    from lensdb.ingest import ingest

    stores = {}
    for name, every in (("all", 1), ("sparse", 7)):
        stores[name] = Store.open(tmp_path / name, create=True)
        ingest(stores[name], [str(bikes)], IngestConfig(**offline_pair, stride=2, conf=0.4,
                                                        detect_every=every))
    sparse = stores["sparse"]
    with sparse.catalog.connect() as con:
        ids = [r[0] for r in con.execute(
            "SELECT frame_id FROM frames WHERE NOT labelled ORDER BY frame_id").fetchall()][::6]
    oracle = Oracle(sparse)
    oracle.label(np.array(ids))
    assert oracle.calls == len(ids) > 10
    assert _labelled(tmp_path / "sparse").items() <= _labelled(tmp_path / "all").items()
    with sparse.catalog.connect() as con:
        dets = con.execute("SELECT f.frame_index, d.class, round(d.score, 4) FROM detections d "
                           "JOIN frames f USING (frame_id) ORDER BY ALL").fetchall()
    with stores["all"].catalog.connect() as con:
        every = set(con.execute("SELECT f.frame_index, d.class, round(d.score, 4) FROM "
                                "detections d JOIN frames f USING (frame_id)").fetchall())
    assert set(dets) <= every and len(dets) > 0

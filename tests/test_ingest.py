"""Ingest end to end with the real offline pair: counts, resume, no-op re-ingest."""

from __future__ import annotations

import lensdb
from lensdb.config import IngestConfig


def _catalog_and_index_agree(db) -> tuple[int, int]:
    ids, _ = db.store.decoded_vectors()
    with db.store.catalog.connect() as con:
        frame_ids = [r[0] for r in con.execute("SELECT frame_id FROM frames ORDER BY 1").fetchall()]
    assert list(ids) == frame_ids
    return len(frame_ids), len(set(frame_ids))


def test_ingest_samples_detects_and_embeds(tmp_path, make_video, offline_pair):
    video = make_video(n_frames=40, fps=10)
    db = lensdb.open(str(tmp_path / "store"), create=True)
    report = db.ingest([str(video)], IngestConfig(stride=2, detect_every=3, batch_size=8,
                                                 **offline_pair))
    assert report.videos[0].status == "complete"
    assert report.frames == 20
    assert report.videos[0].labelled == 7  # kept frames 0, 3, ..., 18
    info = db.info()
    assert info["frames"] == 20 and info["labelled_frames"] == 7 and info["vectors"] == 20
    assert info["embedder"].startswith("mobilenet-v2@") and info["codec"] == "SQ8"
    assert info["bytes_per_vector"] == 1280
    assert info["last_ingest"] == {"engine": "local", "threads": report.threads,
                                   "devices": {"detector": "cpu", "embedder": "cpu"},
                                   "batch_size": 8, "workers": None}
    n, unique = _catalog_and_index_agree(db)
    assert n == unique == 20
    with db.store.catalog.connect() as con:
        idx = [r[0] for r in con.execute("SELECT frame_index FROM frames ORDER BY 1").fetchall()]
    assert idx == list(range(0, 40, 2))


def test_reingesting_a_complete_video_is_a_noop(tmp_path, make_video, offline_pair):
    video = make_video(n_frames=12)
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(video)], IngestConfig(batch_size=4, **offline_pair))
    copy = tmp_path / "renamed.mkv"
    copy.write_bytes(video.read_bytes())  # same content under another name
    again = db.ingest([str(video), str(copy)], IngestConfig(batch_size=4, **offline_pair))
    assert [v.status for v in again.videos] == ["skipped", "skipped"]
    assert db.info()["frames"] == 12
    assert db.info()["missing_segments"] == [] and not db.info()["codec_missing"]
    for seg in (db.store.root / "vectors").glob("*"):  # files lost outside LensDB
        seg.unlink()
    info = db.info()
    assert len(info["missing_segments"]) == info["segments"] >= 1 and info["codec_missing"]


def test_codec_is_trained_and_decoded_vectors_stay_close(tmp_path, make_video, offline_pair):
    import numpy as np

    from lensdb.frames import iter_frames
    from lensdb.models.registry import get_embedder

    video = make_video(n_frames=16)
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(video)], IngestConfig(batch_size=5, codec="PCA8,SQ8", **offline_pair))
    _, decoded = db.store.decoded_vectors()
    exact = get_embedder("mobilenet-v2").embed_images([f.rgb for f in iter_frames(str(video))])
    assert decoded.shape == exact.shape == (16, 1280)
    cos = np.sum(decoded * exact, axis=1) / np.linalg.norm(decoded, axis=1)
    assert cos.min() > 0.9  # PCA to 8 dims of 16 near-identical frames keeps them
    assert db.info()["bytes_per_vector"] == 8


def test_real_sample_counts_cars_and_people(tmp_path, bikes, offline_pair):
    db = lensdb.open(str(tmp_path / "store"), create=True)
    report = db.ingest([str(bikes)], IngestConfig(stride=5, detect_every=1, conf=0.4,
                                                 **offline_pair))
    counts = report.videos[0].counts
    assert report.frames == 50
    assert counts.get("car", 0) >= 20 and counts.get("person", 0) >= 3
    assert db.info()["classes"]["car"]["frames_with"] >= 15


def test_ingest_from_stdin(tmp_path, make_video, offline_pair):
    import subprocess
    import sys

    video = make_video(n_frames=15)
    store = tmp_path / "store"
    with open(video, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "lensdb.cli.app", "ingest", "-", "--store", str(store),
             "--detector", "ssd-mobilenet-v2", "--embedder", "mobilenet-v2"],
            stdin=stdin, capture_output=True, text=True, timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    info = lensdb.open(str(store)).info()
    assert info["frames"] == 15 and info["videos"][0]["name"] == "stdin"


def test_a_second_ingest_naming_no_models_uses_the_stores(tmp_path, make_video, offline_pair):
    db = lensdb.open(str(tmp_path / "store"), create=True)
    first = db.ingest([str(make_video("a.mkv", n_frames=8))],
                      IngestConfig(batch_size=4, conf=0.55, **offline_pair))
    assert first.models == {"detector": "ssd-mobilenet-v2", "embedder": "mobilenet-v2"}
    second = db.ingest([str(make_video("b.mkv", n_frames=9))],
                       IngestConfig(batch_size=4))  # no detector, embedder or conf named
    assert second.videos[0].status == "complete", second.videos[0].message
    assert second.models == first.models and second.videos[0].conf == 0.55
    assert second.to_dict()["models"] == first.models
    again = db.ingest([str(make_video("c.mkv", n_frames=10))],
                      IngestConfig(batch_size=4, conf=0.45))  # a named conf is kept
    assert again.models == first.models and again.videos[0].conf == 0.45

"""Frames held for a codec that cannot train yet (storage/held.py): kept between ingests
without pickle, committed once the codec trains, never twice after a crash between that
commit and the file's removal, and the store's space stays the held frames' embedder's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from ingest_fakes import install

import lensdb
from lensdb.config import IngestConfig
from lensdb.errors import EmbedderMismatchError
from lensdb.storage import Batch, FrameRow, Store, held
from lensdb.types import Detections
from lensdb.writer import Finish

FAKE = install()
IVF = dict(codec="IVF32,Flat", batch_size=8, codec_train_size=16, **FAKE)  # needs 32 frames
RUNNER = [sys.executable, str(Path(__file__).parents[1] / "ingest_fakes.py")]


def test_held_batches_round_trip_without_pickle(tmp_path):
    det = Detections(np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32),
                     np.array([0.9, 0.5], np.float32), ("car", "person"))
    rows = [FrameRow(0, 0.0, det), FrameRow(1, 0.1), FrameRow(2, 0.2, Detections(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ()))]
    vectors = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    items = [Batch(4, rows, vectors), Finish(4, "complete", None),
             Batch(5, [FrameRow(7, 0.7)], vectors[:1]), Finish(5, "partial", "cut short")]
    held.save(tmp_path, items, "fake-embedder@0")
    assert held.embedder(tmp_path) == "fake-embedder@0" and held.frames(tmp_path) == 4
    back = held.load(tmp_path, lambda firsts: set(), Finish)
    assert [type(i).__name__ for i in back] == ["Batch", "Finish", "Batch", "Finish"]
    assert np.array_equal(back[0].vectors, vectors) and back[3].message == "cut short"
    first = back[0].frames
    assert [f.frame_index for f in first] == [0, 1, 2] and first[1].detections is None
    assert first[0].detections.class_names == ("car", "person")
    assert np.array_equal(first[0].detections.boxes, det.boxes)
    assert len(first[2].detections) == 0
    with np.load(held.path(tmp_path), allow_pickle=False) as data:  # plain arrays only
        assert json.loads(str(data["meta"]))["items"][1]["kind"] == "finish"
    # a batch the catalog has already (committed before a crash) is not loaded again
    again = held.load(tmp_path, lambda firsts: {f for f in firsts if f[0] == 4}, Finish)
    assert [i.video_id for i in again] == [4, 5, 5]


def test_a_crash_after_committing_held_frames_commits_none_twice(tmp_path, make_video):
    clips = [make_video(f"c{i}.mkv", n_frames=20, fps=10) for i in range(3)]
    db = lensdb.open(str(tmp_path / "s"), create=True)
    assert db.ingest([str(clips[0])], IngestConfig(**IVF)).videos[0].status == "held"
    kept = tmp_path / "held-copy.npz"
    shutil.copy(held.path(db.store.root), kept)
    db.ingest([str(clips[1])], IngestConfig(**IVF))  # trains on 40, commits both
    assert db.info()["frames"] == 40 and not held.exists(db.store.root)
    shutil.copy(kept, held.path(db.store.root))  # as if the run died before removing it
    db.ingest([str(clips[2])], IngestConfig(**IVF))
    info = db.info()
    assert info["frames"] == info["vectors"] == 60 and not held.exists(db.store.root)
    with db.store.catalog.connect() as con:
        per_video = con.execute("SELECT video_id, count(*), count(DISTINCT frame_index) FROM "
                                "frames GROUP BY 1 ORDER BY 1").fetchall()
    assert per_video == [(0, 20, 20), (1, 20, 20), (2, 20, 20)]


def test_held_frames_fix_the_embedder_not_the_codec(tmp_path, make_video):
    db = lensdb.open(str(tmp_path / "s"), create=True)
    db.ingest([str(make_video(n_frames=20))], IngestConfig(**IVF))
    with db.store.writer():
        with pytest.raises(EmbedderMismatchError, match="holds 20 frames of embedder"):
            db.store.bind_space("other@1", 16, None)
        assert db.store.bind_space("fake-embedder@0", 16, "SQ8") == "SQ8"


def test_the_cli_says_what_is_held_and_exits_0(tmp_path, make_video):
    video = make_video(n_frames=20)
    out = subprocess.run([*RUNNER, "ingest", str(video), "--store", str(tmp_path / "s"),
                          "--detector", "fake-detector", "--embedder", "fake-embedder",
                          "--codec", "IVF64,Flat", "--batch-size", "8"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "held for the codec" in out.stderr and "needs 64 frames" in out.stderr
    assert "Traceback" not in out.stderr
    info = subprocess.run([*RUNNER, "info", "--store", str(tmp_path / "s"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(info.stdout)["held_frames"] == 20


def test_a_held_video_ingested_again_leaves_nothing_of_it_held(tmp_path, make_video):
    # its held frames go from the file as soon as it is ingested again (another stride:
    # other frames), so a run that dies after committing cannot let the old ones in later
    video, other = make_video(n_frames=20, fps=10), make_video("b.mkv", n_frames=60, fps=10)
    db = lensdb.open(str(tmp_path / "s"), create=True)
    db.ingest([str(video)], IngestConfig(**IVF))  # 20 of the 32 frames IVF32 needs
    assert held.frames(db.store.root) == 20
    real = Store.commit_batch
    seen: list[int] = []

    def commit_then_die(self, batch, codec):
        real(self, batch, codec)
        seen.append(held.frames(self.root))  # what the file holds once a commit is in
        raise OSError("the disk went away")

    # again at stride 2 (10 frames), with another video (30): enough to train, then it dies
    with mock.patch.object(Store, "commit_batch", commit_then_die), pytest.raises(OSError):
        db.ingest([str(video), str(other)], IngestConfig(**{**IVF, "stride": 2}))
    assert seen == [0]  # the old frames were gone before the first commit
    db.ingest([str(video), str(other)], IngestConfig(**{**IVF, "stride": 2}))  # resumes
    with db.store.catalog.connect() as con:
        indices = [r[0] for r in con.execute(
            "SELECT frame_index FROM frames WHERE video_id = 0 ORDER BY 1").fetchall()]
    assert indices == list(range(0, 20, 2))  # the stride-2 frames, once each, none of stride 1


def test_held_frames_keep_their_codec_when_none_is_asked(tmp_path, make_video):
    db = lensdb.open(str(tmp_path / "s"), create=True)
    db.ingest([str(make_video(n_frames=20))], IngestConfig(**IVF))
    with db.store.writer():
        assert db.store.bind_space("fake-embedder@0", 16, None) == "IVF32,Flat"
    assert db.store.meta()["codec"] == "IVF32,Flat"

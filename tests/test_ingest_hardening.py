"""Issue 10 items 4-9, 15, 17 through the real ingest path, with tiny fake models (fast)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading

import pytest
from ingest_fakes import install

import lensdb
from lensdb.config import IngestConfig
from lensdb.errors import LensDBError, QueryError
from lensdb.events import FramesDone

FAKE = install()


def _store(tmp_path, name="store"):
    return lensdb.open(str(tmp_path / name), create=True)


def _videos(db) -> list[dict]:
    return db.info()["videos"]


# ---- item 4: time from the video's start, the truncation check on the same clock ---------


def test_ts_starting_late_is_stored_from_zero(tmp_path, make_video):
    video = make_video("late.ts", n_frames=20, fps=10,
                       pts_seconds=[10.0 + i / 10 for i in range(20)])
    db = _store(tmp_path)
    db.ingest([str(video)], IngestConfig(batch_size=8, **FAKE))
    with db.store.catalog.connect() as con:
        ts = [r[0] for r in con.execute("SELECT ts FROM frames ORDER BY frame_id").fetchall()]
    assert ts == pytest.approx([i / 10 for i in range(20)])
    assert db.query("time BETWEEN 0s AND 1s", frames=True).table.num_rows == 11
    assert _videos(db)[0]["status"] == "complete"


def _mp4_from(path, n: int, start: float):
    """A faststart MP4 (index first) whose pts begin at `start` seconds."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for i in range(n):
            img = np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int((start + i / 10) * 1000), Fraction(1, 1000)
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


def test_truncation_is_judged_on_the_video_clock(tmp_path, make_video):
    """An MP4 starting at 10 s, cut cleanly after 50 of 100 frames: its last frame (raw pts
    14.9 s) is past the 10 s it announces on the raw clock, but only 4.9 s into the video."""
    import av

    video = _mp4_from(tmp_path / "late.mp4", 100, 10.0)
    with av.open(str(video)) as c:
        cut = sorted(p.pos for p in c.demux(c.streams.video[0]) if p.pos)[50]
    video.write_bytes(video.read_bytes()[:cut])
    whole = make_video("late.mkv", n_frames=30, fps=10,
                       pts_seconds=[10.0 + i / 10 for i in range(30)])
    db = _store(tmp_path)
    report = db.ingest([str(video), str(whole)], IngestConfig(batch_size=16, **FAKE))
    cut_v, whole_v = report.videos
    assert cut_v.status == "partial" and "ended at 4.90s of the 10.00s" in cut_v.message
    assert whole_v.status == "complete", whole_v.message  # MKV's Duration counts from 0


# ---- item 5: a video is its path ----------------------------------------------------------


@pytest.fixture
def two_clips(tmp_path, make_video):
    """a/clip.mkv (red square moving) and b/clip.mkv (a different, longer clip)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_video("a/clip.mkv", n_frames=10, fps=10)
    b = make_video("b/clip.mkv", n_frames=14, fps=10, size=(80, 64))
    db = _store(tmp_path)
    db.ingest([str(a), str(b)], IngestConfig(batch_size=8, detect_every=1, **FAKE))
    return db, a, b


def test_same_file_name_in_two_folders_gets_unique_names(two_clips):
    db, a, b = two_clips
    names = {v["name"]: v["path"] for v in _videos(db)}
    assert names == {"a/clip.mkv": str(a), "b/clip.mkv": str(b)}
    rows = db.query("frames BY video").rows
    assert {r["video"] for r in rows} == {"a/clip.mkv", "b/clip.mkv"}
    assert all(r.get("video_id") is not None for r in rows), rows


def test_video_condition_takes_a_path_or_a_unique_name(two_clips):
    db, a, b = two_clips
    by_name = db.query("video = 'b/clip.mkv'", frames=True).rows
    by_path = db.query(f"video = '{b}'", frames=True).rows
    assert len(by_name) == len(by_path) == 14
    assert {r["video_id"] for r in by_path} == {1}
    assert len(db.query("video != 'a/clip.mkv'", frames=True).rows) == 14
    with pytest.raises(QueryError, match="ambiguous.*a/clip.mkv.*b/clip.mkv"):
        db.query("video = 'clip.mkv'")
    with pytest.raises(QueryError, match="no video named 'nope.mkv'"):
        db.query("video = 'nope.mkv'")
    assert db.query("video LIKE 'nope%'").rows == []


def test_export_draws_the_frames_of_the_right_video(two_clips, tmp_path):
    import cv2

    db, a, b = two_clips
    moments = db.query("video = 'b/clip.mkv'").rows
    report = db.export(moments, tmp_path / "out")
    item = report.items[0]
    assert item["video_id"] == 1 and item["jpeg"], item
    img = cv2.imread(str(tmp_path / "out" / item["jpeg"]))
    assert img.shape[:2] == (64, 80)  # b's frame size, not a's (96x64)
    # a row that names its video only by name resolves it the same way queries do
    from lensdb.export import Moment

    named = db.export([Moment("b/clip.mkv", 0.0, 0.5)], tmp_path / "out2")
    assert named.items[0]["video_id"] == 1
    unsure = db.export([Moment("clip.mkv", 0.0, 0.5)], tmp_path / "out3").items[0]
    assert unsure["jpeg"] is None and "ambiguous" in unsure["note"]


# ---- item 6: codecs that need training over many inputs -----------------------------------


def test_pq_trains_across_several_short_inputs(tmp_path, make_video):
    clips = [make_video(f"c{i}.mkv", n_frames=60, fps=10) for i in range(5)]
    db = _store(tmp_path)
    report = db.ingest([str(c) for c in clips], IngestConfig(codec="PQ16", batch_size=16,
                                                            **FAKE))
    assert [v.status for v in report.videos] == ["complete"] * 5
    info = db.info()
    assert info["frames"] == info["vectors"] == 300 and info["codec"] == "PQ16np"
    # the recorded alias is the same codec: a second run with the same flags is fine
    again = db.ingest([str(clips[0])], IngestConfig(codec="PQ16", **FAKE))
    assert again.videos[0].status == "skipped"


def test_single_too_short_video_says_how_many_frames_the_codec_needs(tmp_path, make_video):
    video = make_video(n_frames=50)
    db = _store(tmp_path)
    report = db.ingest([str(video)], IngestConfig(codec="PQ16", **FAKE))
    v = _videos(db)[0]
    assert report.videos[0].status == v["status"] == "held" and v["frames"] == 0
    assert "needs 256 frames" in v["message"] and "holds 50" in v["message"]
    # nothing was committed, so the codec can still change: the video ingested again with
    # another codec replaces what was held of it (no frame twice)
    report = db.ingest([str(video)], IngestConfig(codec="SQ8", **FAKE))
    assert report.videos[0].status == "complete" and db.info()["frames"] == 50
    assert not (db.store.root / "held.npz").exists()


def test_resume_with_the_codec_alias_after_an_interrupt(tmp_path, make_video):
    video = make_video(n_frames=300, fps=25)
    db = _store(tmp_path)
    stop = threading.Event()
    seen = []

    def progress(event):
        if isinstance(event, FramesDone):
            seen.append(event.n)
            if sum(seen) >= 280:
                stop.set()

    first = db.ingest([str(video)], IngestConfig(codec="PQ16", batch_size=20, **FAKE),
                      progress=progress, stop=stop)
    assert first.videos[0].status == "ingesting"
    assert 256 <= db.info()["frames"] < 300
    second = db.ingest([str(video)], IngestConfig(codec="PQ16", batch_size=20, **FAKE))
    assert second.videos[0].status == "complete"
    assert db.info()["frames"] == 300


# ---- item 8: live sources and changed sampling on a resume --------------------------------


def test_changed_sampling_on_a_resume_is_refused_naming_the_recorded_flags(tmp_path,
                                                                          make_video):
    video = make_video(n_frames=80, fps=10)
    db = _store(tmp_path)
    stop = threading.Event()
    db.ingest([str(video)], IngestConfig(stride=2, batch_size=8, **FAKE),
              progress=lambda e: stop.set() if isinstance(e, FramesDone) else None, stop=stop)
    held = db.info()["frames"]
    report = db.ingest([str(video)], IngestConfig(stride=3, batch_size=8, **FAKE))
    v = report.videos[0]
    assert v.status == "failed" and "stride=2" in v.message and "stride=3" not in v.message
    assert v.ingested_with["stride"] == 2 and v.ingested_with["conf"] == 0.3
    assert db.info()["frames"] == held and _videos(db)[0]["status"] == "ingesting"
    done = db.ingest([str(video)], IngestConfig(stride=2, batch_size=8, **FAKE))
    assert done.videos[0].status == "complete" and db.info()["frames"] == 40


def test_interrupted_live_ingest_is_stopped_with_what_it_holds(tmp_path, make_video,
                                                               monkeypatch):
    import io
    import sys

    video = make_video(n_frames=60, fps=10)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(video.read_bytes())))
    db = _store(tmp_path)
    stop = threading.Event()
    report = db.ingest(["-"], IngestConfig(batch_size=8, **FAKE), stop=stop,
                       progress=lambda e: stop.set() if isinstance(e, FramesDone) else None)
    v = report.videos[0]
    row = _videos(db)[0]
    assert v.status == row["status"] == "stopped"
    assert f"with {row['frames']} frames stored" in row["message"]
    assert "new video" in row["message"]


def test_a_live_row_left_ingesting_by_a_dead_process_becomes_stopped(tmp_path, make_video):
    video = make_video(n_frames=10)
    db = _store(tmp_path)
    db.ingest([str(video)], IngestConfig(**FAKE))
    with db.store.catalog.connect(write=True) as con:  # what kill -9 leaves behind
        con.execute("INSERT INTO videos (video_id, name, path, status, sampling) VALUES "
                    "(7, 'stdin', '-', 'ingesting', '{}'), "
                    "(8, 'x.mkv', '/gone/x.mkv', 'ingesting', '{}')")
    db.ingest([str(video)], IngestConfig(**FAKE))  # any later ingest tidies up
    rows = {v["video_id"]: v for v in _videos(db)}
    assert rows[7]["status"] == "stopped" and "0 frames stored" in rows[7]["message"]
    assert rows[8]["status"] == "ingesting" and "run the same ingest again" in rows[8]["message"]


# ---- item 9: a full disk ------------------------------------------------------------------


def test_disk_full_names_the_device_and_is_recorded_on_the_video(tmp_path, make_video,
                                                                 monkeypatch):
    """ENOSPC at the OS-write level, on the third file the store writes (codec, the first
    video's segment, then the second video's): exit code 4's error, the message on the
    video, and a re-run that finishes exactly."""
    from lensdb.storage import vectors
    from lensdb.video_status import StoreFullError

    a, b = make_video("a.mkv", n_frames=20), make_video("b.mkv", n_frames=30, fps=5)
    db = _store(tmp_path)
    real = vectors.atomic_write_index
    calls = []

    def full_disk(index, path):
        calls.append(path)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(index, path)

    monkeypatch.setattr(vectors, "atomic_write_index", full_disk)
    config = IngestConfig(codec="Flat", batch_size=64, **FAKE)
    with pytest.raises(StoreFullError, match=r"no space left on \S+ \(mounted at .*\) at ") \
            as caught:
        db.ingest([str(a), str(b)], config)
    assert caught.value.exit_code == 4 and str(db.path) in str(caught.value)
    monkeypatch.setattr(vectors, "atomic_write_index", real)
    rows = _videos(db)
    assert rows[0]["status"] == "complete" and rows[0]["frames"] == 20
    assert rows[1]["status"] == "ingesting" and "no space left" in rows[1]["message"]
    assert rows[1]["frames"] == 0
    report = db.ingest([str(a), str(b)], config)
    assert [v.status for v in report.videos] == ["skipped", "complete"]
    assert db.info()["frames"] == db.info()["vectors"] == 50


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root")
def test_disk_full_on_a_real_small_filesystem(tmp_path, make_video):
    import subprocess

    from lensdb.video_status import StoreFullError

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        video = make_video("big.mkv", n_frames=400, fps=25)
        db = lensdb.open(str(mnt / "store"), create=True)
        config = IngestConfig(codec="Flat", batch_size=16, **FAKE)
        with pytest.raises(StoreFullError, match=f"no space left on tmpfs .*at {mnt}"):
            db.ingest([str(video)], config)
        row = _videos(db)[0]
        assert row["status"] == "ingesting" and "no space left on tmpfs" in row["message"]
        ids, _ = db.store.decoded_vectors()  # every listed segment reads back: none torn
        with db.store.catalog.connect() as con:
            frame_ids = [r[0] for r in con.execute("SELECT frame_id FROM frames ORDER BY 1")
                         .fetchall()]
        assert 0 < len(frame_ids) < 400 and list(ids) == frame_ids
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---- item 15: inputs and messages ---------------------------------------------------------


def test_still_images_are_refused_unless_asked_for(tmp_path):
    import cv2
    import numpy as np

    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.full((48, 64, 3), 200, np.uint8))
    db = _store(tmp_path)
    report = db.ingest([str(png)], IngestConfig(**FAKE))
    assert report.videos[0].status == "failed"
    assert "still image" in report.videos[0].message and db.info()["frames"] == 0
    other = tmp_path / "other.jpg"
    cv2.imwrite(str(other), np.full((48, 64, 3), 90, np.uint8))
    report = db.ingest([str(png), str(other), str(png)],  # the same image twice: once
                       IngestConfig(images=True, **FAKE))
    assert [v.status for v in report.videos] == ["complete", "complete", "skipped"]
    assert db.info()["frames"] == 2
    text = tmp_path / "notes.jpg"  # named like an image, holds none
    text.write_text("not a picture\n")
    for images in (False, True):
        report = db.ingest([str(text)], IngestConfig(images=images, **FAKE))
        assert report.videos[0].status == "failed"
        assert "neither a video nor a readable image" in report.videos[0].message
    assert db.info()["frames"] == 2


def test_truncated_moov_is_reported_as_truncated(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), "rgb24")
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    path.write_bytes(path.read_bytes()[:300])  # inside the moov box
    db = _store(tmp_path)
    report = db.ingest([str(path)], IngestConfig(**FAKE))
    assert "is truncated" in report.videos[0].message and "moov" in report.videos[0].message


def test_python_api_errors_name_parameters_not_flags(tmp_path, make_video):
    from lensdb.errors import ParameterError

    db = _store(tmp_path)
    with pytest.raises(ParameterError, match="^detect_every must") as caught:
        db.ingest([str(make_video())], IngestConfig(detect_every=0, **FAKE))
    assert caught.value.cli_message().startswith("--detect-every must")
    for bad in ({"stride": 0}, {"conf": 2.0}, {"fps": -1.0}, {"stride": 5, "fps": 2.0}):
        with pytest.raises(LensDBError) as caught:
            IngestConfig(**bad).validate()
        assert "--" not in str(caught.value)
    with pytest.raises(ParameterError, match="^stride cannot be combined with fps"):
        IngestConfig(stride=5, fps=2.0).validate()
    with pytest.raises(LensDBError) as caught:
        db.query("count(square) > 1", gap=-1)
    assert "--" not in str(caught.value)


# ---- item 17: per-detector default confidence ---------------------------------------------


def test_detector_default_conf_is_used_and_recorded(tmp_path, make_video):
    from lensdb.models.registry import default_conf, list_detectors

    assert list_detectors()["ssd-mobilenet-v2"].default_conf == 0.4
    assert list_detectors()["yolo11n"].default_conf == 0.25
    assert default_conf("some/local/model.pt") == 0.25
    a, b = make_video("a.mkv", n_frames=6), make_video("b.mkv", n_frames=6, fps=5)
    db = _store(tmp_path)
    first = db.ingest([str(a)], IngestConfig(**FAKE))  # conf None: the detector's 0.3
    second = db.ingest([str(b)], IngestConfig(conf=0.55, **FAKE))
    assert first.videos[0].conf == 0.3 and second.videos[0].conf == 0.55
    assert [v["conf"] for v in _videos(db)] == [0.3, 0.55]
    with db.store.catalog.connect() as con:
        recorded = [json.loads(r[0])["conf"] for r in
                    con.execute("SELECT sampling FROM videos ORDER BY video_id").fetchall()]
    assert recorded == [0.3, 0.55]

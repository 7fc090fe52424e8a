"""The frame generator: sampling, timestamps from pts, early stop, bad sources."""

from __future__ import annotations

import threading

import pytest

from lensdb.errors import VideoError
from lensdb.frames import DecodeStatus, Sampler, iter_frames, probe


def test_every_frame_in_order_with_pts_timestamps(make_video):
    path = make_video(n_frames=20, fps=10)
    frames = list(iter_frames(str(path)))
    assert [f.index for f in frames] == list(range(20))
    assert [round(f.pts_seconds, 3) for f in frames] == [round(i / 10, 3) for i in range(20)]
    assert frames[0].rgb.shape == (64, 96, 3)


def test_variable_frame_rate_timestamps_are_exact(make_video):
    times = [0.0, 0.05, 0.3, 0.31, 1.0, 1.5, 1.52, 2.7]
    path = make_video("vfr.mkv", n_frames=len(times), pts_seconds=times)
    got = [round(f.pts_seconds, 3) for f in iter_frames(str(path))]
    assert got == times


def test_stride_keeps_every_nth_frame(make_video):
    path = make_video(n_frames=23)
    frames = list(iter_frames(str(path), Sampler(stride=5)))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20]


def test_fps_sampling_by_time(make_video):
    path = make_video(n_frames=40, fps=10)  # 4 seconds
    frames = list(iter_frames(str(path), Sampler(fps=2)))
    assert [round(f.pts_seconds, 2) for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]


def test_resume_skips_frames_already_committed(make_video):
    path = make_video(n_frames=12)
    frames = list(iter_frames(str(path), start_after_index=7))
    assert [f.index for f in frames] == [8, 9, 10, 11]


def test_consumer_stopping_early_ends_the_decoder_thread(make_video):
    path = make_video(n_frames=200)
    before = threading.active_count()
    gen = iter_frames(str(path), queue_size=4)
    next(gen)
    gen.close()
    assert threading.active_count() == before


def test_bounded_queue_holds_the_decoder_back(make_video):
    path = make_video(n_frames=100)
    status = DecodeStatus()
    gen = iter_frames(str(path), queue_size=4, status=status)
    next(gen)
    threading.Event().wait(0.5)
    assert status.frames_decoded <= 1 + 4 + 2  # one taken, a full queue, one in hand
    gen.close()


def test_probe_reads_stream_parameters(bikes):
    info = probe(str(bikes))
    assert (info.width, info.height) == (640, 272)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 250


def test_missing_and_non_video_sources(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        list(iter_frames(str(tmp_path / "nope.mp4")))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot open"):
        probe(str(text))


def test_config_bounds_are_checked():
    from lensdb.config import IngestConfig
    from lensdb.errors import LensDBError

    for bad in ({"queue_size": 0}, {"batch_size": 10**9}, {"codec_train_size": -1},
                {"fps": float("inf")}, {"detect_every": 0}, {"conf": 1.5}):
        with pytest.raises(LensDBError):
            IngestConfig(**bad).validate()

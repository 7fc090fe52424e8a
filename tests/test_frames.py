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


# ---- time is seconds from the start of the video (issue 10, item 4) ----------------------


def test_mpeg_ts_starting_at_1_4s_gives_0_for_its_first_frame(make_video):
    path = make_video("late.ts", n_frames=12, fps=10,
                      pts_seconds=[1.4 + i / 10 for i in range(12)])
    got = [round(f.pts_seconds, 3) for f in iter_frames(str(path))]
    assert got == [round(i / 10, 3) for i in range(12)]


def test_reader_decodes_again_on_the_same_clock(make_video):
    import numpy as np

    from lensdb.media import FrameReader

    path = make_video("late10.ts", n_frames=20, fps=10,
                      pts_seconds=[10.0 + i / 10 for i in range(20)])
    frames = list(iter_frames(str(path)))
    reader = FrameReader()
    try:
        again = reader.frame_at(str(path), frames[7].pts_seconds)
    finally:
        reader.close()
    diff = np.abs(again.astype(int) - frames[7].rgb.astype(int)).mean()
    assert diff < np.abs(frames[3].rgb.astype(int) - frames[7].rgb.astype(int)).mean() / 4


def _raw_h264(path, n: int, rate: int):
    import av
    import numpy as np

    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_frames_without_pts_are_timed_at_the_real_frame_rate(tmp_path):
    path = _raw_h264(tmp_path / "raw.h264", 20, rate=10)  # an elementary stream: no pts
    info = probe(str(path))
    assert info.fps == pytest.approx(10.0)
    got = [f.pts_seconds for f in iter_frames(str(path))]
    assert got == pytest.approx([i / 10 for i in range(20)])


# ---- --fps resume (issue 10, item 7) ------------------------------------------------------


@pytest.mark.parametrize("fps,step", [(30, 0.001), (12.5, 0.004)])
def test_fps_resume_slot_follows_the_keep_rule(fps, step):
    times = [round(k * step, 6) for k in range(int(6 / step))]  # pts on a fine time base
    full = Sampler(fps=fps)
    kept = [t for i, t in enumerate(times) if full.keep(i, t)]
    assert len(kept) == 6 * fps
    for cut in range(len(kept) - 1):  # resume after every kept frame: the same tail
        resumed = Sampler(fps=fps, after_pts=kept[cut])
        tail = [t for i, t in enumerate(times) if t > kept[cut] and resumed.keep(i, t)]
        assert tail == kept[cut + 1:], (cut, kept[cut])

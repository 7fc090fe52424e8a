"""FFmpeg's own decoding threads: set on purpose, and the frames are the same without them."""

from __future__ import annotations

import av
import numpy as np
import pytest

from lensdb.errors import ParameterError
from lensdb.frames import iter_frames
from lensdb.media import FrameReader, cut_clip

CODECS = [c for c in ("libx264", "mpeg4") if c in av.codecs_available]


@pytest.mark.parametrize("codec", CODECS)
def test_frames_are_identical_with_and_without_threads(make_video, codec):
    path = make_video(f"t-{codec}.mkv", n_frames=40, size=(320, 240), codec=codec)
    runs = {t: list(iter_frames(str(path), threads=t)) for t in (1, 4, 0)}
    one = runs[1]
    assert len(one) == 40
    for threads in (4, 0):
        other = runs[threads]
        assert [f.index for f in other] == [f.index for f in one]
        assert [f.pts_seconds for f in other] == [f.pts_seconds for f in one]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(one, other, strict=True))


def test_the_codec_context_gets_the_thread_settings(make_video, monkeypatch):
    import lensdb.frames as frames

    seen = []
    real = frames.decode_in_threads

    def spy(stream, threads=0):
        real(stream, threads)
        seen.append((str(stream.codec_context.thread_type), stream.codec_context.thread_count))

    monkeypatch.setattr(frames, "decode_in_threads", spy)
    list(iter_frames(str(make_video(n_frames=3)), threads=3))
    assert len(seen) == 1 and "AUTO" in seen[0][0].upper() and seen[0][1] == 3


def test_negative_threads_is_a_parameter_error(make_video):
    with pytest.raises(ParameterError, match="threads"):
        next(iter_frames(str(make_video(n_frames=3)), threads=-1))


def test_seek_and_cut_decode_the_same_frames_in_threads(make_video, tmp_path):
    codec = CODECS[0]
    path = str(make_video("s.mkv", n_frames=30, size=(160, 120), codec=codec))
    one, many = FrameReader(threads=1), FrameReader(threads=4)
    try:
        for ts in (0.0, 1.3, 2.9):
            assert np.array_equal(one.frame_at(path, ts), many.frame_at(path, ts))
    finally:
        one.close()
        many.close()
    assert cut_clip(path, 0.5, 1.5, tmp_path / "a.mp4", threads=1) == \
        cut_clip(path, 0.5, 1.5, tmp_path / "b.mp4", threads=4)

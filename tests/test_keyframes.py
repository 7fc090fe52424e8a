"""Keyframes by demuxing, and decoding that starts at one: the same frames as from the start."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.engine.chunks import plan, with_seek_points
from lensdb.frames import DecodeStatus, iter_frames
from lensdb.keyframes import SeekPoint, keyframe_index


def _frames(path, **kw) -> tuple[list, DecodeStatus]:
    status = DecodeStatus()
    return list(iter_frames(str(path), status=status, **kw)), status


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])  # libx264: B-frames, reordered pts
def test_decoding_from_a_keyframe_gives_the_frames_of_a_full_decode(make_video, codec):
    video = make_video(f"v-{codec}.mkv", n_frames=80, codec=codec, gop=16)
    index = keyframe_index(str(video))
    assert index is not None and index.frames == 80 and index.indices[0] == 0
    point = index.seek_point(50)
    assert point is not None and 0 < point.index <= 50
    full, _ = _frames(video, start_after_index=49)
    sought, status = _frames(video, start_after_index=49, seek=point)
    assert status.started_at == point.index  # it did not decode from the start
    assert [(f.index, f.pts_seconds) for f in sought] == [(f.index, f.pts_seconds) for f in full]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(sought, full, strict=True))


def test_a_seek_point_that_does_not_match_decodes_from_the_start(make_video):
    video = make_video("v.mkv", n_frames=40)
    point = keyframe_index(str(video)).seek_point(30)
    wrong = SeekPoint(point.index, point.pts + 7)  # no frame has that pts
    full, _ = _frames(video, start_after_index=29)
    sought, status = _frames(video, start_after_index=29, seek=wrong)
    assert status.started_at == 0
    assert [f.index for f in sought] == [f.index for f in full] == list(range(30, 40))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(sought, full, strict=True))


def test_later_chunks_start_at_the_keyframe_before_them(make_video):
    video = make_video("v.mkv", n_frames=96)
    chunks = with_seek_points(plan(0, str(video), {"stride": 1, "fps": None}, 10.0, 96, -1,
                                   0, 0.0, chunk_seconds=2.0, batch_size=4, queue_size=8))
    assert len(chunks) > 2 and chunks[0].seek is None
    for c in chunks[1:]:
        assert c.seek is not None and c.start - 12 < c.seek.index <= c.start  # GOP of 12


def test_streams_the_packets_cannot_describe_have_no_index(tmp_path):
    still = tmp_path / "x.txt"
    still.write_text("not a video")
    assert keyframe_index(str(still)) is None

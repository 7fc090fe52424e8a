"""Splits: no test video's frame ever trains; time blocks are contiguous; seeded."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.counting.split import make_split
from lensdb.errors import LensDBError


def _frames(videos: int, per_video: int) -> tuple[np.ndarray, np.ndarray]:
    vids = np.repeat(np.arange(videos), per_video)
    times = np.tile(np.arange(per_video), videos)
    return vids, times


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("videos", [2, 3, 5, 9])
def test_video_split_never_leaks(seed, videos):
    vids, times = _frames(videos, 12)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(vids))  # frames in any order
    vids, times = vids[perm], times[perm]
    s = make_split(vids, times, "video", 0.4, seed=seed)
    assert s.kind == "video"
    train_v, test_v = set(vids[s.train]), set(vids[s.test])
    assert train_v.isdisjoint(test_v)
    assert set(vids[s.fit]).isdisjoint(test_v) and set(vids[s.val]).isdisjoint(test_v)
    assert set(s.test_videos) == test_v and set(s.train_videos) == train_v
    everything = np.sort(np.concatenate([s.fit, s.val, s.test]))
    assert everything.tolist() == list(range(len(vids)))  # a partition
    assert len(np.intersect1d(s.fit, s.val)) == 0


def test_default_is_video_with_two_videos_time_with_one():
    assert make_split(*_frames(2, 10)).kind == "video"
    assert make_split(*_frames(1, 20)).kind == "time"


def test_time_split_blocks_are_contiguous_and_seeded():
    vids, times = _frames(2, 50)
    a = make_split(vids, times, "time", 0.4, seed=3)
    b = make_split(vids, times, "time", 0.4, seed=3)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.fit, b.fit)
    for v in (0, 1):
        test_t = np.sort(times[a.test][vids[a.test] == v])
        # 5 blocks of 10, 3 held out: whole blocks only
        assert len(test_t) == 30
        assert set(test_t // 10) == set((test_t // 10).tolist()) and len(set(test_t // 10)) == 3
        train_t = np.sort(times[a.train][vids[a.train] == v])
        assert set(train_t // 10).isdisjoint(set(test_t // 10))
    others = [make_split(vids, times, "time", 0.4, seed=s).test.tolist() for s in range(6)]
    assert len({tuple(t) for t in others}) > 1


def test_split_errors_are_one_line():
    with pytest.raises(LensDBError, match="no labelled frames"):
        make_split(np.array([]), np.array([]))
    with pytest.raises(LensDBError, match="too few labelled frames"):
        make_split(*_frames(1, 5))
    with pytest.raises(LensDBError, match="at least 2 videos") as err:
        make_split(*_frames(1, 30), "video")
    assert "\n" not in str(err.value)
    with pytest.raises(LensDBError, match="too few labelled frames"):
        make_split(np.arange(12), np.zeros(12), "time")  # one frame per video: no test part

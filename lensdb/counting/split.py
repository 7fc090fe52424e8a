"""Train / validation / test splits of the labelled frames, seeded.

- video: whole videos apart; `train_fraction` of the videos train, the rest test, so no
  frame of a test video ever trains. The default when >= 2 videos carry labels.
- time: each video cut into contiguous blocks in time; a seeded `train_fraction` of each
  video's blocks train, the rest test. For a single camera.

The validation part (early stopping, choice of method) is carved out of the training part
the same way: whole training videos where there are at least two, else time blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensdb.errors import LensDBError

MIN_LABELLED = 10  # labelled frames below which no split is meaningful


@dataclass(frozen=True)
class Split:
    """Positions into the arrays of labelled frames (not frame ids)."""

    kind: str  # "video" or "time"
    fit: np.ndarray  # frames whose labels the models learn from
    val: np.ndarray  # carved from the training part: early stopping, method choice
    test: np.ndarray  # held out: every reported figure
    train_videos: tuple[int, ...]  # videos with frames in fit or val
    test_videos: tuple[int, ...]  # videos with frames in test

    @property
    def train(self) -> np.ndarray:
        """The whole training part (fit + val), sorted."""
        return np.sort(np.concatenate([self.fit, self.val]))


def default_kind(video_ids: np.ndarray) -> str:
    return "video" if len(np.unique(video_ids)) >= 2 else "time"


def make_split(
    video_ids: np.ndarray,
    times: np.ndarray,
    kind: str | None = None,
    train_fraction: float = 0.4,
    val_fraction: float = 0.25,
    seed: int = 0,
    time_blocks: int = 5,
) -> Split:
    """Split labelled frames given each one's video id and time (ts or frame index)."""
    video_ids = np.asarray(video_ids)
    times = np.asarray(times)
    n = len(video_ids)
    if n == 0:
        raise LensDBError("the store has no labelled frames; ingest with a detector first")
    if n < MIN_LABELLED:
        raise LensDBError(
            f"too few labelled frames to split: {n} (need at least {MIN_LABELLED}); "
            "ingest more video or label more often (--detect-every)"
        )
    kind = kind or default_kind(video_ids)
    rng = np.random.default_rng(seed)
    positions = np.arange(n)
    videos = np.unique(video_ids)
    if kind == "video":
        if len(videos) < 2:
            raise LensDBError(
                f"--split video needs labelled frames in at least 2 videos, the store has "
                f"{len(videos)}; use --split time for a single camera"
            )
        train_v, test_v = _choose(rng.permutation(videos), train_fraction)
        train = positions[np.isin(video_ids, train_v)]
        test = positions[np.isin(video_ids, test_v)]
    elif kind == "time":
        train, test = _time_split(positions, video_ids, times, train_fraction, time_blocks, rng)
    else:
        raise LensDBError(f"--split must be video or time, not '{kind}'")

    train_videos = np.unique(video_ids[train])
    if len(train_videos) >= 2:
        fit_v, val_v = _choose(rng.permutation(train_videos), 1.0 - val_fraction)
        fit = train[np.isin(video_ids[train], fit_v)]
        val = train[np.isin(video_ids[train], val_v)]
    else:
        fit, val = _time_split(train, video_ids, times, 1.0 - val_fraction, time_blocks, rng)
    if len(fit) < 2 or len(val) < 1 or len(test) < 1:
        raise LensDBError(
            f"too few labelled frames for a {kind} split: {len(fit)} to fit, {len(val)} to "
            f"validate, {len(test)} to test; ingest more video or label more often"
        )
    return Split(
        kind=kind,
        fit=np.sort(fit),
        val=np.sort(val),
        test=np.sort(test),
        train_videos=tuple(int(v) for v in train_videos),
        test_videos=tuple(int(v) for v in np.unique(video_ids[test])),
    )


def _choose(items: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """First round(fraction * n) items (at least 1, at most n - 1) and the rest."""
    k = int(np.clip(round(fraction * len(items)), 1, len(items) - 1))
    return items[:k], items[k:]


def _time_split(
    positions: np.ndarray,
    video_ids: np.ndarray,
    times: np.ndarray,
    fraction: float,
    blocks: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Per video: contiguous time blocks, a seeded `fraction` of them to the first part."""
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for video in np.unique(video_ids[positions]):
        mine = positions[video_ids[positions] == video]
        mine = mine[np.argsort(times[mine], kind="stable")]
        if len(mine) < 2:
            first.append(mine)
            continue
        parts = np.array_split(mine, min(blocks, len(mine)))
        chosen, _ = _choose(rng.permutation(len(parts)), fraction)
        for i, part in enumerate(parts):
            (first if i in set(chosen.tolist()) else second).append(part)
    empty = np.zeros(0, np.int64)
    return (
        np.concatenate(first) if first else empty,
        np.concatenate(second) if second else empty,
    )


def fill_in_folds(video_ids: np.ndarray, times: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each labelled frame for the fill-in regime: its rank in time within its
    video, mod `folds` (interleaved, so every fold spans the whole footage)."""
    video_ids, times = np.asarray(video_ids), np.asarray(times)
    out = np.zeros(len(video_ids), np.int64)
    for video in np.unique(video_ids):
        mine = np.flatnonzero(video_ids == video)
        ranked = mine[np.argsort(times[mine], kind="stable")]
        out[ranked] = np.arange(len(ranked)) % folds
    return out

"""Cutting videos into chunks and putting their batches back in order (no Ray)."""

from __future__ import annotations

import numpy as np

from lensdb.engine.chunks import ChunkBatch, ChunkDone, Reorder, plan
from lensdb.storage.store import FrameRow

STRIDE = {"stride": 2, "fps": None, "detect_every": 3, "detect_budget": None}


def _plan(sampling=STRIDE, last=-1, kept=0, frames=100):
    return plan(0, "v.mp4", sampling, 10.0, frames, last, kept, -1.0, 1.0, 4, 32)


def test_chunks_cover_the_video_once_on_batch_edges():
    chunks = _plan()
    assert [(c.start, c.end) for c in chunks] == [(0, 16), (16, 32), (32, 48), (48, 64),
                                                  (64, 80), (80, 96), (96, None)]
    assert [c.kept_before for c in chunks] == [0, 8, 16, 24, 32, 40, 48]  # index // stride


def test_resume_skips_committed_chunks_and_starts_after_the_last_index():
    chunks = _plan(last=40, kept=21)
    assert (chunks[0].start, chunks[0].end, chunks[0].kept_before) == (41, 48, 21)
    assert chunks[0].number == 0 and len(chunks) == 5


def test_time_sampling_and_label_budgets_are_one_chunk():
    for extra in ({"fps": 2.0}, {"detect_budget": 0.1}):
        chunks = _plan({**STRIDE, **extra}, last=9, kept=3)
        assert [(c.start, c.end, c.kept_before) for c in chunks] == [(10, None, 3)]


def _batch(number, indices):
    rows = [FrameRow(i, i / 10) for i in indices]
    return ChunkBatch(0, number, rows, np.arange(len(indices), dtype=np.float32)[:, None], {})


def _done(number):
    return ChunkDone(0, number, 0, 0.0, None)


def test_reorder_commits_in_order_and_drops_frames_seen_before():
    r = Reorder(3)
    got = []
    for item in [_batch(1, [4, 5]), _batch(0, [0, 1]), _batch(2, [8]),
                 _batch(0, [0, 1, 2, 3]),  # a redone chunk 0: 0 and 1 came before
                 _done(2), _done(0), _batch(1, [6, 7]), _done(1)]:
        got += [list(r.frame_index for r in b.rows) for b in r.add(item)]
    assert got == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    assert r.finished

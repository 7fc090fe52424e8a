"""Tiered compaction: bytes rewritten grow as n log n on a live stream, not n^2; and the
in-memory index a Store keeps between searches follows its commits."""

from __future__ import annotations

import math

import numpy as np

from lensdb.storage import Batch, FrameRow, Store
from lensdb.storage.compaction import FANOUT, plan_merges, size_tier
from lensdb.storage.vectors import VectorFiles, decode_all

DIM = 8


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _simulate(commits: int, batch: int, every: int, plan) -> float:
    """Vectors rewritten per vector stored, on a stream checked every `every` commits."""
    segs: list[tuple[int, int]] = []
    next_id, rewritten = 0, 0
    for c in range(1, commits + 1):
        segs.append((next_id, batch))
        next_id += 1
        if c % every:
            continue
        while groups := plan(segs):
            for group in groups:
                merged = sum(n for i, n in segs if i in group)
                segs = [(i, n) for i, n in segs if i not in group] + [(next_id, merged)]
                next_id += 1
                rewritten += merged
    return rewritten / (commits * batch)


def _merge_all_beyond_64(segs):  # the first policy, for comparison
    return [[i for i, _ in segs]] if len(segs) > 64 else []


def test_tiers_rewrite_each_vector_about_log_n_times():
    assert [size_tier(n) for n in (1, 7, 8, 63, 64, 512)] == [0, 0, 1, 1, 2, 3]
    short = _simulate(2_000, 32, 64, plan_merges)
    long = _simulate(16_000, 32, 64, plan_merges)
    assert long <= 1 + math.log(16_000 * 32, FANOUT)
    assert long - short <= 1.5  # 8x the data: about one more tier, not 8x the work
    old_short = _simulate(2_000, 32, 64, _merge_all_beyond_64)
    old_long = _simulate(16_000, 32, 64, _merge_all_beyond_64)
    assert old_long / old_short > 6  # the old policy grows linearly per vector
    assert old_long > 10 * long


def _store(tmp_path) -> tuple[Store, object]:
    store = Store.open(tmp_path / "s", create=True)
    with store.writer():
        store.bind_space("fake@1", DIM, "Flat")
        codec = store.codec(_unit(4, 0))
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'v', 'ingesting')")
    return store, codec


def _commit(store, codec, n: int, seed: int):
    rows = [FrameRow(i, i / 10.0) for i in range(n)]
    return store.commit_batch(Batch(0, rows, _unit(n, seed)), codec)


def test_merging_leaves_big_segments_alone_and_keeps_every_vector(tmp_path):
    store, codec = _store(tmp_path)
    with store.writer():
        _commit(store, codec, 600, 1)  # an old, big segment (tier 3)
        big = store.vectors.dir / store.segments()[0][1]
        for s in range(70):  # a live stream of small batches since
            _commit(store, codec, 4, 100 + s)
        before_ids, before = store.decoded_vectors()
        big_bytes = big.read_bytes()
        stats = store.maybe_compact()
    rows = store.segments()
    assert len(rows) == 2 and big.exists() and big.read_bytes() == big_bytes
    assert stats.vectors == 280 and stats.merges == 1  # only the 70 small ones were rewritten
    assert sorted(p.name for p in store.vectors.dir.glob("seg-*")) == sorted(r[1] for r in rows)
    with store.catalog.connect() as con:
        per_seg = dict(con.execute("SELECT segment_id, count(*) FROM frames GROUP BY 1").fetchall())
    assert per_seg == {r[0]: r[2] for r in rows}
    ids, after = decode_all(store.vectors.load([r[1] for r in rows]))
    assert ids.tolist() == before_ids.tolist()
    np.testing.assert_array_equal(after, before)


def test_a_store_keeps_its_index_until_the_commit_counter_moves(tmp_path, monkeypatch):
    store, codec = _store(tmp_path)
    with store.writer():
        for s in range(3):
            _commit(store, codec, 5, s)
    reads: list[str] = []
    original = VectorFiles.read_segment

    def counting(self, name):
        reads.append(name)
        return original(self, name)

    monkeypatch.setattr(VectorFiles, "read_segment", counting)
    first = store.load_index()
    assert first.ntotal == 15 and len(reads) == 3
    assert store.load_index() is first and len(reads) == 3  # cached: no file read again
    with store.writer():
        _commit(store, codec, 5, 9)
    second = store.load_index()
    assert second.ntotal == 20 and len(reads) == 4  # only the new segment was read
    assert first.ntotal == 15  # the index handed out earlier did not change
    assert np.allclose(second.reconstruct(17), _unit(5, 9)[2])
    with store.writer():
        store.compact()
    third = store.load_index()
    assert third is not second and third.ntotal == 20
    assert decode_all(third)[0].tolist() == list(range(20))
    other = Store.open(store.root)  # another Store (another process) has its own
    assert other.load_index() is not third

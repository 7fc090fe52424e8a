"""IVF codecs (real FAISS): the training rule, buffering across inputs, nprobe, and the
memory-mapped kept index giving the same answers as the one read into RAM."""

from __future__ import annotations

import numpy as np
import pytest
from ingest_fakes import install

import lensdb
from lensdb.config import IngestConfig
from lensdb.errors import LensDBError, StoreError
from lensdb.search import DEFAULT_NPROBE, filtered_search, search_result
from lensdb.storage import Batch, FrameRow, Store
from lensdb.storage.codecs import (
    ivf_lists,
    make_codec,
    min_training_points,
    normalise_factory,
    train_codec,
)
from lensdb.storage.index_cache import KeptIndex, SegmentedIndex
from lensdb.storage.vectors import decode_all

FAKE = install()
DIM, CLUSTERS, PER = 32, 16, 60  # a clustered set: 16 tight clusters of 60 unit vectors


def clustered(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM))
    x = np.repeat(centres, PER, axis=0) + 0.35 * rng.normal(size=(CLUSTERS * PER, DIM))
    x = x[rng.permutation(len(x))]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def store_of(tmp_path, factory: str, x: np.ndarray, batches: int = 4) -> Store:
    """A store of `x` in `batches` commits (one segment each), one video."""
    store = Store.open(tmp_path / factory.replace(",", "_"), create=True)
    with store.writer():
        store.bind_space("synthetic@1", x.shape[1], factory)
        codec = store.codec(x)
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'v', "
                        "'complete')")
        for part in np.array_split(np.arange(len(x)), batches):
            rows = [FrameRow(int(i), float(i)) for i in part]
            store.commit_batch(Batch(0, rows, x[part]), codec)
    return store


def test_the_training_rule_counts_one_vector_per_list():
    assert ivf_lists("IVF1024,PQ64") == 1024 and ivf_lists("OPQ16,IVF256,PQ16") == 256
    assert ivf_lists("PQ64np") is None and ivf_lists("SQ8") is None
    assert min_training_points("IVF4096,PQ64") == 4096
    assert min_training_points("IVF1024,RaBitQ") == 1024
    assert min_training_points("IVF16,PQ8") == 256  # the PQ's own need is larger
    assert min_training_points("IVF256,Flat") == 256
    assert min_training_points("PQ16np") == 256 and min_training_points("Flat") == 0
    # an IVF codec's PQ never gets FAISS's slow polysemous training; plain PQ spellings
    # (what older stores recorded) stay as they were
    assert normalise_factory("IVF4096,PQ64") == "IVF4096,PQ64np"
    assert normalise_factory("IVF512, PQ32x4") == "IVF512,PQ32x4np"
    assert normalise_factory("PQ8") == "PQ8"


def test_too_few_vectors_for_the_lists_says_how_many():
    with pytest.raises(StoreError, match=r"at least 64 vectors to train \(one per inverted "
                                         r"list of 64\), only 20"):
        train_codec(make_codec("IVF64,Flat", DIM), "IVF64,Flat", clustered()[:20])


def test_an_unmergeable_codec_is_refused_up_front():
    with pytest.raises(StoreError, match="cannot merge its segments"):
        make_codec("IVF16,PQ8,RFlat", DIM)


def test_ivf_keeps_buffering_across_inputs_until_it_can_train(tmp_path, make_video):
    # 32 lists need 32 vectors; each clip keeps 20 frames and the config asks to train on
    # 16 already: the writer keeps buffering past that until both clips are in
    clips = [make_video(f"c{i}.mkv", n_frames=20, fps=10) for i in range(2)]
    db = lensdb.open(str(tmp_path / "two"), create=True)
    cfg = IngestConfig(codec="IVF32,Flat", batch_size=8, codec_train_size=16, **FAKE)
    report = db.ingest([str(c) for c in clips], cfg)
    assert [v.status for v in report.videos] == ["complete", "complete"]
    info = db.info()
    assert info["frames"] == info["vectors"] == 40 and info["codec"] == "IVF32,Flat"
    # one clip per run: the first run keeps its 20 frames for the codec, the second adds
    # its own and trains on all 40
    one = lensdb.open(str(tmp_path / "one"), create=True)
    first = one.ingest([str(clips[0])], cfg)
    assert first.videos[0].status == "held" and "needs 32 frames" in first.videos[0].message
    assert "holds 20" in first.videos[0].message and one.info()["frames"] == 0
    second = one.ingest([str(clips[1])], cfg)
    assert [v.status for v in second.videos] == ["complete"]
    info = one.info()
    assert info["frames"] == info["vectors"] == 40
    assert [v["status"] for v in info["videos"]] == ["complete", "complete"]


def test_ivf_segments_merge_and_read_back_by_frame_id(tmp_path):
    # IVF,Flat is lossless: after merging segments every frame id keeps its own vector
    x = clustered()
    store = store_of(tmp_path, "IVF16,Flat", x)
    with store.writer():
        store.compact()
    assert len(store.segments()) == 1
    ids, vecs = store.decoded_vectors()
    assert ids.tolist() == list(range(len(x))) and np.allclose(vecs, x, atol=1e-6)
    seg = store.vectors.read_segment(store.segments()[0][1])  # what predictors read
    assert np.allclose(seg.reconstruct(700), x[700], atol=1e-6)
    index = store.load_index()
    assert [i for i, _ in filtered_search(index, x[[123]], 1, None, nprobe=16)] == [123]


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def test_nprobe_trades_recall_and_all_lists_is_exhaustive(tmp_path):
    x = clustered()
    store = store_of(tmp_path, "IVF16,Flat", x)
    index = store.load_index()
    queries = x[:40] + 0.2 * np.random.default_rng(1).normal(size=(40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [np.argsort(((x - q) ** 2).sum(1))[:10].tolist() for q in queries]

    def top(nprobe):
        return [[i for i, _ in filtered_search(index, q[None], 10, None, nprobe=nprobe)]
                for q in queries]

    r1, r16 = _recall(top(1), truth), _recall(top(16), truth)
    assert r16 == 1.0  # IVF,Flat over every list is the exact search
    assert r1 < 0.95 < r16  # one list of 16 misses neighbours across cluster borders
    # a filter (IDSelector inside the IVF search) honours nprobe too
    allowed = np.arange(0, len(x), 2)
    exact = [i for i, _ in filtered_search(index, queries[0][None], 10, allowed, nprobe=16)]
    assert all(i % 2 == 0 for i in exact) and len(exact) == 10

    result = search_result(store, like=5, k=10, nprobe=3)
    assert (result.nlist, result.nprobe, result.codec) == (16, 3, "IVF16,Flat")
    assert result.hits[0].frame_id == 5
    assert search_result(store, like=5).nprobe == min(DEFAULT_NPROBE, 16)
    assert search_result(store, like=5, nprobe=10_000).nprobe == 16  # capped at the lists
    with pytest.raises(LensDBError, match="nprobe must be between 1"):
        search_result(store, like=5, nprobe=0)


def test_nprobe_on_a_codec_without_lists_is_not_applicable(tmp_path):
    store = store_of(tmp_path, "SQ8", clustered(), batches=2)
    result = search_result(store, like=3, k=5, nprobe=4)
    assert result.nprobe is None and result.nlist is None and len(result.hits) == 5
    with pytest.raises(LensDBError, match="nprobe"):
        search_result(store, like=3, nprobe=-2)


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,PQ8x4", "SQ8", "IVF16,RaBitQ"])
def test_mapped_index_answers_like_the_one_in_ram(tmp_path, factory):
    x = clustered()
    store = store_of(tmp_path, factory, x)
    files = [f for _, f, _ in store.segments()]
    counter = store.segments()[-1][0]
    mapped = KeptIndex(store.vectors, mmap=True, mmap_min_bytes=1).get(counter, files)
    in_ram = KeptIndex(store.vectors, mmap=False, mmap_min_bytes=1).get(counter, files)
    merged = store.load_index()  # small segments: one IndexIDMap2 in RAM, as before
    assert isinstance(mapped, SegmentedIndex) and len(mapped.parts) == 4
    assert not isinstance(merged, SegmentedIndex)
    q = x[:25]
    for nprobe in (1, 4, 16):
        d1, i1 = mapped.search(q, 10, params=_ivf_params(mapped, nprobe))
        d2, i2 = in_ram.search(q, 10, params=_ivf_params(in_ram, nprobe))
        assert np.array_equal(i1, i2) and np.array_equal(d1, d2)
        d3, i3 = merged.search(q, 10, params=_ivf_params(merged, nprobe))
        assert np.allclose(np.sort(d1, 1), np.sort(d3, 1), atol=1e-5)  # same neighbours
    for a, b in zip(decode_all(mapped), decode_all(merged)):
        assert np.array_equal(a, b)
    assert np.array_equal(mapped.reconstruct(17), merged.reconstruct(17))
    allowed = np.arange(0, len(x), 3)
    assert filtered_search(mapped, q[:1], 5, allowed, nprobe=16) == \
        filtered_search(in_ram, q[:1], 5, allowed, nprobe=16)


def _ivf_params(index, nprobe):
    from lensdb.search import _params

    return _params(index, nprobe)


def test_kept_index_reuses_mapped_segments_and_appends_small_ones(tmp_path):
    x = clustered()
    store = store_of(tmp_path, "IVF16,Flat", x[:600], batches=1)
    big = store.segments()[0][1]
    kept = KeptIndex(store.vectors, mmap=True, mmap_min_bytes=store.vectors.file_size(big))
    first = kept.get(store.segments()[-1][0], [big])
    with store.writer():
        codec = store.codec()
        for lo in (600, 650):
            rows = [FrameRow(i, float(i)) for i in range(lo, lo + 50)]
            store.commit_batch(Batch(0, rows, x[lo:lo + 50]), codec)
    files = [f for _, f, _ in store.segments()]
    second = kept.get(store.segments()[-1][0], files)
    assert isinstance(second, SegmentedIndex) and second.parts[0] is first.parts[0]
    assert second.ntotal == 700 and first.ntotal == 600  # handed-out index unchanged
    assert decode_all(second)[0].tolist() == list(range(700))
    assert np.allclose(second.reconstruct(660), x[660], atol=1e-6)


def test_ivf_codecs_gather_about_32_vectors_a_list_before_training():
    from lensdb.storage.codecs import IVF_GATHER_CAP, training_points

    assert training_points("Flat", 1024) == 1
    assert training_points("SQ8", 1024) == 256
    assert training_points("IVF1024,PQ64np", 1024) == 32 * 1024  # not 1 a list
    assert training_points("IVF4096,PQ64np", 1024) == IVF_GATHER_CAP

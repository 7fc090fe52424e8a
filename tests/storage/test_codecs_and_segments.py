"""Codecs (real FAISS) and the segment files: training, decoding, orphans, compaction."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.errors import StoreError
from lensdb.storage import Batch, FrameRow, Store, list_codecs
from lensdb.storage.codecs import make_codec, resolve_factory, train_codec
from lensdb.storage.vectors import roundtrip


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=d)
    x = base + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("name, nbytes", [("Flat", 512), ("fp16", 256), ("SQ8", 128),
                                          ("SQ4", 64), ("PCA64,SQ8", 64), ("PQ16", 16)])
def test_registered_codecs_have_their_size(name, nbytes):
    assert name in list_codecs()
    assert make_codec(resolve_factory(name), 128).sa_code_size() == nbytes


def test_pca_decode_keeps_the_mean():
    # FAISS's PCA reverse transform drops the mean; roundtrip adds it back.
    x = _unit(600, 128)
    codec = train_codec(make_codec("PCA16,SQ8", 128), "PCA16,SQ8", x)
    back = roundtrip(codec, x)
    cos = np.sum(back * x, axis=1) / np.linalg.norm(back, axis=1)
    assert cos.min() > 0.8


def test_opq_trains_in_a_child_process():
    x = _unit(600, 64)
    codec = train_codec(make_codec("OPQ8,PQ8np", 64), "OPQ8,PQ8np", x)
    assert codec.is_trained and codec.sa_code_size() == 8
    assert roundtrip(codec, x[:5]).shape == (5, 64)


def test_too_few_vectors_and_bad_factories_are_clear_errors():
    with pytest.raises(StoreError, match="at least 256 vectors"):
        train_codec(make_codec("PQ16np", 64), "PQ16np", _unit(50, 64))
    with pytest.raises(StoreError, match="not a valid FAISS factory"):
        make_codec("NoSuchCodec12", 64)


def _store_with_segments(tmp_path, batches: int = 3) -> tuple[Store, np.ndarray]:
    store = Store.open(tmp_path / "s", create=True)
    x = _unit(10 * batches, 32)
    with store.writer():
        store.bind_space("fake@1", 32, "SQ8")
        codec = store.codec(x)
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'v', 'ingesting')")
        for b in range(batches):
            rows = [FrameRow(i, i / 10) for i in range(b * 10, b * 10 + 10)]
            store.commit_batch(Batch(0, rows, x[b * 10 : b * 10 + 10]), codec)
    return store, x


def test_unlisted_segment_files_are_removed_by_the_next_writer(tmp_path):
    store, x = _store_with_segments(tmp_path)
    orphan = store.vectors.dir / "seg-000000000099-deadbeef.faiss"
    orphan.write_bytes((store.vectors.dir / next(
        p.name for p in store.vectors.dir.iterdir() if p.name.startswith("seg-"))).read_bytes())
    (store.vectors.dir / ".seg-x.faiss.1234.tmp").write_bytes(b"partial")
    with store.writer():
        pass
    assert not orphan.exists()
    assert not list(store.vectors.dir.glob("*.tmp"))
    ids, vecs = store.decoded_vectors()
    assert ids.tolist() == list(range(30))


def test_compaction_merges_segments_without_changing_vectors(tmp_path):
    store, x = _store_with_segments(tmp_path, batches=4)
    ids_before, before = store.decoded_vectors()
    with store.writer():
        store.compact()
    with store.catalog.connect() as con:
        assert con.execute("SELECT count(*) FROM segments").fetchone()[0] == 1
    assert len(list(store.vectors.dir.glob("seg-*"))) == 1
    ids_after, after = store.decoded_vectors()
    assert ids_after.tolist() == ids_before.tolist()
    np.testing.assert_array_equal(after, before)


def test_a_second_writer_is_refused(tmp_path):
    store, _ = _store_with_segments(tmp_path, batches=1)
    with store.writer():
        with pytest.raises(StoreError, match="another process is writing"):
            with Store.open(store.root).writer():
                pass


def test_mixing_vector_spaces_is_refused(tmp_path):
    from lensdb.errors import EmbedderMismatchError

    store, _ = _store_with_segments(tmp_path, batches=1)
    with pytest.raises(EmbedderMismatchError, match="holds vectors of embedder 'fake@1'"):
        store.bind_space("other@2", 32, None)
    with pytest.raises(StoreError, match="uses codec 'SQ8'"):
        store.bind_space("fake@1", 32, "Flat")


def test_a_store_with_no_vectors_can_still_choose_its_space(tmp_path):
    store = Store.open(tmp_path / "s", create=True)
    with store.writer():
        store.bind_space("first@1", 32, "PQ16")  # e.g. an ingest whose only video failed
        assert store.bind_space("second@2", 64, "SQ8") == "SQ8"
    assert store.meta()["embedder_id"] == "second@2" and store.meta()["dim"] == "64"


def test_a_damaged_segment_is_a_store_error_naming_the_file(tmp_path):
    store, _ = _store_with_segments(tmp_path, batches=1)
    seg = next(store.vectors.dir.glob("seg-*.faiss"))
    seg.write_bytes(seg.read_bytes()[:200])  # truncated, as a disk that filled up leaves it
    with pytest.raises(StoreError, match=f"vector file {seg.name} of the store is damaged"):
        store.decoded_vectors()

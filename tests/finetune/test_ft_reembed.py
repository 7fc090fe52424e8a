"""`reembed`: a store's vectors rebuilt with another embedder, labels kept, crash-safe."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "counting"))
from fake_models import build_scene_store, catalog_checksum  # noqa: E402

import lensdb.finetune.reembed as rb  # noqa: E402
from lensdb.errors import LensDBError  # noqa: E402
from lensdb.storage import Store  # noqa: E402


def _labels(store: Store) -> list[tuple]:
    with store.catalog.connect() as con:
        return con.execute("SELECT f.frame_id, f.frame_index, f.labelled, c.class, c.n FROM "
                           "frames f LEFT JOIN counts c USING (frame_id) ORDER BY 1, 4"
                           ).fetchall()


@pytest.fixture
def scene_store(tmp_path) -> Store:
    return Store.open(build_scene_store(tmp_path / "s", detect_every=10, train=True))


@pytest.mark.slow
def test_reembed_switches_the_space_and_keeps_labels(scene_store, monkeypatch):
    before, meta = _labels(scene_store), scene_store.meta()
    ids_before = sorted(scene_store.decoded_vectors()[0].tolist())
    calls = {"n": 0}
    real = rb._commit_vectors

    def crash_on_second(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # a kill in the middle of the work
        return real(*args)

    monkeypatch.setattr(rb, "_commit_vectors", crash_on_second)
    monkeypatch.setattr(rb, "CODEC_SAMPLE", 1)  # commit batch by batch
    with pytest.raises(KeyboardInterrupt):
        rb.reembed(scene_store.root, "clip:lensdb-tiny", batch_size=64)
    # nothing of the store changed; the work folder is there to resume
    assert Store.open(scene_store.root).meta() == meta and _labels(scene_store) == before
    work = scene_store.root.with_name(f".{scene_store.root.name}.reembed")
    assert (work / rb.STATE).exists()
    # the same random-init model cannot be named twice (a new id at every load), so the
    # resumed run must use a file: save the tiny model and reembed with it
    import open_clip
    import torch

    import lensdb.finetune.tiny  # noqa: F401

    ckpt = scene_store.root.parent / "tiny.pt"
    torch.save({"state_dict": open_clip.create_model("lensdb-tiny").state_dict()}, ckpt)
    monkeypatch.setattr(rb, "_commit_vectors", real)
    spec = f"clip:lensdb-tiny:{ckpt}"
    calls["n"] = 0
    monkeypatch.setattr(rb, "_commit_vectors", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        rb.reembed(scene_store.root, spec, batch_size=64)
    monkeypatch.setattr(rb, "_commit_vectors", real)
    result = rb.reembed(scene_store.root, spec, batch_size=64)
    assert result["resumed"] and result["retrained"] == ["person"]
    assert 0 < result["embedded_now"] < result["frames"] == len(ids_before)
    store = Store.open(scene_store.root)
    new_meta = store.meta()
    assert new_meta["embedder_id"].startswith("clip:lensdb-tiny@") and new_meta["dim"] == "64"
    assert new_meta["embedder_spec"] == f"clip:lensdb-tiny:{ckpt.resolve()}"
    assert _labels(store) == before
    ids, vecs = store.decoded_vectors()
    assert sorted(ids.tolist()) == ids_before and vecs.shape[1] == 64
    with store.catalog.connect() as con:
        active = con.execute("SELECT embedder_id FROM count_models WHERE active").fetchall()
    assert active == [(new_meta["embedder_id"],)]
    assert not work.exists()
    again = rb.reembed(scene_store.root, spec)
    assert "already holds" in again["note"]


def test_reembed_refuses_a_missing_video(scene_store):
    checksum = catalog_checksum(scene_store.root)
    (scene_store.root.parent / "scenes.mp4").unlink()
    with pytest.raises(LensDBError, match="is gone"):
        rb.reembed(scene_store.root, "clip:lensdb-tiny")
    assert catalog_checksum(scene_store.root) == checksum
    from typer.testing import CliRunner

    from lensdb.cli.app import app

    r = CliRunner().invoke(app, ["reembed", "--store", str(scene_store.root), "--embedder",
                                 "clip:lensdb-tiny"])
    assert isinstance(r.exception, LensDBError) and "is gone" in str(r.exception)
    assert catalog_checksum(scene_store.root) == checksum
    with pytest.raises(LensDBError, match="no text side|unknown embedder"):
        rb.reembed(scene_store.root, "nope")

"""`lensdb.search`: image and text search, filters that never starve k, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lensdb
from lensdb.errors import EmbedderMismatchError, LensDBError, QueryError
from lensdb.search import filtered_search, search

N, FPS, FAR_FROM = 60, 10, 50  # frames 50..59 (5.0s..5.9s) look nothing like the others


def _scene(i: int) -> np.ndarray:
    """Frames 0..49: a grey gradient with a small moving square; 50..59: coloured noise."""
    if i >= FAR_FROM:
        rng = np.random.default_rng(i)
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        img[:, :, i % 3] = 255
        return img
    img = np.tile(np.linspace(60, 200, 128, dtype=np.uint8)[None, :, None], (96, 1, 3))
    x = (i * 2) % 100
    img[40:56, x : x + 16] = (200, 60, 60)
    return img


def _encode(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(N):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_scene(i), format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    video = _encode(root / "scenes.mp4")
    db = lensdb.open(str(root / "store"), create=True)
    db.ingest([str(video)], detector="ssd-mobilenet-v2", embedder="mobilenet-v2",
              codec="Flat", batch_size=16, codec_train_size=16)
    return db.store


def test_image_search_finds_the_frame_itself(store):
    hits = search(store, image=_scene(10), k=5)
    assert len(hits) == 5
    assert hits[0].frame_index == 10 and hits[0].score > 0.98
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.ts < FAR_FROM / FPS for h in hits)  # the noise frames are far away
    d = hits[0].to_dict()
    assert set(d) >= {"frame_id", "video", "ts", "score", "counts"}
    assert d["video"] == "scenes.mp4"


def test_narrow_where_far_from_the_query_still_returns_k(store):
    """10 frames match, all far from the query: a post-filtered top-k would find none."""
    everything = search(store, image=_scene(10), k=N)
    ranks = {h.frame_id: r for r, h in enumerate(everything)}
    hits = search(store, image=_scene(10), k=5, where="time >= 5s")
    assert len(hits) == 5
    assert all(h.ts >= 5.0 for h in hits)
    assert all(ranks[h.frame_id] >= FAR_FROM for h in hits)  # none in a plain top-50
    # exactly the 5 nearest among the matching frames
    matching = [h for h in everything if h.ts >= 5.0]
    assert [h.frame_id for h in hits] == [h.frame_id for h in matching[:5]]
    assert len(search(store, image=_scene(10), k=20, where="time >= 5s")) == N - FAR_FROM


def test_over_fetch_fallback_agrees_with_the_selector(store):
    index = store.load_index()
    ids = np.arange(FAR_FROM, N, dtype=np.int64)  # frame ids follow frame order here
    q = index.reconstruct(3)[None, :]
    with_sel = filtered_search(index, q, 4, ids, use_selector=True)
    fallback = filtered_search(index, q, 4, ids, use_selector=False)
    assert [i for i, _ in with_sel] == [i for i, _ in fallback]
    assert len(with_sel) == 4 and all(i >= FAR_FROM for i, _ in with_sel)


def test_like_a_stored_frame_and_video_filter(store):
    hits = search(store, like=7, k=3, video="scenes.mp4")
    assert hits[0].frame_id == 7 and len(hits) == 3
    with pytest.raises(LensDBError, match="no video named"):
        search(store, like=7, video="nope.mp4")
    assert search(store, like=7, k=3, where="time > 100s") == []


def test_text_on_an_image_only_embedder_says_so(store):
    with pytest.raises(LensDBError, match="no text side"):
        search(store, text="a red square")


def test_bad_arguments(store):
    with pytest.raises(LensDBError, match="exactly one"):
        search(store, text="x", like=3)
    with pytest.raises(LensDBError, match="k must be"):
        search(store, like=1, k=0)
    with pytest.raises(QueryError):
        search(store, like=1, where="count(car")
    with pytest.raises(LensDBError, match="no such image"):
        search(store, image="/nonexistent/x.jpg")


def test_cli_search_json(store, tmp_path):
    from lensdb.cli.app import app

    image = tmp_path / "q.png"
    import cv2

    cv2.imwrite(str(image), _scene(20)[..., ::-1])
    result = CliRunner().invoke(app, ["search", "--image", str(image), "-k", "3", "--where",
                                      "time >= 5s", "--store", str(store.root), "--json",
                                      "--thumbs", str(tmp_path / "thumbs")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["hits"]) == 3 and all(h["ts"] >= 5 for h in data["hits"])
    assert (tmp_path / "thumbs" / "index.html").exists()
    result = CliRunner().invoke(app, ["search", "a cat", "--store", str(store.root)])
    assert result.exit_code != 0


@pytest.mark.slow
def test_text_search_through_clip(tmp_path_factory, make_video):
    """Random-weight CLIP (ViT-S-32, small and quick) from a local checkpoint: the real
    open_clip text path."""
    import open_clip
    import torch

    root = tmp_path_factory.mktemp("clip-search")
    ckpt = root / "vit-s-32-random.pt"
    torch.save(open_clip.create_model_and_transforms("ViT-S-32", pretrained=None)[0]
               .state_dict(), ckpt)
    spec = f"clip:ViT-S-32:{ckpt}"
    db = lensdb.open(str(root / "store"), create=True)
    db.ingest([str(make_video("c.mkv", n_frames=12))], detector="ssd-mobilenet-v2",
              embedder=spec, codec="Flat", batch_size=12)
    # the store records the embedder spec it was built with: search loads the same weights
    hits = search(db.store, text="a red square", k=5)
    # another checkpoint of the same architecture is another vector space, and is refused
    other = root / "other.pt"
    torch.save(open_clip.create_model_and_transforms("ViT-S-32", pretrained=None)[0]
               .state_dict(), other)
    with pytest.raises(EmbedderMismatchError, match="pass --embedder"):
        search(db.store, text="a red square", k=5, embedder=f"clip:ViT-S-32:{other}")
    assert len(hits) == 5 and all(-1.0 <= h.score <= 1.0 for h in hits)
    narrow = search(db.store, text="a red square", k=3, where="time > 0.85s", embedder=spec)
    assert sorted(round(h.ts, 1) for h in narrow) == [0.9, 1.0, 1.1]


def test_searches_on_one_store_reuse_its_index_until_a_commit(store, monkeypatch):
    from lensdb.storage.store import Store
    from lensdb.storage.vectors import VectorFiles

    reads: list[str] = []
    original = VectorFiles.read_segment
    monkeypatch.setattr(VectorFiles, "read_segment",
                        lambda self, name: reads.append(name) or original(self, name))
    kept = Store.open(store.root)  # what a long-lived caller (the service) holds
    first = search(kept, like=7, k=3)
    n = len(reads)
    assert n >= 1
    assert search(kept, like=7, k=3) == first and search(kept, like=20, k=3)
    assert len(reads) == n  # no segment read again: the index was kept
    assert search(Store.open(store.root), like=7, k=3) == first  # a new Store loads its own
    assert len(reads) == 2 * n

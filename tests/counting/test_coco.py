"""The COCO path: a tiny COCO file made here over real frames, pretrain then fine-tune."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lensdb.counting import TrainConfig, train_counters
from lensdb.counting.coco import cache_path, read_coco
from lensdb.errors import EmbedderMismatchError, LensDBError
from lensdb.models.base import l2_normalise
from lensdb.storage import Batch, FrameRow, Store


class TinyEmbedder:
    """Fallback when the mobilenet-v2 weights are not on this machine: 8x8 colour thumbnails.

    TODO: drop once the test machines always carry the ssd-mobilenet-v2 weights.
    """

    name = "tiny-thumbs"
    model_id = "tiny-thumbs@0"
    dim = 192
    has_text = False

    def embed_images(self, images):
        thumbs = [cv2.resize(im, (8, 8), interpolation=cv2.INTER_AREA) for im in images]
        return l2_normalise(np.stack(thumbs).reshape(len(images), -1).astype(np.float32) - 110)

    def embed_text(self, texts):
        raise LensDBError("no text side")


class Counting:
    """Wraps an embedder and counts the images it embeds."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.model_id, self.dim, self.has_text = (
            inner.name, inner.model_id, inner.dim, inner.has_text)

    def embed_images(self, images):
        self.calls += len(images)
        return self.inner.embed_images(images)


@pytest.fixture(scope="module")
def embedder():
    try:
        from lensdb.models.npm_assets import ssd_present
        from lensdb.models.ssd_mobilenet import MobileNetV2Embedder

        if ssd_present():
            return MobileNetV2Embedder()
    except ImportError:
        pass
    return TinyEmbedder()


def street(people: int, cars: int, rng: np.random.Generator) -> np.ndarray:
    """A street-like RGB frame: sky, road, dark upright 'people', wide red 'cars'."""
    img = np.zeros((120, 160, 3), np.uint8)
    img[:50] = (150, 190, 230)
    img[50:] = (90, 90, 95)
    img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    for _ in range(people):
        x, y = rng.integers(5, 150), rng.integers(45, 80)
        cv2.rectangle(img, (int(x), int(y)), (int(x) + 6, int(y) + 28), (30, 25, 20), -1)
        cv2.circle(img, (int(x) + 3, int(y) - 3), 4, (200, 160, 130), -1)
    for _ in range(cars):
        x, y = rng.integers(0, 120), rng.integers(80, 105)
        cv2.rectangle(img, (int(x), int(y)), (int(x) + 38, int(y) + 14), (200, 30, 30), -1)
    return img


def _dets(people: int, cars: int):
    from lensdb.types import Detections

    n = people + cars
    return Detections(np.zeros((n, 4), np.float32), np.full(n, 0.9, np.float32),
                      ("person",) * people + ("car",) * cars)


def make_real_store(root, embedder) -> Store:
    rng = np.random.default_rng(0)
    store = Store.open(root, create=True)
    with store.writer():
        store.bind_space(embedder.model_id, embedder.dim, "SQ8")
        codec = None
        for vid in range(2):
            with store.catalog.connect(write=True) as con:
                con.execute("INSERT INTO videos (video_id, name) VALUES (?, ?)", [vid, f"v{vid}"])
            people = np.clip(np.rint(3 + 3 * np.sin(np.arange(20) / 5 + vid)), 0, 8).astype(int)
            cars = (np.arange(20) // 7 + vid) % 3
            images = [street(p, c, rng) for p, c in zip(people, cars, strict=True)]
            x = embedder.embed_images(images)
            codec = codec or store.codec(x)
            frames = [FrameRow(i, i / 10, _dets(people[i], cars[i])) for i in range(20)]
            store.commit_batch(Batch(vid, frames, x), codec)
    return store


def write_coco(folder, n: int = 12) -> tuple:
    rng = np.random.default_rng(5)
    images, annotations = [], []
    (folder / "images").mkdir(parents=True)
    for i in range(n):
        people, cars = int(rng.integers(0, 7)), int(rng.integers(0, 3))
        name = f"{i:012d}.jpg"
        cv2.imwrite(str(folder / "images" / name), street(people, cars, rng)[:, :, ::-1])
        images.append({"id": 100 + i, "file_name": name, "width": 160, "height": 120})
        for cat, k in ((1, people), (3, cars), (2, 1)):
            annotations += [{"id": len(annotations), "image_id": 100 + i, "category_id": cat,
                             "bbox": [0, 0, 5, 5], "iscrowd": 0} for _ in range(k)]
    annotations.append({"id": 999, "image_id": 100, "category_id": 1, "iscrowd": 1})
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path, folder / "images"


def test_read_coco_counts_person_and_car(tmp_path):
    path, _ = write_coco(tmp_path)
    coco = read_coco(path)
    assert len(coco.file_names) == 12
    raw = json.loads(path.read_text())
    first = [a for a in raw["annotations"] if a["image_id"] == 100 and not a["iscrowd"]]
    assert coco.counts["person"][0] == sum(a["category_id"] == 1 for a in first)
    assert coco.counts["car"][0] == sum(a["category_id"] == 3 for a in first)


@pytest.mark.parametrize("content", ["not json at all", "[1, 2]", '{"images": []}',
                                     '{"images": [{"id": 1}], "annotations": []}',
                                     '{"info": {}, "licenses": []}'])
def test_a_file_that_is_not_coco_is_one_line_error(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(LensDBError, match="not a COCO instances file") as err:
        read_coco(bad)
    assert "\n" not in str(err.value)


def test_pretrain_then_finetune_with_cache(tmp_path, embedder, fast):
    store = make_real_store(tmp_path / "store", embedder)
    path, images = write_coco(tmp_path / "coco")
    counting = Counting(embedder)
    config = TrainConfig(method="mlp", coco_annotations=path, coco_images=images, **fast)
    report = train_counters(store, config, embedder=counting)
    assert report.coco == {"images": 12, "cached": False, "pretrained": ["car", "person"]}
    assert counting.calls == 12
    assert all(c.pretrained and c.method == "mlp" for c in report.classes.values())
    assert cache_path(store, embedder.model_id, path).exists()
    again = train_counters(store, config, embedder=counting)
    assert again.coco["cached"] is True and counting.calls == 12  # not embedded again
    with store.catalog.connect() as con:
        n = con.execute("SELECT count(*) FROM predictions WHERE class = 'person'").fetchone()[0]
    assert n == 40


def test_coco_refuses_another_embedder(tmp_path, embedder, fast):
    store = make_real_store(tmp_path / "store", embedder)
    path, images = write_coco(tmp_path / "coco", n=4)
    other = TinyEmbedder()
    other.model_id = "someone-else@1"
    with pytest.raises(EmbedderMismatchError, match="someone-else@1"):
        train_counters(store, TrainConfig(coco_annotations=path, coco_images=images, **fast),
                       embedder=other)

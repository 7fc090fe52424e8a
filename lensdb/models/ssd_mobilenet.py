"""The offline pretrained pair: detector `ssd-mobilenet-v2` and embedder `mobilenet-v2`.

Both run one TFLite model (SSD-MobileNetV2 trained on Open Images v4, 24 classes) on
ai-edge-litert. The embedder is the backbone's last feature map (MobilenetV2/Conv_1,
1280 channels, 10x10 at 300x300 input), mean-pooled and L2-normalised. LiteRT and cv2
are imported only when a model is built, so importing this module is cheap.

One invoke gives boxes, class scores and the feature map. When ingest runs the pair
together it calls `SSDMobileNetDetector.detect_and_embed` once per batch (the
`DetectAndEmbed` interface): one invoke per frame, nothing remembered between calls.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import LensDBError
from lensdb.models.base import EmbeddedBatch, Embedder, file_digest, l2_normalise
from lensdb.models.npm_assets import NAME as DETECTOR_NAME
from lensdb.models.npm_assets import (
    PACKAGE,
    VERSION,
    fetch_ssd,
    read_labels,
    ssd_paths,
    ssd_present,
)
from lensdb.models.spec import ModelSpec
from lensdb.models.ssd_anchors import decode_boxes, multiclass_nms, ssd_anchors
from lensdb.types import Detections

EMBEDDER_NAME = "mobilenet-v2"
INPUT_SIZE = 300
FEATURE_PREFIX = "FeatureExtractor/MobilenetV2/Conv_1/Relu6"
FEATURE_DIM = 1280


def _with_feature_output(model: bytes) -> tuple[bytes, int] | None:
    """The model rewritten to also output the backbone's last feature map, and its index.

    A real output keeps the XNNPACK fast path; None when the rewrite is not possible.
    """
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema

        parsed = schema.ModelT.InitFromPackedBuf(model, 0)
        graph = parsed.subgraphs[0]
        names = [t.name.decode() for t in graph.tensors]
        hits = [i for i, name in enumerate(names) if name.startswith(FEATURE_PREFIX)]
        if len(hits) != 1:
            return None
        graph.outputs = [*list(graph.outputs), hits[0]]
        builder = flatbuffers.Builder(len(model) + (1 << 16))
        builder.Finish(parsed.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output()), hits[0]
    except Exception:  # any schema or flatbuffers mismatch: fall back to preserved tensors
        return None


class _SsdModel:
    """One interpreter per model file, shared by the detector and the embedder."""

    def __init__(self, tflite_path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        threads = num_threads or os.cpu_count() or 2
        raw = tflite_path.read_bytes()
        rewritten = _with_feature_output(raw)
        if rewritten is not None:
            self._interp = Interpreter(model_content=rewritten[0], num_threads=threads)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "for debugging purposes only"
                self._interp = Interpreter(
                    model_content=raw, num_threads=threads, experimental_preserve_all_tensors=True
                )
        from lensdb.storage.codecs import _quiet_stderr

        with _quiet_stderr():  # LiteRT prints "INFO: Created ... delegate" on fd 2 here
            self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]["index"]
        self._boxes = self._tensor_index(lambda d: d["name"] == "raw_outputs/box_encodings")
        self._logits = self._tensor_index(lambda d: d["name"] == "raw_outputs/class_predictions")
        self._feature = self._tensor_index(
            lambda d: d["name"].startswith(FEATURE_PREFIX) and d["shape"][-1] == FEATURE_DIM
        )
        self.digest = file_digest(tflite_path)
        self.anchors = ssd_anchors()
        self.lock = threading.Lock()  # interpreters are not thread-safe

    def _tensor_index(self, match: Any) -> int:
        hits = [d["index"] for d in self._interp.get_tensor_details() if match(d)]
        if len(hits) != 1:
            raise LensDBError(f"{DETECTOR_NAME}: unexpected model layout ({len(hits)} matches)")
        return int(hits[0])

    def run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Box encodings (1917, 4), class logits (1917, 24), pooled features (1280,): one
        invoke on this image, every time."""
        x = _preprocess(image)
        with self.lock:
            self._interp.set_tensor(self._input, x)
            self._interp.invoke()
            boxes = self._interp.get_tensor(self._boxes)[0].copy()
            logits = self._interp.get_tensor(self._logits)[0].copy()
            feature = self._interp.get_tensor(self._feature)[0].mean(axis=(0, 1))
        return boxes, logits, feature


_MODELS: dict[Path, _SsdModel] = {}
_MODELS_LOCK = threading.Lock()


def _shared_model(tflite_path: Path, num_threads: int | None = None) -> _SsdModel:
    key = tflite_path.resolve()
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _SsdModel(key, num_threads)
        return _MODELS[key]


def _preprocess(image: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise LensDBError(f"{DETECTOR_NAME}: expected an HxWx3 RGB image, got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    resized = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return (resized.astype(np.float32) / 127.5 - 1.0)[None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _weights() -> tuple[Path, Path]:
    """Cached weights, fetched from the npm registry when missing (raises if that fails)."""
    if not ssd_present():
        fetch_ssd()
    return ssd_paths()


class SSDMobileNetDetector:
    """SSD-MobileNetV2 (Open Images v4): 23 classes, boxes in pixels of the frame."""

    def __init__(
        self,
        conf: float = 0.25,
        iou: float = 0.5,
        max_detections: int = 100,
        tflite_path: Path | None = None,
        labels_path: Path | None = None,
        num_threads: int | None = None,
    ):
        if tflite_path is None or labels_path is None:
            tflite_path, labels_path = _weights()
        self.name = DETECTOR_NAME
        self.conf = conf
        self.iou = iou
        self.max_detections = max_detections
        self._model = _shared_model(Path(tflite_path), num_threads)
        self.labels = read_labels(Path(labels_path))
        self.model_id = f"{DETECTOR_NAME}@{self._model.digest}"

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        return [self._decode(self._model.run(image), image) for image in images]

    def embeds_like(self, embedder: Embedder) -> bool:
        """DetectAndEmbed: the mobilenet-v2 embedder of this same model file."""
        return isinstance(embedder, MobileNetV2Embedder) and embedder._model is self._model

    def detect_and_embed(self, images: list[np.ndarray]) -> EmbeddedBatch:
        """DetectAndEmbed: one invoke per image; the vectors, and detections of any of the
        images decoded from those same invokes on request."""
        runs = [self._model.run(image) for image in images]
        vectors = _pooled_vectors([r[2] for r in runs])

        def detect(positions: list[int]) -> list[Detections]:
            return [self._decode(runs[i], images[i]) for i in positions]

        return EmbeddedBatch(vectors, detect)

    def _decode(self, run: tuple[np.ndarray, np.ndarray, np.ndarray],
                image: np.ndarray) -> Detections:
        height, width = np.asarray(image).shape[:2]
        encodings, logits, _ = run
        boxes = decode_boxes(encodings, self._model.anchors)
        boxes, scores, classes = multiclass_nms(
            boxes, _sigmoid(logits), self.conf, self.iou, self.max_detections, skip_class=0
        )
        if len(scores) == 0:
            return Detections.empty()
        # (ymin, xmin, ymax, xmax) normalised -> (x1, y1, x2, y2) in pixels.
        xyxy = boxes[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        names = tuple(self.labels[c] if c < len(self.labels) else str(c) for c in classes)
        return Detections(xyxy, scores.astype(np.float32), names)


class MobileNetV2Embedder:
    """The SSD's MobileNetV2 backbone, last feature map mean-pooled: 1280-d, image only."""

    dim = FEATURE_DIM
    has_text = False

    def __init__(self, tflite_path: Path | None = None, num_threads: int | None = None):
        if tflite_path is None:
            tflite_path, _ = _weights()
        self.name = EMBEDDER_NAME
        self._model = _shared_model(Path(tflite_path), num_threads)
        self.model_id = f"{EMBEDDER_NAME}@{self._model.digest}"

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return _pooled_vectors([self._model.run(image)[2] for image in images])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        raise LensDBError(
            f"embedder '{EMBEDDER_NAME}' has no text side; search by --image, "
            "or use a CLIP embedder"
        )


def _pooled_vectors(features: list[np.ndarray]) -> np.ndarray:
    if not features:
        return np.zeros((0, FEATURE_DIM), np.float32)
    return l2_normalise(np.stack(features))


_SOURCE = f"npm:{PACKAGE}@{VERSION}"

SPECS = (
    ModelSpec(
        name=DETECTOR_NAME,
        kind="detector",
        description="SSD-MobileNetV2, Open Images v4 (person, car, vehicle, bicycle, ...), "
        "pretrained, runs offline on LiteRT",
        source=_SOURCE,
        size_mb=10.0,
        load=lambda conf=0.4, **options: SSDMobileNetDetector(conf=conf, **options),
        fetch=fetch_ssd,
        is_present=ssd_present,
        # measured on vtest.avi (OpenCV's street sample), persons counted by hand on frames
        # 160, 320, 790 (7, 6, ~7.5): the SSD counts 15/17/21 at 0.25, 8/7/10 at 0.35,
        # 7/6/7 at 0.4, 6/6/6 at 0.45. (Close-ups are the other way: carphone's one person
        # is found in 95% of frames at 0.35, 40% at 0.4.)
        default_conf=0.4,
    ),
    ModelSpec(
        name=EMBEDDER_NAME,
        kind="embedder",
        description="MobileNetV2 backbone of ssd-mobilenet-v2, pooled 1280-d image vectors, "
        "pretrained, offline, no text side",
        source=_SOURCE,
        size_mb=10.0,
        load=lambda **options: MobileNetV2Embedder(**options),
        fetch=fetch_ssd,
        is_present=ssd_present,
    ),
)

"""Tiny deterministic models for fast ingest tests: no weights, no model library.

`fake-detector` finds one "square" per bright red blob column band (the test videos of
conftest draw a red and a blue square), `fake-embedder` is a 16-d colour histogram. Both
register in the real registry, so ingest runs its real code path around them.
"""

from __future__ import annotations

import numpy as np

from lensdb.models import registry
from lensdb.models.base import l2_normalise
from lensdb.types import Detections

DETECTOR, EMBEDDER = "fake-detector", "fake-embedder"
FAKE = {"detector": DETECTOR, "embedder": EMBEDDER}


class FakeDetector:
    name = DETECTOR
    model_id = f"{DETECTOR}@0"

    def __init__(self, conf: float = 0.3):
        self.conf = conf

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            red = (img[..., 0] > 200) & (img[..., 2] < 100)
            n = 1 if red.mean() > 0.01 else 0
            boxes = np.array([[0, 0, 8, 8]] * n, np.float32).reshape(-1, 4)
            out.append(Detections(boxes, np.full(n, 0.9, np.float32), ("square",) * n))
        return out


class FakeEmbedder:
    name = EMBEDDER
    model_id = f"{EMBEDDER}@0"
    dim = 16
    has_text = False

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        rows = []
        for img in images:
            hist = [np.histogram(img[..., c], bins=5, range=(0, 256))[0] for c in range(3)]
            rows.append(np.concatenate([*hist, [img.mean() + 1.0]]).astype(np.float32))
        rng = np.random.default_rng(0)
        noise = rng.normal(size=(len(rows), self.dim)).astype(np.float32) * 1e-3
        return l2_normalise(np.stack(rows) + noise) if rows else np.zeros((0, 16), np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def _spec(name: str, kind: str, load) -> registry.ModelSpec:
    from dataclasses import fields

    extra = {"default_conf": 0.3} if "default_conf" in {f.name for f in
                                                         fields(registry.ModelSpec)} else {}
    return registry.ModelSpec(name=name, kind=kind, description="test fake", source="tests",
                              size_mb=0.0, load=load, fetch=lambda: None,
                              is_present=lambda: True, **extra)


def install() -> dict:
    """Register the fakes (idempotent); the ingest options that select them."""
    registry.list_detectors()  # the built-ins first, so they do not replace ours later
    registry.register(_spec(DETECTOR, "detector", lambda conf=0.3, **_: FakeDetector(conf)))
    registry.register(_spec(EMBEDDER, "embedder", lambda **_: FakeEmbedder()))
    return dict(FAKE)


if __name__ == "__main__":  # `python tests/ingest_fakes.py ARGS`: the CLI with the fakes
    install()
    from lensdb.cli.app import main

    main()

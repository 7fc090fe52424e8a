"""Synthetic stores for the counting tests: vectors that carry the counts, plus noise."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lensdb.counting.config import StageConfig
from lensdb.storage import Batch, FrameRow, Store
from lensdb.types import Detections

DIM = 32
EMBEDDER_ID = "fake@123"


def make_detections(person: int, car: int) -> Detections:
    n = person + car
    return Detections(
        np.zeros((n, 4), np.float32),
        np.full(n, 0.9, np.float32),
        ("person",) * person + ("car",) * car,
    )


def synthetic_counts(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Slowly varying person and car counts along a video."""
    walk = np.cumsum(rng.normal(0, 0.6, n))
    person = np.clip(np.rint(3 + 2.5 * np.sin(np.arange(n) / 9.0) + 0.3 * walk), 0, 10)
    car = np.clip(np.rint(1.5 + 1.5 * np.cos(np.arange(n) / 13.0)), 0, 5)
    return person.astype(int), car.astype(int)


def vectors_for(person: np.ndarray, car: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    basis = np.random.default_rng(1234).normal(size=(3, DIM))  # same space for every video
    x = basis[0] + 0.25 * person[:, None] * basis[1] + 0.35 * car[:, None] * basis[2]
    x = x + 0.15 * rng.normal(size=x.shape)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def add_video(
    store: Store, codec, video_id: int, n: int, label_every: int, seed: int, batch: int = 60
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Commit one synthetic video; returns (frame ids, person counts, car counts)."""
    rng = np.random.default_rng(seed)
    person, car = synthetic_counts(n, rng)
    x = vectors_for(person, car, rng)
    with store.catalog.connect(write=True) as con:
        con.execute(
            "INSERT INTO videos (video_id, name, status) VALUES (?, ?, 'complete')",
            [video_id, f"video{video_id}.mp4"],
        )
    ids = []
    for start in range(0, n, batch):
        frames = [
            FrameRow(i, i / 25.0, make_detections(person[i], car[i]) if i % label_every == 0
                     else None)
            for i in range(start, min(n, start + batch))
        ]
        ids.append(store.commit_batch(Batch(video_id, frames, x[start : start + len(frames)]),
                                      codec))
    return np.concatenate(ids), person, car


def build_store(
    root: Path, videos: int = 3, frames: int = 120, label_every: int = 1, codec: str = "Flat"
) -> Store:
    store = Store.open(root, create=True)
    with store.writer():
        store.bind_space(EMBEDDER_ID, DIM, codec)
        sample = vectors_for(*synthetic_counts(300, np.random.default_rng(99)),
                             np.random.default_rng(98))
        cdc = store.codec(sample)
        for v in range(videos):
            add_video(store, cdc, v, frames, label_every, seed=v)
    return store


@pytest.fixture(scope="session")
def _templates(tmp_path_factory) -> dict:
    """Stores built once per session; tests get copies (building costs fsyncs)."""
    return {"root": tmp_path_factory.mktemp("templates")}


@pytest.fixture
def make_store(tmp_path: Path, _templates: dict):
    """Builder of synthetic stores: make_store(name, videos=3, frames=120, ...), a fresh copy."""

    def make(name: str = "store", **kwargs) -> Store:
        key = repr(sorted(kwargs.items()))
        if key not in _templates:
            _templates[key] = build_store(_templates["root"] / f"t{len(_templates)}", **kwargs)
        target = tmp_path / name
        shutil.copytree(_templates[key].root, target)
        (target / ".writer.lock").unlink(missing_ok=True)
        return Store.open(target)

    return make


@pytest.fixture
def store3(make_store) -> Store:
    """Three labelled synthetic videos of 120 frames."""
    return make_store("store", videos=3)


@pytest.fixture
def synth() -> SimpleNamespace:
    """The helpers above, for tests that build their own data."""
    return SimpleNamespace(
        build_store=build_store, add_video=add_video, vectors_for=vectors_for,
        synthetic_counts=synthetic_counts, make_detections=make_detections,
        EMBEDDER_ID=EMBEDDER_ID, DIM=DIM,
    )


@pytest.fixture
def fast() -> dict:
    """Stage settings that keep the tests quick."""
    stage = StageConfig(lr=3e-3, weight_decay=0.0, batch_size=64, max_epochs=25, patience=6)
    return {"pretrain": stage, "finetune": stage}

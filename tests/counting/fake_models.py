"""A deterministic detector and embedder for label/guarantee tests, and videos they read.

The detector counts white squares on a fixed grid of cells ('person'); the embedder is the
frame's colour layout (4x4 block means). `scene_video` encodes scenes of a background colour
and a number of squares, with abrupt cuts. Run as a module it registers both and runs the
CLI (`python -m tests.counting.fake_models label ...`), so a subprocess can be killed.
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from lensdb.types import Detections

DETECTOR, EMBEDDER = "fake-squares", "fake-colour"
CELLS = [(x, y) for y in (8, 38) for x in (4, 28, 52, 76)]  # top-left corners, 14x14 squares
SIZE = (96, 64)


class FakeDetector:
    name = DETECTOR
    model_id = f"{DETECTOR}@1"

    def __init__(self, conf: float = 0.25, delay: float = 0.0):
        self.conf, self.delay = conf, delay

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            time.sleep(self.delay)
            boxes = [(x, y, x + 14, y + 14) for x, y in CELLS
                     if img[y + 3:y + 11, x + 3:x + 11].mean() > 200]
            n = len(boxes)
            out.append(Detections(np.array(boxes, np.float32).reshape(n, 4),
                                  np.full(n, 0.9, np.float32), ("person",) * n))
        return out


class FakeEmbedder:
    name = EMBEDDER
    model_id = f"{EMBEDDER}@1"
    dim = 48
    has_text = False

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        rows = []
        for img in images:
            h, w = img.shape[0] // 4, img.shape[1] // 4
            v = img[:4 * h, :4 * w].reshape(4, h, 4, w, 3).mean((1, 3)).ravel() - 100.0
            rows.append(v / max(np.linalg.norm(v), 1e-6))
        return np.array(rows, np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def register_fakes(delay: float = 0.0) -> None:
    from lensdb.models.registry import ModelSpec, register

    for name, kind, make in ((DETECTOR, "detector",
                              lambda conf=0.25, **o: FakeDetector(conf, delay)),
                             (EMBEDDER, "embedder", lambda **o: FakeEmbedder())):
        register(ModelSpec(name, kind, f"test {kind}", "code", 0.0, make,
                           lambda: Path("."), lambda: True))


def scene_counts(scenes: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """Per-frame square counts for scenes of (frames, squares), with some flicker."""
    rng = np.random.default_rng(seed)
    counts = np.concatenate([np.full(n, k) for n, k in scenes])
    flick = rng.random(len(counts)) < 0.08
    return np.clip(counts + flick * rng.choice([-1, 1], len(counts)), 0, len(CELLS))


def scene_video(path: Path, scenes: list[tuple[int, int]], fps: int = 10, seed: int = 0) -> Path:
    """Encode the scenes (background colour changes at every cut) as an MPEG-4 video."""
    import av

    rng = np.random.default_rng(seed + 1)
    counts = scene_counts(scenes, seed)
    colours = rng.integers(20, 140, (len(scenes), 3))
    scene_of = np.concatenate([np.full(n, i) for i, (n, _) in enumerate(scenes)])
    w, h = SIZE
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.bit_rate = 2_000_000
        for i, k in enumerate(counts):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = colours[scene_of[i]]
            img[:, (i * 2) % w] = 255 - colours[scene_of[i]]  # a moving line: frames differ
            for x, y in CELLS[:k]:
                img[y:y + 14, x:x + 14] = 250
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(round(i * 1000 / fps)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


SCENES = [(37, 2), (50, 5), (23, 0), (61, 3), (29, 7), (40, 1)]  # 240 frames, cuts in between
TABLES = ("videos", "frames", "detections", "counts", "count_models", "predictions")
SCRIPT = Path(__file__)  # run it with python: the CLI with these models registered


def build_scene_store(root: Path, detect_every: int = 10, train: bool = True) -> Path:
    """A store of one scene video (SCENES), labelled every `detect_every` frames by the fake
    detector, with kNN count models for person; returns the store's directory."""
    from lensdb.config import IngestConfig
    from lensdb.counting import TrainConfig, train_counters
    from lensdb.ingest import ingest
    from lensdb.storage import Store

    register_fakes()
    root.mkdir(parents=True, exist_ok=True)
    video = scene_video(root / "scenes.mp4", SCENES)
    store = Store.open(root / "store", create=True)
    ingest(store, [str(video)], IngestConfig(detector=DETECTOR, embedder=EMBEDDER,
                                             detect_every=detect_every, codec="Flat",
                                             batch_size=16))
    if train:
        train_counters(store, TrainConfig(classes=("person",), method="knn"))
    return store.root


def fresh_scene_store(template: Path, target: Path) -> Path:
    """A copy of a scene store built once per module, with the fakes registered: each test
    gets its own store to change."""
    import shutil

    register_fakes()
    shutil.copytree(template, target)
    return target


def no_labels(store_dir: Path) -> None:
    """Make a store that has no labelled frames (a bad input for label and guarantees)."""
    import duckdb

    with duckdb.connect(str(Path(store_dir) / "catalog.duckdb")) as con:
        con.execute("UPDATE frames SET labelled = false")
        con.execute("DELETE FROM counts")
        con.execute("DELETE FROM detections")


def few_labels(store_dir: Path, keep: int = 3) -> None:
    """Keep the labels of the first `keep` labelled frames only (too few to refit on)."""
    import duckdb

    with duckdb.connect(str(Path(store_dir) / "catalog.duckdb")) as con:
        con.execute("CREATE TEMP TABLE gone AS SELECT frame_id FROM frames WHERE labelled "
                    "ORDER BY frame_id OFFSET ?", [keep])
        con.execute("UPDATE frames SET labelled = false WHERE frame_id IN (FROM gone)")
        con.execute("DELETE FROM counts WHERE frame_id IN (FROM gone)")
        con.execute("DELETE FROM detections WHERE frame_id IN (FROM gone)")


def video_gone(store_dir: Path) -> None:
    """Point every video of a store at a path that does not exist."""
    import duckdb

    with duckdb.connect(str(Path(store_dir) / "catalog.duckdb")) as con:
        con.execute("UPDATE videos SET path = ?", [str(Path(store_dir) / "moved-away.mp4")])


def catalog_checksum(store_dir: Path) -> str:
    """A digest of every catalog table's rows (order-free)."""
    import hashlib

    import duckdb

    h = hashlib.sha256()
    con = duckdb.connect(str(Path(store_dir) / "catalog.duckdb"), read_only=True)
    try:
        for table in TABLES:
            rows = con.execute(f"SELECT * FROM {table}").fetchall()
            h.update(repr(sorted(rows, key=repr)).encode())
    finally:
        con.close()
    return h.hexdigest()


if __name__ == "__main__":
    register_fakes(float(os.environ.get("FAKE_DETECTOR_DELAY", "0")))
    from lensdb.cli.app import main

    main()

"""Data made in code where pixels decide the condition (a square filled or hollow), and a
store whose detections are such squares in a real encoded video."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

import numpy as np

from lensdb.storage import Batch, FrameRow, Store
from lensdb.types import Detections

VALUES = ("filled", "hollow")


def draw_square(img: np.ndarray, box, filled: bool, colour) -> None:
    import cv2

    x1, y1, x2, y2 = (int(v) for v in box)
    cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, -1 if filled else 2)


def shape_image(rng: np.random.Generator, filled: bool, size: int = 48, hard: bool = False):
    """(image, box): one square on a noisy background. `hard`: the hollow one has only a
    small hole, in low contrast on strong noise (so a probe errs on the rare class)."""
    img = rng.integers(60, 120, size=(size, size, 3)).astype(np.uint8)
    s = int(rng.integers(size // 3, size // 2))
    x, y = (int(v) for v in rng.integers(2, size - s - 2, size=2))
    colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
    box = (x, y, x + s, y + s)
    if not hard:
        draw_square(img, box, filled, colour)
        return img, box
    img = rng.integers(40, 160, size=(size, size, 3)).astype(np.uint8)
    colour = tuple(int(c) for c in rng.integers(110, 180, size=3))
    draw_square(img, box, True, colour)
    if not filled:
        h = max(2, int(s * rng.uniform(0.2, 0.4)))
        cx, cy = x + s // 2, y + s // 2
        img[cy - h // 2:cy + h - h // 2, cx - h // 2:cx + h - h // 2] = 100
    return img, box


def write_csv(root: Path, n: int, seed: int = 0, rare_share: float = 0.5,
              name: str = "data.csv", hard: bool = False) -> Path:
    """n images of one square each; `rare_share` of them hollow."""
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hollow = rng.random() < rare_share
        img, box = shape_image(rng, not hollow, hard=hard)
        cv2.imwrite(str(root / f"{name}-{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        rows.append({"image_path": f"{name}-{i:04d}.png", "x1": box[0], "y1": box[1],
                     "x2": box[2], "y2": box[3], "object": "square",
                     "condition": "hollow" if hollow else "filled"})
    path = root / name
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


# three squares a frame at fixed places; which are filled changes from frame to frame
BOXES = ((4, 4, 28, 28), (36, 4, 60, 28), (68, 36, 92, 60))


def frame_fills(i: int) -> tuple[bool, ...]:
    return (i % 2 == 0, i % 3 == 0, True)


def encode_square_video(path: Path, n_frames: int = 12) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n_frames):
            img = np.full((64, 96, 3), 90, np.uint8)
            for box, filled in zip(BOXES, frame_fills(i)):
                draw_square(img, box, filled, (230, 230, 230))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i * 100, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_square_store(root: Path, n_frames: int = 12, embedder: str = "fake@0") -> Store:
    """A store of one real video whose every frame is labelled with three 'square' boxes
    (and one 'circle' nobody classifies)."""
    video = encode_square_video(root.parent / f"{root.name}-squares.mkv", n_frames)
    store = Store.open(root, create=True)
    store.bind_space(embedder, 8, "Flat")
    with store.writer():
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, path, status, width, height) "
                        "VALUES (0, 'squares.mkv', ?, 'complete', 96, 64)", [str(video)])
        frames = []
        for i in range(n_frames):
            boxes = np.array(BOXES + ((0, 40, 20, 60),), np.float32)
            frames.append(FrameRow(i, i / 10, Detections(
                boxes, np.full(4, 0.9, np.float32), ("square",) * 3 + ("circle",))))
        vecs = np.random.default_rng(0).normal(size=(n_frames, 8)).astype(np.float32)
        codec = store.codec(vecs)
        store.commit_batch(Batch(0, frames, vecs), codec)
    return store


NO_TEXT = "classify-histogram"  # a registered embedder with no text side


class HistogramEmbedder:
    """A 16-d colour/brightness histogram: a real image embedding of sorts, no text side."""

    name = NO_TEXT
    model_id = f"{NO_TEXT}@0"
    dim = 16
    has_text = False

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        from lensdb.models.base import l2_normalise

        rows = []
        for img in images:
            grey = img.mean(axis=2)
            hist = np.histogram(grey, bins=8, range=(0, 256))[0] / grey.size
            edge = np.histogram(np.abs(np.diff(grey, axis=1)), bins=8, range=(0, 256))[0]
            rows.append(np.concatenate([hist, edge / max(edge.sum(), 1)]) + 1e-3)
        return l2_normalise(np.array(rows, np.float32).reshape(-1, self.dim))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def install_no_text_embedder() -> str:
    from lensdb.models import registry

    registry.list_embedders()  # the built-ins first
    registry.register(registry.ModelSpec(
        name=NO_TEXT, kind="embedder", description="test histogram", source="tests",
        size_mb=0.0, load=lambda **_: HistogramEmbedder(), fetch=lambda: None,
        is_present=lambda: True))
    return NO_TEXT

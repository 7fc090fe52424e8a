"""What a classifier sees of one detection, in three contexts:

- `crop`: the box alone;
- `crop+margin`: the box grown by `margin` of its size on every side (clipped to the frame),
  so the surroundings that decide "parked" or "in the bus lane" are in view;
- `full+box`: the whole frame with the box drawn on it in red.

Stored detections are cropped from their frames decoded again from the recorded video paths
(`lensdb.export.render_frame`, one decode per frame, the files kept open).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lensdb.errors import LensDBError

CONTEXTS = ("crop", "crop+margin", "full+box")
DEFAULT_MARGIN = 0.25  # crop+margin: grow the box by this share of its width/height a side
BOX_COLOUR = (255, 0, 0)


@dataclass(frozen=True)
class DetectionRef:
    """One stored detection, named by its frame, class and box (as the catalog holds them)."""

    frame_id: int
    cls: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the frame


def check_context(context: str) -> str:
    if context not in CONTEXTS:
        raise LensDBError(f"unknown context '{context}'; use one of {', '.join(CONTEXTS)}")
    return context


def context_image(rgb: np.ndarray, box, context: str = "crop",
                  margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The image a classifier gets for `box` on the HxWx3 RGB frame `rgb`."""
    check_context(context)
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    if context == "full+box":
        import cv2

        img = np.ascontiguousarray(rgb.copy())
        thick = max(2, round(min(h, w) / 100))
        cv2.rectangle(img, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))),
                      BOX_COLOUR, thick)
        return img
    if context == "crop+margin":
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        x1, y1, x2, y2 = x1 - mx, y1 - my, x2 + mx, y2 + my
    c1, r1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
    c2, r2 = int(np.clip(np.ceil(x2), c1 + 1, w)), int(np.clip(np.ceil(y2), r1 + 1, h))
    return np.ascontiguousarray(rgb[r1:r2, c1:c2])


def stored_detections(con, obj: str, set_name: str | None = None,
                      redo: bool = False) -> list[DetectionRef]:
    """Detections of class `obj`, by frame; without `redo`, only those that have no
    attribute of `set_name` yet (what a resumed run still has to do)."""
    sql = ("SELECT d.frame_id, d.class, d.x1, d.y1, d.x2, d.y2 FROM detections d "
           "WHERE d.class = ?")
    params: list = [obj]
    if set_name is not None and not redo:
        sql += (" AND NOT EXISTS (SELECT 1 FROM detection_attributes a WHERE a.set_name = ? "
                "AND a.frame_id = d.frame_id AND a.class = d.class AND a.x1 = d.x1 AND "
                "a.y1 = d.y1 AND a.x2 = d.x2 AND a.y2 = d.y2)")
        params.append(set_name)
    rows = con.execute(sql + " ORDER BY d.frame_id, d.x1, d.y1, d.x2, d.y2", params).fetchall()
    return [DetectionRef(int(r[0]), str(r[1]), (r[2], r[3], r[4], r[5])) for r in rows]


def frame_crops(store, refs: list[DetectionRef], context: str = "crop",
                margin: float = DEFAULT_MARGIN
                ) -> Iterator[tuple[int, list[tuple[DetectionRef, np.ndarray, tuple[int, int]]]]]:
    """Per frame (in the order of `refs`): (frame id, [(ref, image, (frame w, frame h))])."""
    from lensdb.export import render_frame
    from lensdb.media import FrameReader

    check_context(context)
    reader = FrameReader()
    try:
        i = 0
        while i < len(refs):
            j = i
            while j < len(refs) and refs[j].frame_id == refs[i].frame_id:
                j += 1
            rgb = render_frame(store, refs[i].frame_id, boxes=False, reader=reader)
            size = (int(rgb.shape[1]), int(rgb.shape[0]))
            yield refs[i].frame_id, [(r, context_image(rgb, r.box, context, margin), size)
                                     for r in refs[i:j]]
            i = j
    finally:
        reader.close()

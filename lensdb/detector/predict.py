"""`predict_images`: a checkpoint's boxes on images, drawn and as YOLO-format files.

    r = predict_images("runs/x/best.pt", ["images/"], out="preds", conf=0.25, iou=0.5)

writes `preds/images/NAME.jpg` (boxes drawn with class and score) and `preds/labels/NAME.txt`
(`class cx cy w h score` per box, normalised: ultralytics' save_txt with save_conf), and
returns per-image box counts and the totals per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lensdb.detector.checkpoint import load_predictor
from lensdb.detector.data import IMAGE_SUFFIXES
from lensdb.detector.evaluate import read_rgb
from lensdb.device import resolve_device
from lensdb.errors import LensDBError, ParameterError
from lensdb.runs import atomic_write_bytes, atomic_write_text

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


def collect_images(inputs: list[str | Path], max_images: int = 0) -> list[Path]:
    """Image files named, and those under folders named (sorted), at most `max_images`."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise LensDBError(f"{p} is not an image ({', '.join(IMAGE_SUFFIXES)})")
            found.append(p)
        else:
            raise LensDBError(f"no such image or folder: {p}")
    if not found:
        raise LensDBError("no images found in the inputs given")
    return found[:max_images] if max_images else found


def draw(img: np.ndarray, boxes, scores, cls, names) -> bytes:
    import io

    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for (x0, y0, x1, y1), s, c in zip(boxes, scores, cls):
        color = PALETTE[int(c) % len(PALETTE)]
        d.rectangle([x0, y0, x1, y1], outline=color, width=max(1, round(min(im.size) / 200)))
        d.text((x0 + 2, max(0, y0 - 10)), f"{names[int(c)]} {s:.2f}", fill=color)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def predict_images(ckpt: str | Path, inputs: list[str | Path], out: str | Path = "predictions",
                   conf: float = 0.25, iou: float = 0.5, max_images: int = 0,
                   device: str = "cpu", batch: int = 16) -> dict[str, Any]:
    if not 0 <= conf <= 1:
        raise ParameterError("conf", f"must be in [0, 1], not {conf}")
    if not 0 < iou <= 1:
        raise ParameterError("iou", f"must be in (0, 1], not {iou}")
    images = collect_images(inputs, max_images)
    predictor = load_predictor(ckpt, resolve_device(device))
    names = predictor.names
    out = Path(out)
    per_class = {n: 0 for n in names}
    rows = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        rgb = [read_rgb(p) for p in chunk]
        for path, img, (boxes, scores, cls) in zip(chunk, rgb, predictor.predict(rgb, conf, iou)):
            h, w = img.shape[:2]
            lines = []
            for (x0, y0, x1, y1), s, c in zip(boxes, scores, cls):
                lines.append(f"{int(c)} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
                             f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f} {s:.4f}\n")
                per_class[names[int(c)]] += 1
            atomic_write_text(out / "labels" / f"{path.stem}.txt", "".join(lines))
            atomic_write_bytes(out / "images" / f"{path.stem}.jpg",
                               draw(img, boxes, scores, cls, names))
            rows.append({"image": str(path), "boxes": len(lines)})
    return {"checkpoint": str(ckpt), "out": str(out), "images": len(rows),
            "boxes": sum(r["boxes"] for r in rows), "per_class": per_class, "per_image": rows}

"""Labelled condition data: a CSV `image_path,x1,y1,x2,y2,object,condition` (paths relative
to the CSV; boxes in pixels), or a YOLO dataset folder (data.yaml `names`, images/ and
labels/ beside each other) whose class names are object-condition pairs ("car parked",
"toe drain blocked": the set's object, a space, one of its values).

Every row is checked against the condition set before anything is embedded: an object
other than the set's, a condition that is not one of its values, a class name that does
not parse: one-line errors naming what is known.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensdb.classify.conditions import ConditionSet
from lensdb.classify.crops import context_image
from lensdb.errors import LensDBError, first_line

CSV_COLUMNS = ("image_path", "x1", "y1", "x2", "y2", "object", "condition")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Sample:
    """One labelled object in one image."""

    image: Path  # the image file
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    value: str  # the condition value


def read_dataset(path: str | Path, cs: ConditionSet) -> list[Sample]:
    """Samples of a CSV file or a YOLO folder, checked against `cs`."""
    path = Path(path)
    if path.is_dir():
        samples = list(_yolo(path, cs))
    elif path.is_file():
        samples = list(_csv(path, cs))
    else:
        raise LensDBError(f"no dataset at {path} (a CSV file or a YOLO dataset folder)")
    if not samples:
        raise LensDBError(f"the dataset {path} has no labelled objects")
    return samples


def _value(cs: ConditionSet, obj: str, condition: str, where: str) -> str:
    if obj.strip().lower() != cs.object:
        raise LensDBError(f"{where}: object '{obj}' is not '{cs.object}', the object of "
                          f"condition set '{cs.name}'")
    v = condition.strip().lower()
    if v not in cs.values:
        raise LensDBError(f"{where}: condition '{condition}' is not a value of set "
                          f"'{cs.name}'; known values: {', '.join(cs.values)}")
    return v


def _csv(path: Path, cs: ConditionSet) -> Iterator[Sample]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LensDBError(f"cannot read {path}: {exc}") from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise LensDBError(f"{path.name} lacks the column(s) {', '.join(missing)}; a condition "
                          f"CSV has {','.join(CSV_COLUMNS)}")
    for i, row in enumerate(rows, start=2):
        where = f"{path.name} line {i}"
        try:
            x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            box = (x1, y1, x2, y2)
        except (TypeError, ValueError):
            raise LensDBError(f"{where}: the box is not four numbers") from None
        if not (box[2] > box[0] and box[3] > box[1]):
            raise LensDBError(f"{where}: the box needs x2 > x1 and y2 > y1")
        image = path.parent / (row["image_path"] or "")
        if not image.is_file():
            raise LensDBError(f"{where}: no image {row['image_path']}")
        yield Sample(image, box, _value(cs, row["object"] or "", row["condition"] or "", where))


def parse_class(name: str, cs: ConditionSet) -> str:
    """The value of a YOLO class name `OBJECT CONDITION` (spaces or underscores)."""
    text = " ".join(str(name).replace("_", " ").lower().split())
    obj = " ".join(cs.object.replace("_", " ").split())
    if not text.startswith(obj + " "):
        raise LensDBError(f"class '{name}' does not parse as '{cs.object} CONDITION' (set "
                          f"'{cs.name}', values {', '.join(cs.values)})")
    return _value(cs, cs.object, text[len(obj) + 1:], f"class '{name}'")


def _yolo(root: Path, cs: ConditionSet) -> Iterator[Sample]:
    import yaml

    cfg = next((root / n for n in ("data.yaml", "dataset.yaml") if (root / n).is_file()), None)
    if cfg is None:
        raise LensDBError(f"{root} has no data.yaml; a YOLO dataset lists its class names there")
    try:
        names = (yaml.safe_load(cfg.read_text()) or {}).get("names")
    except yaml.YAMLError as exc:
        raise LensDBError(f"cannot read {cfg}: {first_line(exc)}") from None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not names:
        raise LensDBError(f"{cfg} has no class names")
    values = [parse_class(n, cs) for n in names]
    for image in sorted(p for p in (root / "images").rglob("*") if p.suffix.lower()
                        in IMAGE_SUFFIXES):
        label = root / "labels" / image.relative_to(root / "images").with_suffix(".txt")
        if not label.is_file():
            continue
        w, h = image_size(image)
        for j, line in enumerate(label.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                k_text, *numbers = line.split()[:5]
                k = int(k_text)
                cx, cy, bw, bh = (float(x) for x in numbers)
                value = values[k]
            except (ValueError, IndexError):
                raise LensDBError(f"{label.name} line {j}: not 'class cx cy w h' with a known "
                                  "class") from None
            yield Sample(image, ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                                 (cy + bh / 2) * h), value)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image file at `path`."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise LensDBError(f"cannot read the image {path}")
    h, w = image.shape[:2]
    return w, h


def sample_images(samples: list[Sample], context: str) -> Iterator[np.ndarray]:
    """The classifier's view of each sample (images read once each, in order)."""
    import cv2

    cache: dict[Path, np.ndarray] = {}
    for s in samples:
        if s.image not in cache:
            cache.clear()
            bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if bgr is None:
                raise LensDBError(f"cannot read the image {s.image}")
            cache[s.image] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yield context_image(cache[s.image], s.box, context)


def embed_samples(embedder, samples: list[Sample], context: str,
                  batch: int = 64) -> np.ndarray:
    out, chunk = [], []
    for img in sample_images(samples, context):
        chunk.append(img)
        if len(chunk) == batch:
            out.append(embedder.embed_images(chunk))
            chunk = []
    if chunk:
        out.append(embedder.embed_images(chunk))
    return np.concatenate(out).astype(np.float32)


def labels(samples: list[Sample], cs: ConditionSet) -> np.ndarray:
    index = {v: i for i, v in enumerate(cs.values)}
    return np.array([index[s.value] for s in samples], np.int64)

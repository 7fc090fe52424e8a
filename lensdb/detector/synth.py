"""A YOLO-format detection dataset made in code: shapes pasted on textured backgrounds.

    data_yaml = make_shapes_dataset(Path("shapes"), SynthConfig(train=200, val=50))

writes `shapes/images/{train,val}/*.png`, `shapes/labels/{train,val}/*.txt` (one
`class cx cy w h` line per object, normalised to [0, 1], exact: the box is the shape's own
pixel extent) and `shapes/data.yaml` (path, train, val, names) that ultralytics and every
`lensdb detector` command read. No package ships labelled YOLO data, so tests and demos
use this. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class SynthConfig:
    """What to generate."""

    train: int = 200  # training images
    val: int = 50  # validation images
    size: int = 96  # images are size x size pixels
    max_objects: int = 3  # 1..max_objects shapes per image
    min_side: float = 0.18  # smallest shape side, as a fraction of the image side
    max_side: float = 0.45  # largest shape side, as a fraction of the image side
    classes: tuple[str, ...] = CLASSES  # a subset (in this order) of circle, square, triangle
    seed: int = 0  # random seed: same seed, same files


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft noisy background with stripes, HxWx3 float in [0, 1]."""
    y, x = np.mgrid[0:size, 0:size] / size
    angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 8)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)))
    base = rng.uniform(0.25, 0.75, size=3)
    img = base[None, None, :] * 0.6 + 0.25 * stripes[..., None]
    img = img + rng.normal(0, 0.06, size=(size, size, 3))
    return np.clip(img, 0, 1)


def _mask(kind: str, size: int, x0: int, y0: int, side: int) -> np.ndarray:
    """Boolean mask of one shape whose bounding box is exactly [x0, x0+side) x [y0, ...)."""
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "square":
        return (xx >= x0) & (xx < x0 + side) & (yy >= y0) & (yy < y0 + side)
    if kind == "circle":
        r = side / 2
        cx, cy = x0 + r - 0.5, y0 + r - 0.5
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    else:  # triangle, apex up
        rel_y = (yy - y0 + 0.5) / side
        half = rel_y * side / 2
        cx = x0 + side / 2
        m = (rel_y >= 0) & (rel_y <= 1) & (np.abs(xx + 0.5 - cx) <= half)
    return m


def _exact_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def make_image(rng: np.random.Generator, c: SynthConfig) -> tuple[np.ndarray, list[tuple]]:
    """One image (HxWx3 uint8) and its labels [(class_id, cx, cy, w, h), ...] normalised."""
    size = c.size
    img = _texture(rng, size)
    labels: list[tuple] = []
    placed: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, c.max_objects + 1))):
        for _attempt in range(20):  # find a place that overlaps no earlier shape
            side = int(rng.uniform(c.min_side, c.max_side) * size)
            x0, y0 = (int(v) for v in rng.integers(0, size - side, size=2))
            box = (x0, y0, x0 + side, y0 + side)
            if all(box[2] <= p[0] or box[0] >= p[2] or box[3] <= p[1] or box[1] >= p[3]
                   for p in placed):
                break
        else:
            continue
        cls = int(rng.integers(0, len(c.classes)))
        mask = _mask(c.classes[cls], size, x0, y0, side)
        exact = _exact_box(mask)
        if exact is None:
            continue
        color = rng.uniform(0, 1, size=3)
        color[rng.integers(0, 3)] = rng.choice([0.02, 0.98])  # keep it saturated
        img[mask] = color
        placed.append(box)
        bx0, by0, bx1, by1 = exact
        labels.append((cls, (bx0 + bx1) / 2 / size, (by0 + by1) / 2 / size,
                       (bx1 - bx0) / size, (by1 - by0) / size))
    return (img * 255).round().astype(np.uint8), labels


def label_text(labels: list[tuple]) -> str:
    return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)


def write_data_yaml(root: Path, names: tuple[str, ...] | list[str],
                    splits: dict[str, str] | None = None) -> Path:
    """`root/data.yaml` in ultralytics' format (path, train, val, names as a mapping)."""
    import yaml

    splits = splits or {"train": "images/train", "val": "images/val"}
    doc = {"path": str(Path(root).resolve()), **splits,
           "names": {i: n for i, n in enumerate(names)}}
    path = Path(root) / "data.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def make_shapes_dataset(root: Path, config: SynthConfig = SynthConfig()) -> Path:
    """Write the dataset under `root`; returns the path of its data.yaml."""
    from PIL import Image

    unknown = [n for n in config.classes if n not in CLASSES]
    if unknown or not config.classes:
        raise ValueError(f"classes must be a subset of {CLASSES}, not {config.classes}")
    root = Path(root)
    rng = np.random.default_rng(config.seed)
    for split, n in (("train", config.train), ("val", config.val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, labels = make_image(rng, config)
            stem = f"{split}_{i:05d}"
            Image.fromarray(img).save(root / "images" / split / f"{stem}.png")
            (root / "labels" / split / f"{stem}.txt").write_text(label_text(labels))
    return write_data_yaml(root, config.classes)

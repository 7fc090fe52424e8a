"""Image-caption data made in code: coloured shapes, 1-3 of them, on a plain background.

    rows = make_shapes_dataset(Path("data"), n_images=300, seed=0)   # PNGs + captions.csv

Every image gets two captions ("two red circles", "a picture of 2 red circles"), so
image-to-text retrieval has several relevant captions per image. Tests, the benchmark and
the README's offline demo train the `lensdb-tiny` model on it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (40, 60, 230),
           "yellow": (235, 220, 30)}
SHAPES = ("circle", "square", "triangle")
WORDS = {1: "one", 2: "two", 3: "three"}


def _draw(img: np.ndarray, shape: str, cx: int, cy: int, r: int, colour) -> None:
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, colour, -1)
    elif shape == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
        cv2.fillPoly(img, [pts], colour)


def draw_shapes(rng: np.random.Generator, colour: str, shape: str, count: int,
                size: int = 48) -> np.ndarray:
    """An RGB uint8 image with `count` non-overlapping shapes on a grey-ish background."""
    img = np.full((size, size, 3), int(rng.integers(90, 140)), np.uint8)
    r = max(3, size // 9)
    placed: list[tuple[int, int]] = []
    tries = 0
    while len(placed) < count and tries < 500:
        tries += 1
        cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, size=2))
        if all(abs(cx - x) > 2 * r + 1 or abs(cy - y) > 2 * r + 1 for x, y in placed):
            placed.append((cx, cy))
    for cx, cy in placed:
        _draw(img, shape, cx, cy, r, COLOURS[colour])
    return img


def captions_for(colour: str, shape: str, count: int) -> list[str]:
    noun = shape + ("s" if count > 1 else "")
    return [f"{WORDS[count]} {colour} {noun}", f"a picture of {count} {colour} {noun}"]


def combinations() -> list[tuple[str, str, int]]:
    return [(c, s, n) for c in COLOURS for s in SHAPES for n in WORDS]


def make_shapes_dataset(out_dir: Path, n_images: int, seed: int = 0, size: int = 48,
                        prefix: str = "img", captions_per_image: int = 2) -> list[dict]:
    """Write `n_images` PNGs into `out_dir` (combinations cycled so each appears about
    equally) and `captions.csv` (image_path relative to out_dir, text). Returns the rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    combos = combinations()
    order = rng.permutation(n_images) % len(combos)
    rows = []
    for i, k in enumerate(order):
        colour, shape, count = combos[int(k)]
        name = f"{prefix}{i:04d}.png"
        img = draw_shapes(rng, colour, shape, count, size)
        cv2.imwrite(str(out_dir / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for text in captions_for(colour, shape, count)[:captions_per_image]:
            rows.append({"image_path": name, "text": text})
    with open(out_dir / "captions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image_path", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


# Real photos shipped in scikit-image (`pip install scikit-image`), captioned by hand.
PHOTO_CAPTIONS = {
    "astronaut.png": ("an astronaut in a white suit in front of a flag",
                      "a woman astronaut smiling"),
    "chelsea.png": ("a ginger cat", "a tabby cat looking to the side"),
    "coffee.png": ("a cup of coffee on a saucer", "a coffee cup seen from above"),
    "rocket.jpg": ("a rocket on the launch pad", "a space shuttle before launch"),
    "motorcycle_left.png": ("a red motorcycle in a garage", "a motorbike indoors"),
    "camera.png": ("a man with a camera on a tripod", "a black and white photographer"),
    "coins.png": ("old coins on a grey background", "rows of coins"),
    "brick.png": ("a brick wall", "grey bricks"),
    "grass.png": ("a close-up of grass", "blades of grass"),
    "gravel.png": ("a close-up of gravel", "small stones on the ground"),
    "moon.png": ("the surface of the moon", "craters on the moon"),
    "hubble_deep_field.jpg": ("galaxies in deep space", "a telescope image of the sky"),
    "retina.jpg": ("a photograph of a retina", "the back of an eye"),
    "page.png": ("a page of printed text", "a scanned book page"),
    "cell.png": ("cells under a microscope", "a microscope image of a cell"),
    "ihc.png": ("stained tissue under a microscope", "a purple and brown tissue sample"),
    "clock_motion.png": ("a blurred clock", "a clock face with motion blur"),
    "color.png": ("a colour chart", "bands of colour"),
}


def skimage_data_dir() -> Path:
    import importlib.util

    from lensdb.errors import LensDBError

    found = importlib.util.find_spec("skimage")
    if found is None or not found.submodule_search_locations:
        raise LensDBError("the photo demo needs scikit-image: pip install scikit-image")
    return Path(list(found.submodule_search_locations)[0]) / "data"


def make_photo_dataset(out_dir: Path, crops: int, seed: int = 0, size: int = 64,
                       prefix: str = "photo") -> list[dict]:
    """`crops` random crops (60-95% of the side, random flips) of each captioned
    scikit-image photo, resized to `size`, with both captions: captions.csv in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for name, texts in PHOTO_CAPTIONS.items():
        img = cv2.imread(str(skimage_data_dir() / name), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        for k in range(crops):
            s = rng.uniform(0.6, 0.95)
            ch, cw = int(h * s), int(w * s)
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crop = cv2.resize(img[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_AREA)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            file = f"{prefix}-{Path(name).stem}-{k}.png"
            cv2.imwrite(str(out_dir / file), crop)
            rows += [{"image_path": file, "text": t} for t in texts]
    with open(out_dir / "captions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image_path", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return rows

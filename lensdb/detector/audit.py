"""Audit a YOLO-format dataset before a long run.

    report = audit("data.yaml", splits=("train", "val"))
    report.defects            # [Defect(kind, split, file, line, detail), ...]
    report.splits["val"]      # images, boxes, class histogram, imbalance ratio, box sizes
    report.failed(strict=True)

Defect kinds (each fails `--strict`): unknown_class (an id past the names), val_class_missing
(a class in val/test that train never shows), image_without_label, label_without_image,
empty_line, malformed_line, box_out_of_range (a coordinate outside [0, 1] or a box that
leaves the image), zero_area_box, duplicate_image (the same bytes in two splits, by hash),
unreadable_image. Notes that are not defects: classes named but never used, background
images (an empty label file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.detector.data import label_path as image_label_path
from lensdb.detector.data import (
    load_data_yaml,
    parse_label_line,
    split_images,
    split_label_dirs,
)
from lensdb.models.base import file_digest

DEFECT_KINDS = ("unknown_class", "val_class_missing", "image_without_label",
                "label_without_image", "empty_line", "malformed_line", "box_out_of_range",
                "zero_area_box", "duplicate_image", "unreadable_image")
EPS = 1e-6  # tolerance on [0, 1] (labels are written with 6 decimals)


@dataclass(frozen=True)
class Defect:
    """One problem found."""

    kind: str  # one of DEFECT_KINDS
    split: str  # the split it was found in ("train", "val", ...)
    file: str  # the image or label file
    line: int = 0  # 1-based line in a label file; 0 when not about a line
    detail: str = ""  # what exactly


@dataclass
class SplitStats:
    """What one split holds."""

    images: int = 0  # image files
    labelled: int = 0  # images with at least one valid box
    background: int = 0  # images whose label file exists and is empty
    boxes: int = 0  # valid boxes
    histogram: dict[str, int] = field(default_factory=dict)  # class name -> boxes
    imbalance_ratio: float | None = None  # most / least frequent named class (None: one is 0)
    absent_classes: list[str] = field(default_factory=list)  # named classes with no box
    box_sizes: dict[str, float] = field(default_factory=dict)  # width/height/area stats


@dataclass
class AuditReport:
    """Everything `lensdb detector audit` prints."""

    data: str  # the data.yaml
    names: list[str]  # class names by id
    splits: dict[str, SplitStats]  # split -> stats
    defects: list[Defect]  # every defect, in the order found
    notes: list[str]  # observations that are not defects

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in DEFECT_KINDS}
        for d in self.defects:
            out[d.kind] += 1
        return out

    def failed(self, strict: bool) -> bool:
        return strict and bool(self.defects)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "names": self.names,
                "splits": {k: asdict(v) for k, v in self.splits.items()},
                "defect_counts": self.counts(), "defects": [asdict(d) for d in self.defects],
                "notes": self.notes}


def _file_hash(path: Path) -> str:
    return file_digest(path, None)


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any decoder failure means unreadable
        return None


def _box_defect(cx: float, cy: float, w: float, h: float) -> tuple[str, str] | None:
    if w <= 0 or h <= 0:
        return "zero_area_box", f"w={w:g} h={h:g}"
    vals = (cx, cy, w, h)
    outside = any(v < -EPS or v > 1 + EPS for v in vals)
    leaves = (cx - w / 2 < -EPS or cx + w / 2 > 1 + EPS or cy - h / 2 < -EPS
              or cy + h / 2 > 1 + EPS)
    if outside or leaves:
        return "box_out_of_range", f"cx={cx:g} cy={cy:g} w={w:g} h={h:g}"
    return None


def _size_stats(wh_px: list[tuple[float, float]], wh_norm: list[tuple[float, float]]):
    if not wh_px:
        return {}
    px, nm = np.array(wh_px), np.array(wh_norm)
    side = np.sqrt(px[:, 0] * px[:, 1])
    q = np.percentile
    return {"width_median": float(np.median(nm[:, 0])), "height_median": float(np.median(nm[:, 1])),
            "side_px_p5": float(q(side, 5)), "side_px_median": float(np.median(side)),
            "side_px_p95": float(q(side, 95)), "area_median": float(np.median(nm.prod(1))),
            "small_fraction": float(np.mean(side < 32)),  # COCO "small": under 32x32 px
            "aspect_median": float(np.median(nm[:, 0] / np.maximum(nm[:, 1], EPS)))}


def _audit_split(split: str, images: list[Path], label_dirs: list[Path], names: list[str],
                 defects: list[Defect], hashes: dict[str, tuple[str, str]]) -> SplitStats:
    stats = SplitStats(images=len(images))
    counts = np.zeros(len(names), int)
    wh_px: list[tuple[float, float]] = []
    wh_norm: list[tuple[float, float]] = []
    expected_labels = set()
    for img in images:
        lbl = image_label_path(img)
        expected_labels.add(lbl.resolve())
        size = _image_size(img)
        if size is None:
            defects.append(Defect("unreadable_image", split, str(img), 0, "cannot decode"))
        else:
            digest = _file_hash(img)
            if digest in hashes and hashes[digest][0] != split:
                other_split, other = hashes[digest]
                defects.append(Defect("duplicate_image", split, str(img), 0,
                                      f"same bytes as {other} in {other_split}"))
            hashes.setdefault(digest, (split, str(img)))
        if not lbl.exists():
            defects.append(Defect("image_without_label", split, str(img), 0,
                                  f"no {lbl.name} beside it in labels/"))
            continue
        valid = 0
        lines = lbl.read_text(errors="replace").splitlines()
        if all(not x.strip() for x in lines):
            stats.background += 1
            continue
        for no, raw in enumerate(lines, 1):
            if not raw.strip():
                defects.append(Defect("empty_line", split, str(lbl), no, "blank line"))
                continue
            row = parse_label_line(raw)
            if row is None:
                defects.append(Defect("malformed_line", split, str(lbl), no, raw.strip()[:60]))
                continue
            cls, cx, cy, w, h = row
            if cls >= len(names):
                defects.append(Defect("unknown_class", split, str(lbl), no,
                                      f"class {cls} but names has {len(names)} classes"))
                continue
            bad = _box_defect(cx, cy, w, h)
            if bad:
                defects.append(Defect(bad[0], split, str(lbl), no, bad[1]))
                continue
            valid += 1
            counts[cls] += 1
            wh_norm.append((w, h))
            if size is not None:
                wh_px.append((w * size[0], h * size[1]))
        stats.labelled += valid > 0
        stats.boxes += valid
    for d in label_dirs:
        for lbl in sorted(d.rglob("*.txt")):
            if lbl.resolve() not in expected_labels:
                defects.append(Defect("label_without_image", split, str(lbl), 0,
                                      "no image of this name in the split"))
    stats.histogram = {n: int(c) for n, c in zip(names, counts)}
    stats.absent_classes = [n for n, c in zip(names, counts) if c == 0]
    if counts.size and counts.min() > 0:
        stats.imbalance_ratio = float(counts.max() / counts.min())
    stats.box_sizes = _size_stats(wh_px, wh_norm)
    return stats


def audit(data_yaml: str | Path, splits: tuple[str, ...] | None = None) -> AuditReport:
    """Check every split named (default: all the yaml has) and return the report."""
    ds = load_data_yaml(data_yaml)
    chosen = tuple(splits) if splits else tuple(ds.splits)
    names = list(ds.names)
    defects: list[Defect] = []
    hashes: dict[str, tuple[str, str]] = {}
    stats: dict[str, SplitStats] = {}
    for split in chosen:
        images = split_images(ds, split)
        stats[split] = _audit_split(split, images, split_label_dirs(ds, split), names,
                                    defects, hashes)
    notes: list[str] = []
    if "train" in stats:
        train_has = {n for n, c in stats["train"].histogram.items() if c}
        for split in chosen:
            if split == "train":
                continue
            for n, c in stats[split].histogram.items():
                if c and n not in train_has:
                    defects.append(Defect("val_class_missing", split, str(ds.yaml_path), 0,
                                          f"class '{n}' has {c} box(es) in {split}, none in "
                                          "train"))
    used = {n for s in stats.values() for n, c in s.histogram.items() if c}
    unused = [n for n in names if n not in used]
    if unused:
        notes.append(f"classes named but never used: {', '.join(unused)}")
    for split, s in stats.items():
        if s.background:
            notes.append(f"{split}: {s.background} background image(s) (empty label file)")
    return AuditReport(str(ds.yaml_path), names, stats, defects, notes)

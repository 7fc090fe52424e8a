"""Reading a YOLO-format dataset the way ultralytics does: data.yaml, splits, label files.

    ds = load_data_yaml("shapes/data.yaml")     # DataSpec: root, names, split -> sources
    images = split_images(ds, "val")             # image paths of a split (folder or .txt list)
    label_path(images[0])                        # .../labels/val/x.txt (images -> labels)
    read_labels(label_path(images[0]))           # (n, 5) float32 rows: class cx cy w h

Every problem a user can cause (yaml that does not parse, no names, a split folder that is
not there) is a one-line LensDBError naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensdb.errors import LensDBError

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".dng", ".mpo")


@dataclass(frozen=True)
class DataSpec:
    """A parsed data.yaml."""

    yaml_path: Path  # the data.yaml itself
    root: Path  # the dataset root: `path:` resolved against the yaml's folder
    names: tuple[str, ...]  # class names by id
    splits: dict[str, tuple[Path, ...]]  # split -> its sources (folders or .txt lists)


def load_data_yaml(path: str | Path) -> DataSpec:
    import yaml

    path = Path(path)
    if path.is_dir():
        raise LensDBError(f"{path} is a folder; give its data.yaml")
    if not path.is_file():
        raise LensDBError(f"no such data.yaml: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise LensDBError(f"{path} does not parse as YAML{line}") from None
    if not isinstance(doc, dict):
        raise LensDBError(f"{path} is not a YAML mapping with train/val/names")
    names = _names(doc.get("names"), path)
    root = Path(doc.get("path") or ".")
    root = root if root.is_absolute() else (path.parent / root)
    splits: dict[str, tuple[Path, ...]] = {}
    for split in ("train", "val", "test"):
        value = doc.get(split)
        if value in (None, ""):
            continue
        items = value if isinstance(value, list) else [value]
        sources = []
        for item in items:
            src = Path(str(item))
            sources.append(src if src.is_absolute() else root / src)
        splits[split] = tuple(sources)
    if "train" not in splits and "val" not in splits:
        raise LensDBError(f"{path} names neither a train nor a val split")
    return DataSpec(path, root, names, splits)


def _names(value, path: Path) -> tuple[str, ...]:
    if isinstance(value, dict) and value:
        try:
            ids = sorted(int(k) for k in value)
        except (TypeError, ValueError):
            raise LensDBError(f"{path}: names keys must be class ids 0..n-1") from None
        if ids != list(range(len(ids))):
            raise LensDBError(f"{path}: names ids must be 0..{len(ids) - 1} without gaps")
        by_id = {int(k): v for k, v in value.items()}
        return tuple(str(by_id[i]) for i in ids)
    if isinstance(value, list) and value:
        return tuple(str(v) for v in value)
    raise LensDBError(f"{path} has no class names (a `names:` list or id: name mapping)")


def split_sources(ds: DataSpec, split: str) -> tuple[Path, ...]:
    if split not in ds.splits:
        known = ", ".join(ds.splits) or "none"
        raise LensDBError(f"{ds.yaml_path} has no '{split}' split (it has: {known})")
    for src in ds.splits[split]:
        if not src.exists():
            raise LensDBError(f"{ds.yaml_path}: the {split} split names {src}, which is "
                              "not there")
    return ds.splits[split]


def split_images(ds: DataSpec, split: str) -> list[Path]:
    """Image files of a split, sorted: every image under its folders (recursively) and
    every line of its .txt lists (relative lines are relative to the dataset root)."""
    out: list[Path] = []
    for src in split_sources(ds, split):
        if src.is_dir():
            out.extend(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif src.suffix == ".txt":
            for line in src.read_text().splitlines():
                line = line.strip()
                if line:
                    p = Path(line)
                    out.append(p if p.is_absolute() else ds.root / p)
        else:
            out.append(src)
    return sorted(out)


def label_path(image: Path) -> Path:
    """ultralytics' rule: the last `/images/` in the path becomes `/labels/`, suffix .txt."""
    s = str(image)
    sep = f"{os.sep}images{os.sep}"
    head, found, tail = s.rpartition(sep)
    if not found:
        return image.with_suffix(".txt")
    return Path(head + f"{os.sep}labels{os.sep}" + tail).with_suffix(".txt")


def split_label_dirs(ds: DataSpec, split: str) -> list[Path]:
    """Label folders that mirror a split's image folders (for finding orphan labels)."""
    dirs = []
    for src in split_sources(ds, split):
        if src.is_dir():
            d = label_path(src / "x.png").parent
            if d.is_dir():
                dirs.append(d)
    return dirs


def parse_label_line(line: str) -> tuple[int, float, float, float, float] | None:
    """`class cx cy w h` -> a tuple, or None when malformed (wrong count, not numbers,
    a class id that is not a non-negative integer)."""
    parts = line.split()
    if len(parts) != 5:
        return None
    try:
        cls_f = float(parts[0])
        vals = [float(v) for v in parts[1:]]
    except ValueError:
        return None
    if cls_f < 0 or cls_f != int(cls_f) or not all(np.isfinite(vals)):
        return None
    return int(cls_f), vals[0], vals[1], vals[2], vals[3]


def read_labels(path: Path) -> np.ndarray:
    """(n, 5) float32 [class, cx, cy, w, h]; a missing file is an image without objects;
    malformed lines are skipped (the audit reports them)."""
    if not path.exists():
        return np.zeros((0, 5), np.float32)
    rows = [r for r in (parse_label_line(x) for x in path.read_text().splitlines()) if r]
    return np.array(rows, np.float32).reshape(-1, 5)

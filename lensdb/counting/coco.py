"""Two-stage training: pre-train count MLPs on COCO images, then fine-tune on the store.

`--pretrain-coco ANNOTATIONS.json --coco-images DIR`: persons (category 1) and cars
(category 3) are counted per image (crowd regions left out), the images are embedded with
the store's embedder and passed through the store's codec, like the store's own vectors.
Embeddings are cached under the store, keyed by embedder id and the annotation file's hash,
so a second run does not embed again.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.counting.config import TrainConfig
from lensdb.counting.train import Progress, fit_mlp
from lensdb.errors import EmbedderMismatchError, LensDBError, first_line
from lensdb.storage import Store

COCO_CATEGORIES = {"person": 1, "car": 3}
EMBED_BATCH = 16


@dataclass
class CocoSet:
    """Per-image counts of a COCO instances file."""

    path: Path
    file_names: list[str]
    counts: dict[str, np.ndarray]  # class -> (n_images,) float32


def _not_coco(path: Path, why: str) -> LensDBError:
    return LensDBError(f"{path} is not a COCO instances file ({why})")


def read_coco(path: str | Path) -> CocoSet:
    """Counts of persons and cars per image; a one-line error for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LensDBError(f"COCO annotation file {path} does not exist")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_coco(path, f"not JSON: {first_line(exc, 80)}")
    if not isinstance(data, dict):
        raise _not_coco(path, "top level is not an object")
    images, annotations = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise _not_coco(path, "needs 'images' and 'annotations' lists")
    if not images:
        raise _not_coco(path, "no images listed")
    index: dict[Any, int] = {}
    names: list[str] = []
    for image in images:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise _not_coco(path, "an image lacks 'id' or 'file_name'")
        index[image["id"]] = len(names)
        names.append(str(image["file_name"]))
    counts = {cls: np.zeros(len(names), np.float32) for cls in COCO_CATEGORIES}
    by_category = {cat: cls for cls, cat in COCO_CATEGORIES.items()}
    for ann in annotations:
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
            raise _not_coco(path, "an annotation lacks 'image_id' or 'category_id'")
        if ann["image_id"] not in index:
            raise _not_coco(path, f"an annotation names unknown image {ann['image_id']!r}")
        cls = by_category.get(ann["category_id"])
        if cls is not None and not ann.get("iscrowd", 0):
            counts[cls][index[ann["image_id"]]] += 1
    return CocoSet(path, names, counts)


def _digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def cache_path(store: Store, embedder_id: str, annotations: Path) -> Path:
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder_id)
    return store.root / "cache" / "coco" / f"{key}-{_digest(annotations)}.npy"


def store_embedder(store: Store) -> Any:
    """The embedder that made the store's vectors; refuses weights with another id."""
    from lensdb.models.registry import get_embedder

    meta = store.meta()
    if "embedder_id" not in meta:
        raise LensDBError("the store has no vectors yet; ingest a video first")
    embedder = get_embedder(meta["embedder_name"])
    _check_embedder(embedder, meta["embedder_id"])
    return embedder


def _check_embedder(embedder: Any, expected: str) -> None:
    if embedder.model_id != expected:
        raise EmbedderMismatchError(
            f"the store's vectors come from '{expected}', the embedder here is "
            f"'{embedder.model_id}'; COCO images must be embedded by the same weights"
        )


def coco_vectors(
    store: Store,
    coco: CocoSet,
    images_dir: str | Path,
    embedder: Any | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, bool]:
    """(embeddings of the COCO images as the store's codec gives them back, from cache?)."""
    from lensdb.counting.registry import decode_like_store

    meta = store.meta()
    embedder = embedder or store_embedder(store)
    _check_embedder(embedder, meta["embedder_id"])
    path = cache_path(store, meta["embedder_id"], coco.path)
    cached = path.exists()
    if cached:
        vectors = np.load(path, allow_pickle=False)
        cached = vectors.shape == (len(coco.file_names), int(meta["dim"]))
    if not cached:
        vectors = _embed_all(embedder, coco.file_names, Path(images_dir), progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, vectors)
        os.replace(tmp, path)
    return decode_like_store(store.codec(), vectors), cached


def _embed_all(
    embedder: Any, names: list[str], images_dir: Path, progress: Progress | None
) -> np.ndarray:
    import cv2

    if not images_dir.is_dir():
        raise LensDBError(f"--coco-images {images_dir} is not a folder")
    out = []
    for start in range(0, len(names), EMBED_BATCH):
        batch = []
        for name in names[start : start + EMBED_BATCH]:
            image = cv2.imread(str(images_dir / name), cv2.IMREAD_COLOR)
            if image is None:
                raise LensDBError(f"COCO image {name} is missing or unreadable in {images_dir}")
            batch.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        out.append(np.asarray(embedder.embed_images(batch), np.float32))
        if progress:
            progress("coco: embed images", min(start + EMBED_BATCH, len(names)), len(names))
    return np.concatenate(out)


def pretrain_states(
    vectors: np.ndarray,
    coco: CocoSet,
    classes: list[str],
    config: TrainConfig,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """class -> state dict of an MLP pre-trained on COCO, for the classes COCO counts."""
    n = len(vectors)
    if n < 4:
        raise LensDBError(f"{coco.path} lists {n} images; pretraining needs at least 4")
    order = np.random.default_rng(config.seed).permutation(n)
    n_val = max(1, int(round(0.1 * n)))
    val, fit = order[:n_val], order[n_val:]
    states: dict[str, dict] = {}
    for cls in classes:
        if cls not in coco.counts:
            continue
        y = coco.counts[cls]
        result = fit_mlp(
            vectors[fit], y[fit], vectors[val], y[val], config.pretrain,
            size=config.size, dropout=config.dropout, loss=config.loss, seed=config.seed,
            progress=progress, task=f"{cls}: pretrain on COCO", device=config.device,
        )
        states[cls] = result.model.state_dict()
    return states

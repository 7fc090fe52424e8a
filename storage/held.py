"""Frames held for a codec that cannot train yet, kept between ingests.

An IVF (or PQ) codec trains on a minimum of vectors. An ingest that ends short of it does
not fail: the writer keeps what it holds in one file, `held.npz` in the store (every batch's
frames, detections and raw float32 vectors, and each video's final status; numpy arrays
and JSON only, read back without pickle) and marks those videos `held`. The next ingest's
writer starts from them, counts them towards the minimum, and commits them first once the
codec is trained; then the file goes. A held video ingested again is decoded again from its
start, and the writer drops what it held of it. It is written whole to a temporary file and renamed,
so it is either the old set or the new one. A batch already in the catalog (a crash after
its commit, before the file went) is skipped on load, so no frame is committed twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.storage.vectors import fsync_dir

HELD_FILE = "held.npz"


def path(root: Path) -> Path:
    return Path(root) / HELD_FILE


def exists(root: Path) -> bool:
    return path(root).exists()


def embedder(root: Path) -> str | None:
    """The embedder id of the held vectors (None: nothing held)."""
    return str(_meta(root)["embedder_id"]) if exists(root) else None


def frames(root: Path) -> int:
    """How many frames are held."""
    return sum(len(b["frames"]) for b in _meta(root)["items"] if b["kind"] == "batch") \
        if exists(root) else 0


def save(root: Path, items: list, embedder_id: str) -> None:
    """Replace the held set with `items` (Batch and Finish objects, in commit order)."""
    arrays: dict[str, Any] = {}  # name -> array (Any: savez takes them as keywords)
    listed: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not hasattr(item, "frames"):  # a Finish: the video's status once committed
            listed.append({"kind": "finish", "video_id": item.video_id,
                           "status": item.status, "message": item.message})
            continue
        rows = item.frames
        dets = [f.detections for f in rows if f.detections is not None]
        arrays[f"v{i}"] = np.asarray(item.vectors, np.float32)
        arrays[f"b{i}"] = (np.concatenate([d.boxes for d in dets]) if dets
                           else np.zeros((0, 4), np.float32)).astype(np.float32)
        arrays[f"s{i}"] = (np.concatenate([d.scores for d in dets]) if dets
                           else np.zeros(0, np.float32)).astype(np.float32)
        arrays[f"c{i}"] = np.array([c for d in dets for c in d.class_names], dtype=str)
        listed.append({"kind": "batch", "video_id": item.video_id,
                       "frames": [[f.frame_index, f.ts, None if f.detections is None
                                   else len(f.detections)] for f in rows]})
    arrays["meta"] = np.array(json.dumps({"embedder_id": embedder_id, "items": listed}))
    target = path(root)
    tmp = target.with_name(f".{HELD_FILE}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, allow_pickle=False, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    fsync_dir(target.parent)


def load(root: Path, committed: Callable[[list[tuple[int, int]]], set[tuple[int, int]]],
         finish: Callable[[int, str, str | None], Any]) -> list:
    """The held batches and the writer's final statuses (made by `finish(video_id, status,
    message)`), in order, without the batches whose first frame `committed` finds in the
    catalog already (it gets every batch's (video_id, frame_index) at once)."""
    from lensdb.storage.store import Batch, FrameRow
    from lensdb.types import Detections

    if not exists(root):
        return []
    out: list = []
    with np.load(path(root), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        firsts = [(int(i["video_id"]), int(i["frames"][0][0])) for i in meta["items"]
                  if i["kind"] == "batch"]
        done = committed(firsts) if firsts else set()
        for i, item in enumerate(meta["items"]):
            if item["kind"] == "finish":
                out.append(finish(item["video_id"], item["status"], item["message"]))
                continue
            if (int(item["video_id"]), int(item["frames"][0][0])) in done:
                continue
            boxes, scores, names = data[f"b{i}"], data[f"s{i}"], data[f"c{i}"].tolist()
            rows, at = [], 0
            for index, ts, n in item["frames"]:
                det = None if n is None else Detections(boxes[at:at + n], scores[at:at + n],
                                                        tuple(names[at:at + n]))
                at += n or 0
                rows.append(FrameRow(int(index), float(ts), det))
            out.append(Batch(item["video_id"], rows, data[f"v{i}"]))
    return out


def drop_video(root: Path, video_id: int, finish: Callable[[int, str, str | None], Any]) -> None:
    """Forget what is held of a video (it is being ingested again, from its start), at once:
    were the run to die later, the next one must not commit those frames beside the new."""
    if not exists(root):
        return
    items = [i for i in load(root, lambda firsts: set(), finish) if i.video_id != video_id]
    if any(hasattr(i, "frames") for i in items):
        save(root, items, str(_meta(root)["embedder_id"]))
    else:
        clear(root)


def clear(root: Path) -> None:
    path(root).unlink(missing_ok=True)


def _meta(root: Path) -> dict:
    with np.load(path(root), allow_pickle=False) as data:
        return json.loads(str(data["meta"]))

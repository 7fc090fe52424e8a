"""`reembed`: give a store a new vector space (a fine-tuned embedder, say) without running
the detector again.

The new space is built beside the store, in a sibling folder `.NAME.reembed`: a copy of the
catalog (frames, detections, counts, labels stay as they are) whose frames are re-decoded
from their recorded source paths, embedded with the new model and committed batch by batch
(segment file first, then one transaction that lists it). The count models of the classes
that had one are retrained in the new space. Then the two folders are swapped in one
atomic `renameat2(RENAME_EXCHANGE)`, and the old one is removed.

Crash-safe and resumable: until the swap the store is not written at all; the work folder
records what it was built from, so a rerun resumes it (or starts over when the store moved
on since). After the swap the store is the new one, whole. The store's writer lock is held
throughout, so no ingest runs meanwhile; readers keep answering from the old space.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lensdb.errors import LensDBError, ParameterError, StoreError
from lensdb.runs import atomic_write_text

STATE = "reembed.json"
SKIP = {"vectors", ".writer.lock", ".catalog.lock", ".catalog.gate"}
CODEC_SAMPLE = 2048  # vectors a codec that needs training is trained on


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise StoreError("reembed needs renameat2 (Linux 3.15+, glibc 2.28+) to switch "
                         "atomically")
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise StoreError(f"cannot swap {a} and {b}: {os.strerror(err)}")


def _fingerprint(store) -> dict[str, Any]:
    with store.catalog.connect() as con:
        frames, max_id, max_seg, labelled = con.execute(
            "SELECT count(*), coalesce(max(frame_id), -1), (SELECT coalesce(max(segment_id), -1)"
            " FROM segments), count(*) FILTER (WHERE labelled) FROM frames").fetchone()
    return {"frames": int(frames), "max_frame_id": int(max_id), "max_segment": int(max_seg),
            "labelled": int(labelled), "embedder_id": store.meta().get("embedder_id")}


def _prepare(store, work: Path, state: dict[str, Any]) -> None:
    """A fresh work folder: the store without its vectors, frames marked not embedded."""
    tmp = work.with_name(work.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with store.catalog.connect(write=True) as con:
        con.execute("CHECKPOINT")  # the file alone holds every committed row
    shutil.copytree(store.root, tmp, ignore=lambda d, names: [
        n for n in names if Path(d) == store.root and n in SKIP])
    from lensdb.storage import Store

    new = Store.open(tmp)
    new.vectors.ensure()
    with new.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM segments")
        con.execute("UPDATE frames SET segment_id = NULL")
        con.execute("DELETE FROM meta WHERE key IN ('embedder_id', 'embedder_name', "
                    "'embedder_spec', 'dim')")
        con.execute("COMMIT")
    atomic_write_text(tmp / STATE, json.dumps(state, indent=2))
    os.rename(tmp, work)


def _commit_vectors(store, codec, ids: np.ndarray, vecs: np.ndarray, seg_id: int) -> None:
    name = store.vectors.write_segment(codec, vecs, ids)
    try:
        with store.catalog.connect(write=True) as con:
            con.execute("BEGIN")
            con.execute("INSERT INTO segments VALUES (?, ?, ?, now())", [seg_id, name, len(ids)])
            con.register("done_ids", pa.table({"frame_id": ids}))
            con.execute("UPDATE frames SET segment_id = ? WHERE frame_id IN "
                        "(SELECT frame_id FROM done_ids)", [seg_id])
            con.execute("COMMIT")
    except BaseException:
        store.vectors.remove(name)
        raise


def _videos_todo(store) -> list[tuple[int, str, dict[int, int]]]:
    with store.catalog.connect() as con:
        rows = con.execute("SELECT v.video_id, v.path, f.frame_index, f.frame_id FROM frames f "
                           "JOIN videos v USING (video_id) WHERE f.segment_id IS NULL "
                           "ORDER BY v.video_id, f.frame_index").fetchall()
    out: dict[int, tuple[str, dict[int, int]]] = {}
    for vid, path, index, fid in rows:
        out.setdefault(int(vid), (str(path), {}))[1][int(index)] = int(fid)
    return [(vid, path, todo) for vid, (path, todo) in out.items()]


def _embed_all(new, embedder, spec: str, first_seg: int, batch_size: int, progress) -> int:
    from lensdb.frames import Sampler, iter_frames
    from lensdb.media import is_live

    videos = _videos_todo(new)
    for _, path, _ in videos:
        if is_live(path) or not Path(path).exists():
            raise LensDBError(f"the source video {path} is gone (or a live stream): reembed "
                              "decodes every stored frame again from its recorded path")
    codec = new.vectors.read_codec() if new.vectors.has_codec() else None
    if codec is None:
        new.bind_space(embedder.model_id, embedder.dim, new.meta().get("codec"), spec)
    with new.catalog.connect() as con:
        seg = max(first_seg, int(con.execute("SELECT coalesce(max(segment_id), -1) + 1 FROM "
                                              "segments").fetchone()[0]))
    pending: list[tuple[int, np.ndarray]] = []  # (frame id, vector) not committed yet
    done = 0

    def flush(force: bool) -> None:
        nonlocal codec, seg, pending, done
        if not pending or (codec is None and not force and len(pending) < CODEC_SAMPLE):
            return
        ids = np.array([p[0] for p in pending], np.int64)
        vecs = np.stack([p[1] for p in pending]).astype(np.float32)
        if codec is None:
            codec = new.codec(vecs)
        _commit_vectors(new, codec, ids, vecs, seg)
        seg, done, pending = seg + 1, done + len(ids), []
        progress({"kind": "batch", "frames": done})

    for vid, path, todo in videos:
        batch: list[tuple[int, np.ndarray]] = []
        for frame in iter_frames(path, Sampler(1), vid, start_after_index=min(todo) - 1):
            fid = todo.pop(frame.index, None)
            if fid is not None:
                batch.append((fid, frame.rgb))
            if len(batch) == batch_size or (batch and not todo):
                vecs = embedder.embed_images([b[1] for b in batch])
                pending += list(zip([b[0] for b in batch], vecs))
                batch = []
                flush(False)
            if not todo:
                break
        if todo:
            raise LensDBError(f"{path} decoded to fewer frames than the store holds "
                              f"({len(todo)} missing): is it the same video?")
    flush(True)
    return done


def reembed(store_path: str | Path | None, embedder: str, batch_size: int = 32,
            retrain: bool = True, progress=None) -> dict[str, Any]:
    """Rebuild the store's vectors with `embedder` and switch to them atomically."""
    from lensdb.models.registry import get_embedder
    from lensdb.storage import Store

    if batch_size < 1:
        raise ParameterError("batch_size", f"must be at least 1, not {batch_size}")
    progress = progress or (lambda e: None)
    store = Store.open(store_path)
    root = store.root.resolve()
    work = root.with_name(f".{root.name}.reembed")
    from lensdb.models.resolve import resolve_embedder

    embedder = resolve_embedder(embedder).spec  # canonical: a checkpoint by its real path
    emb = get_embedder(embedder)
    with store.writer():
        old = _fingerprint(store)
        if old["embedder_id"] == emb.model_id:
            shutil.rmtree(work, ignore_errors=True)  # what a swap that finished left
            return {"store": str(root), "embedder_id": emb.model_id, "frames": 0,
                    "note": "the store already holds this embedder's vectors"}
        if old["frames"] == 0:
            raise LensDBError("the store has no frames to re-embed")
        state = {"from": old, "embedder_id": emb.model_id, "spec": embedder}
        resumed = (work / STATE).exists() and json.loads((work / STATE).read_text()) == state
        if not resumed:
            shutil.rmtree(work, ignore_errors=True)
            _prepare(store, work, state)
        new = Store.open(work)
        with new.writer():
            done = _embed_all(new, emb, embedder, old["max_segment"] + 1, batch_size, progress)
            new.maybe_compact()
        classes: list[str] = []
        if retrain:
            with store.catalog.connect() as con:
                classes = [r[0] for r in con.execute(
                    "SELECT DISTINCT class FROM count_models WHERE active ORDER BY 1").fetchall()]
            if classes:
                from lensdb.counting import TrainConfig, train_counters

                progress({"kind": "retrain", "classes": classes})
                train_counters(new, TrainConfig(classes=tuple(classes)))
        exchange(root, work)
    shutil.rmtree(work, ignore_errors=True)  # the old space, now at the work path
    return {"store": str(root), "embedder_id": emb.model_id, "previous": old["embedder_id"],
            "frames": old["frames"], "embedded_now": done, "resumed": resumed,
            "retrained": classes}

"""The oracle: the store's own detector, run again on chosen stored frames, its output stored.

    oracle = Oracle(store)
    counts = oracle.label(frame_ids)   # {frame id: {class: n}}; runs the detector where needed

Each frame is decoded again from its source video (the path the videos table records, by the
frame's pts: `lensdb.media.FrameReader`), run through the detector and with the confidence
threshold that video was ingested with, and its detections and counts are committed as a
label (`Store.label_frames`, one transaction per batch, frames marked labelled). Frames that
are labelled already are read back, not detected again, so a re-run after a crash (kill -9)
finishes the job with nothing duplicated. Every source is checked before the first detector
run: a video that is gone, live, or changed since ingest (content hash) is a one-line error
and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lensdb.errors import LensDBError, VideoError
from lensdb.storage import Store

DEFAULT_CONF = 0.25  # what ingest used before stores recorded the threshold
ProgressFn = Callable[[int, int], None]  # (frames done, frames to do)


@dataclass(frozen=True)
class VideoSource:
    """How to decode a stored video's frames again and which detector labelled it."""

    video_id: int
    name: str
    path: str
    content_hash: str | None
    detector: str  # what to pass to get_detector
    detector_id: str | None  # model id recorded at ingest (name@weights hash)
    conf: float | None  # confidence threshold of the ingest (None: the detector's default)


def _sources(store: Store, video_ids: list[int]) -> dict[int, VideoSource]:
    if not video_ids:
        return {}
    with store.catalog.connect() as con:
        cur = con.execute("SELECT * FROM videos WHERE list_contains(?, video_id)",
                          [sorted(set(video_ids))])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    out = {}
    for row in rows:
        sampling = json.loads(row.get("sampling") or "{}")
        detector_id = row.get("detector_id")
        detector = sampling.get("detector") or (detector_id or "").split("@")[0]
        conf = row.get("conf", row.get("detector_conf"))  # the threshold used, if recorded
        if conf is None:  # else what was asked; None: the detector's default; no key: an
            conf = sampling.get("conf") if "conf" in sampling else DEFAULT_CONF  # old store
        out[int(row["video_id"])] = VideoSource(
            int(row["video_id"]), str(row.get("name") or row["video_id"]),
            str(row.get("path") or ""), row.get("content_hash"), detector, detector_id,
            float(conf) if conf is not None else None,
        )
    return out


def check_source(src: VideoSource, hash_check: bool = True) -> None:
    """Raise VideoError (one line) unless the video can be decoded again as ingested."""
    from lensdb.ingest_sources import source_changed
    from lensdb.media import is_live
    from lensdb.videos import recorded_file

    if not src.path or is_live(src.path):
        raise VideoError(f"video '{src.name}' was a live stream or stdin; its frames cannot be "
                         "decoded again to run the detector")
    if not Path(src.path).is_file():
        raise VideoError(f"the source video of '{src.name}' is gone ({src.path}); put it back "
                         "there to run the detector on its frames")
    recorded_file(src.path)  # a link made since ingest: not even hashed
    if hash_check and source_changed(src.path, src.content_hash):
        raise VideoError(f"the source video {src.path} changed since it was ingested "
                         "(content hash differs); its frames cannot be labelled from it")
    if not src.detector:
        raise LensDBError(f"video '{src.name}' records no detector; ingest it with one")


class Oracle:
    """Runs the store's detector on stored frames and stores what it found (see module doc).

    `detector`: a ready Detector to use instead of the recorded one (tests, benchmarks).
    `calls` counts detector runs made by this oracle."""

    def __init__(self, store: Store, detector: Any = None, batch_size: int = 16,
                 progress: ProgressFn | None = None):
        self.store = store
        self.batch_size = batch_size
        self.progress = progress or (lambda done, total: None)
        self._given = detector
        self._detectors: dict[tuple[str, float | None], Any] = {}
        self._checked: set[int] = set()
        self.calls = 0

    def _detector(self, src: VideoSource) -> Any:
        if self._given is not None:
            return self._given
        key = (src.detector, src.conf)
        if key not in self._detectors:
            from lensdb.models.registry import get_detector

            det = get_detector(src.detector, conf=src.conf)
            if src.detector_id and det.model_id != src.detector_id:
                raise LensDBError(
                    f"video '{src.name}' was labelled by detector '{src.detector_id}', the "
                    f"one found here is '{det.model_id}' (other weights); labels would mix "
                    "two detectors")
            self._detectors[key] = det
        return self._detectors[key]

    def frames(self, frame_ids: np.ndarray) -> list[tuple[int, int, float, bool]]:
        """(frame id, video id, ts, labelled) of the given stored frames; unknown ids fail."""
        ids = np.unique(np.asarray(frame_ids, np.int64).ravel())
        with self.store.catalog.connect() as con:
            con.register("wanted_ids", pa.table({"frame_id": ids}))
            rows = con.execute(
                "SELECT frame_id, video_id, ts, coalesce(labelled, false) FROM frames "
                "SEMI JOIN wanted_ids USING (frame_id) ORDER BY video_id, ts, frame_id"
            ).fetchall()
        if len(rows) != len(ids):
            missing = sorted(set(ids.tolist()) - {r[0] for r in rows})[:5]
            raise LensDBError(f"no stored frames with ids {missing}")
        return [(int(a), int(b), float(c), bool(d)) for a, b, c, d in rows]

    def check(self, frame_ids: np.ndarray) -> int:
        """Check every source the unlabelled ones of these frames need; how many need a run."""
        todo = [r for r in self.frames(frame_ids) if not r[3]]
        srcs = _sources(self.store, [r[1] for r in todo])
        for vid in sorted({r[1] for r in todo} - self._checked):
            if vid not in srcs:
                raise LensDBError(f"frame of video {vid} has no videos row; the store is damaged")
            check_source(srcs[vid])
            if self._given is None:
                self._detector(srcs[vid])
            self._checked.add(vid)
        return len(todo)

    def label(self, frame_ids: np.ndarray) -> dict[int, dict[str, int]]:
        """Counts per class for each frame: stored ones where labelled, else detected now and
        stored (one transaction per batch; holds the store's writer lock meanwhile)."""
        from lensdb.media import FrameReader

        rows = self.frames(frame_ids)
        self.check(np.array([r[0] for r in rows], np.int64))
        todo = [r for r in rows if not r[3]]
        srcs = _sources(self.store, [r[1] for r in todo])
        if todo:
            reader = FrameReader()
            try:
                with self.store.writer():
                    self._run(todo, srcs, reader)
            finally:
                reader.close()
        return stored_counts(self.store, [r[0] for r in rows])

    def _run(self, todo: list, srcs: dict[int, VideoSource], reader: Any) -> None:
        done = 0
        for start in range(0, len(todo), self.batch_size):
            part = todo[start:start + self.batch_size]
            # a crashed run may have labelled some of these since we looked: skip them
            fresh = {r[0] for r in self.frames(np.array([r[0] for r in part])) if not r[3]}
            part = [r for r in part if r[0] in fresh]
            by_video: dict[int, list] = {}
            for r in part:
                by_video.setdefault(r[1], []).append(r)
            ids, dets = [], []
            for vid, group in by_video.items():
                src = srcs[vid]
                images = [reader.frame_at(src.path, ts) for _, _, ts, _ in group]
                found = self._detector(src).detect(images)
                self.calls += len(images)
                ids += [r[0] for r in group]
                dets += list(found)
            self.store.label_frames(ids, dets)
            done += len(part)
            self.progress(done, len(todo))


def stored_counts(store: Store, frame_ids: list[int]) -> dict[int, dict[str, int]]:
    """{frame id: {class: n}} for labelled frames among `frame_ids` (0s are absent classes)."""
    ids = sorted({int(i) for i in frame_ids})
    out: dict[int, dict[str, int]] = {}
    with store.catalog.connect() as con:
        lab = con.execute("SELECT frame_id FROM frames WHERE labelled AND "
                          "list_contains(?, frame_id)", [ids]).fetchall()
        rows = con.execute("SELECT frame_id, class, sum(n)::BIGINT FROM counts "
                           "WHERE list_contains(?, frame_id) GROUP BY 1, 2", [ids]).fetchall()
    for (fid,) in lab:
        out[int(fid)] = {}
    for fid, cls, n in rows:
        if int(fid) in out:
            out[int(fid)][str(cls)] = int(n)
    return out


__all__ = ["Oracle", "VideoSource", "check_source", "stored_counts"]

"""The inputs of an ingest (either engine): the sources a command line names, a file's
identity, and each video's catalog row, new or resumed with the sampling it was begun with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lensdb import video_status as vs
from lensdb.config import IngestConfig
from lensdb.errors import VideoError
from lensdb.frames import is_url, open_source, probe
from lensdb.models.base import file_digest
from lensdb.storage.catalog import one_row
from lensdb.storage.store import Store
from lensdb.videos import rename_all

if TYPE_CHECKING:
    from lensdb.ingest import VideoReport


def store_models(store: Store, config: IngestConfig) -> IngestConfig:
    """`config` with the models the store already uses where it names none: the embedder
    that made its vectors, and the detector that labelled its latest video with that
    video's threshold (unless `conf` is given). A new store keeps the defaults."""
    changes: dict = {}
    if config.embedder is None and store.meta().get("embedder_spec"):
        changes["embedder"] = store.meta()["embedder_spec"]
    if config.detector is None:
        with store.catalog.connect() as con:
            row = con.execute("SELECT sampling FROM videos WHERE sampling IS NOT NULL "
                              "ORDER BY video_id DESC LIMIT 1").fetchone()
        sampling = json.loads(row[0]) if row else {}
        if sampling.get("detector"):
            changes["detector"] = sampling["detector"]
            if config.conf is None and sampling.get("conf") is not None:
                changes["conf"] = float(sampling["conf"])
    return replace(config, **changes)


def expand_sources(paths: Iterable[str]) -> list[str]:
    """Files, globs, URLs and '-' in the order given; a missing path is an error."""
    import glob

    out: list[str] = []
    for p in paths:
        if not p.strip():
            raise VideoError("an empty path; give a video file, a glob, a URL or - for stdin")
        if p == "-" or is_url(p):
            out.append(p)
        elif any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p))
            if not matches:
                raise VideoError(f"no files match {p}")
            out.extend(matches)
        elif Path(p).is_dir():
            raise VideoError(f"{p} is a directory; pass video files or a glob like '{p}/*.mp4'")
        elif not Path(p).exists():
            raise VideoError(f"no such file: {p}")
        else:
            out.append(p)
    return out


def content_hash(path: str) -> str:
    """A video's identity for resume and re-ingest: the sha256 of its bytes."""
    return file_digest(path, None)


def source_changed(path: str, recorded: str | None) -> bool:
    """Whether the file at `path` is no longer the video ingested with hash `recorded`
    (False when nothing was recorded or the file is not there)."""
    return bool(recorded) and Path(path).is_file() and content_hash(path) != recorded



def register_video(store: Store, source: str, config: IngestConfig, detector,
                   report: VideoReport, seen: set[int]) -> tuple | None:
    """(video id, last index, kept frames, last ts, sampling, info); None: nothing to do."""
    live = source == "-" or is_url(source)
    # stdin and live streams can be read once: probe and decode share one container
    container = open_source(source) if live else None
    try:
        info = probe(source, container, images=config.images)
    except VideoError:
        if container is not None:
            container.close()
        raise
    digest = None if live else content_hash(source)
    sampling = {**config.sampling(), "conf": detector.conf}  # the threshold actually used
    with store.catalog.connect(write=True) as con:
        row = None
        if digest:
            row = con.execute(
                "SELECT video_id, status, sampling FROM videos WHERE content_hash = ?", [digest]
            ).fetchone()
        if row and (row[1] in ("complete", "partial") or row[0] in seen):
            report.video_id, report.status = row[0], "skipped"
            report.message = f"already ingested ({row[1]})" if row[0] not in seen else \
                "the same video as an earlier input of this ingest"
            kept = vs.sampling_mismatch(json.loads(row[2] or "{}"), sampling)
            if kept is not None and row[0] not in seen:  # say so: the options asked go unused
                report.ingested_with = kept
                report.message += (f" with {vs.describe_sampling(kept)}; the sampling asked "
                                   "now was not applied (another store samples it anew)")
            return None
        if row:
            video_id = row[0]
            last = one_row(con.execute(
                "SELECT coalesce(max(frame_index), -1), count(*), coalesce(max(ts), -1) "
                "FROM frames WHERE video_id = ?", [video_id]
            ))
            recorded = json.loads(row[2])
            mismatch = vs.sampling_mismatch(recorded, sampling) if last[1] else None
            if mismatch is not None:  # its frames were sampled another way: no mixing
                report.video_id, report.ingested_with = video_id, mismatch
                raise VideoError(
                    f"{info.name} was ingested with {vs.describe_sampling(mismatch)}; resume "
                    "it with the same sampling (or ingest it into another store)")
            sampling = recorded if last[1] else sampling  # nothing stored yet: start afresh
            con.execute("UPDATE videos SET status = 'ingesting', message = NULL, sampling = ? "
                        "WHERE video_id = ?", [json.dumps(sampling), video_id])
        else:
            video_id = one_row(con.execute(
                "SELECT coalesce(max(video_id), -1) + 1 FROM videos"
            ))[0]
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO videos VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 'ingesting', ?, ?, NULL, now())",
                [video_id, info.name, source if live else str(Path(source).resolve()),
                 digest, info.fps, info.width, info.height, info.duration,
                 json.dumps(sampling), detector.model_id],
            )
            rename_all(con)  # names shown stay unique: a/clip.mp4 and b/clip.mp4
            con.execute("COMMIT")
            last = (-1, 0, -1.0)
    report.video_id = video_id
    seen.add(video_id)
    recorded_conf = sampling.get("conf")
    report.conf = float(recorded_conf) if recorded_conf is not None else detector.conf
    return video_id, int(last[0]), int(last[1]), float(last[2]), sampling, info, container

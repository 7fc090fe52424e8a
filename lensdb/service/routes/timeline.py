"""What the web view needs per video: the count timeline (decimated in SQL, so a long store
sends at most `points` buckets), the labelled frames' boxes in a time range, and the
source video itself (the store's own record of it: byte ranges, or a clip cut on demand).

Only the file the store recorded for a video is ever served; a request names a video id,
never a path, so nothing here goes through the path policy.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from lensdb.errors import LensDBError, VideoError
from lensdb.service.context import ServiceContext, context
from lensdb.service.errors import clean, responses
from lensdb.storage.catalog import one_row
from lensdb.videos import recorded_file

MAX_POINTS = 4000  # buckets one timeline answer may hold
MAX_BOX_FRAMES = 2000  # labelled frames one boxes answer may hold
MAX_CLIP_SECONDS = 30.0  # longest clip cut on demand
router = APIRouter(tags=["timeline"])
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
               ".webm": "video/webm", ".mkv": "video/x-matroska", ".ts": "video/mp2t",
               ".avi": "video/x-msvideo"}


def _video(con, video_id: int) -> dict:
    row = con.execute("SELECT video_id, name, path, fps, width, height, duration, status "
                      "FROM videos WHERE video_id = ?", [video_id]).fetchone()
    if row is None:
        raise HTTPException(404, f"no video {video_id}")
    keys = ("video_id", "name", "path", "fps", "width", "height", "duration", "status")
    return dict(zip(keys, row))


def _quote(cls: str) -> str:
    return "'" + cls.replace("'", "''") + "'"


def _error_bound(store, cls: str) -> float | None:
    """The 95% per-frame error bound of the class's predictions on held-out labels (what
    `avg(count(cls))` reports)."""
    from lensdb.query import run_query

    try:
        est = run_query(store, f"avg(count({_quote(cls)}))").estimate
        bound = ((est.get("classes") or {}).get(cls) or {}).get("p95_abs_error")
    except LensDBError:
        return None
    return float(bound) if bound is not None and math.isfinite(bound) else None


@router.get("/videos/{video_id}/timeline", summary="Counts over time, decimated",
            responses=responses(400, 401, 404, 422))
def timeline(video_id: int,
             start: float | None = Query(None, ge=0, le=1e9, description="seconds"),
             end: float | None = Query(None, ge=0, le=1e9, description="seconds"),
             points: int = Query(600, ge=2, le=MAX_POINTS,
                                 description="at most this many buckets per series"),
             classes: str | None = Query(None, max_length=4096,
                                         description="comma-separated; default all"),
             ctx: ServiceContext = Depends(context)) -> dict:
    """Per class: the predictions (mean, min, max per bucket, with the 95% error bound)
    and the detector's labels (mean per bucket and how many labelled frames)."""
    st = ctx.store()
    with st.catalog.connect() as con:
        video = _video(con, video_id)
        lo, hi = one_row(con.execute("SELECT min(ts), max(ts), count(*) FROM frames "
                                     "WHERE video_id = ?", [video_id]))[:2]
        lo, hi = (0.0, 0.0) if lo is None else (float(lo), float(hi))
        t0 = lo if start is None else start
        t1 = max(hi, t0) if end is None else end
        if t1 < t0:
            raise LensDBError("end must not be before start")
        known = [r[0] for r in con.execute(
            "SELECT DISTINCT class FROM (SELECT c.class FROM counts c JOIN frames f USING "
            "(frame_id) WHERE f.video_id = ? UNION SELECT p.class FROM predictions p JOIN "
            "frames f USING (frame_id) WHERE f.video_id = ?) ORDER BY 1",
            [video_id, video_id]).fetchall()]
        wanted = known if not classes else [c.strip() for c in classes.split(",") if c.strip()]
        unknown = sorted(set(wanted) - set(known))
        if unknown:  # none in this video is a true zero; none in the store, a typo
            stored = {r[0] for r in con.execute(
                "SELECT class FROM counts UNION SELECT class FROM predictions").fetchall()}
            missing = [c for c in unknown if c not in stored]
            if missing:
                listed = ", ".join(sorted(stored)[:20]) or "none"
                raise LensDBError(f"unknown class '{missing[0][:60]}'; known classes: {listed}")
        frames = one_row(con.execute("SELECT count(*), coalesce(sum(labelled::INT), 0) "
                                     "FROM frames WHERE video_id = ? AND ts BETWEEN ? AND ?",
                                     [video_id, t0, t1]))
        width = max((t1 - t0) / points, 1e-9)
        series, versions = {}, {}
        for cls in wanted:
            series[cls] = _series(con, video_id, cls, t0, t1, width, points)
            versions[cls] = one_row(con.execute(
                "SELECT (SELECT max(model_id) FROM count_models WHERE class = ?), "
                "(SELECT max(created_at) FROM count_models WHERE class = ?), "
                "(SELECT count(*) FROM frames WHERE labelled)", [cls, cls]))
    for cls in wanted:
        series[cls]["error_bound"] = (
            ctx.error_bound((cls, *versions[cls]), partial(_error_bound, st, cls))
            if series[cls]["predicted"]["t"] else None)
    video.pop("path")
    return clean({**video, "first": lo, "last": hi, "start": t0, "end": t1,
                  "bucket_seconds": width, "points": points,
                  "frames": int(frames[0]), "labelled_frames": int(frames[1]),
                  "classes": known, "series": series})


def _series(con, video_id: int, cls: str, t0: float, t1: float, width: float,
            points: int) -> dict:
    bucket = "least(floor((f.ts - ?) / ?), ?)::BIGINT"
    last = points - 1  # the end itself falls in the last bucket
    pred = con.execute(
        f"SELECT {bucket} AS b, min(f.ts), avg(p.value), min(p.value), max(p.value) "
        "FROM frames f JOIN predictions p ON p.frame_id = f.frame_id AND p.class = ? "
        "WHERE f.video_id = ? AND f.ts BETWEEN ? AND ? GROUP BY b ORDER BY b",
        [t0, width, last, cls, video_id, t0, t1]).fetchall()
    labels = con.execute(
        f"SELECT {bucket} AS b, min(f.ts), avg(coalesce(c.n, 0)), max(coalesce(c.n, 0)), "
        "count(*) FROM frames f LEFT JOIN counts c ON c.frame_id = f.frame_id AND c.class = ? "
        "WHERE f.video_id = ? AND f.labelled AND f.ts BETWEEN ? AND ? GROUP BY b ORDER BY b",
        [t0, width, last, cls, video_id, t0, t1]).fetchall()
    return {
        "predicted": {"t": [r[1] for r in pred], "mean": [r[2] for r in pred],
                      "min": [r[3] for r in pred], "max": [r[4] for r in pred]},
        "labels": {"t": [r[1] for r in labels], "mean": [r[2] for r in labels],
                   "max": [r[3] for r in labels], "frames": [r[4] for r in labels]},
    }


@router.get("/videos/{video_id}/boxes", summary="Labelled frames' boxes in a time range",
            responses=responses(400, 401, 404, 422))
def boxes(video_id: int, start: float = Query(0.0, ge=0, le=1e9),
          end: float = Query(1e9, ge=0, le=1e9), ctx: ServiceContext = Depends(context)) -> dict:
    """Each labelled frame in [start, end] (at most MAX_BOX_FRAMES, first in time) with its
    detections in source pixels."""
    with ctx.store().catalog.connect() as con:
        video = _video(con, video_id)
        rows = con.execute(
            "SELECT f.frame_id, f.ts, d.class, d.score, d.x1, d.y1, d.x2, d.y2 FROM "
            "(SELECT frame_id, ts FROM frames WHERE video_id = ? AND labelled AND ts BETWEEN "
            "? AND ? ORDER BY ts LIMIT ?) f LEFT JOIN detections d USING (frame_id) "
            "ORDER BY f.ts, d.score DESC", [video_id, start, end, MAX_BOX_FRAMES]).fetchall()
    frames: dict[int, dict] = {}
    for fid, ts, cls, score, *xyxy in rows:
        item = frames.setdefault(fid, {"frame_id": fid, "ts": ts, "boxes": []})
        if cls is not None:
            item["boxes"].append({"class": cls, "score": score, "box": xyxy})
    return clean({"video_id": video_id, "width": video["width"], "height": video["height"],
                  "frames": list(frames.values())})


@router.get("/videos/{video_id}/still", summary="The frame to show for a time range",
            responses=responses(400, 401, 404, 422))
def still(video_id: int, start: float = Query(0.0, ge=0, le=1e9),
          end: float | None = Query(None, ge=0, le=1e9),
          ctx: ServiceContext = Depends(context)) -> dict:
    """The stored frame nearest the middle of [start, end], labelled ones first (the one
    `lensdb export` shows), and whether the source video can still be read."""
    stop = start if end is None else end
    with ctx.store().catalog.connect() as con:
        video = _video(con, video_id)
        row = con.execute(
            "SELECT frame_id, ts, labelled FROM frames WHERE video_id = ? AND ts BETWEEN ? "
            "AND ? ORDER BY coalesce(labelled, false) DESC, abs(ts - ?), frame_id LIMIT 1",
            [video_id, start, stop, (start + stop) / 2]).fetchone()
        if row is None:
            row = con.execute("SELECT frame_id, ts, labelled FROM frames WHERE video_id = ? "
                              "ORDER BY abs(ts - ?), frame_id LIMIT 1",
                              [video_id, start]).fetchone()
    if row is None:
        raise HTTPException(404, f"video {video_id} has no stored frames")
    path = video["path"] or ""
    return {"video_id": video_id, "frame_id": int(row[0]), "ts": float(row[1]),
            "labelled": bool(row[2]), "thumbnail": f"/frames/{int(row[0])}.jpg",
            "source_available": os.path.isfile(path)}


def _source_file(ctx: ServiceContext, video_id: int) -> tuple[dict, str]:
    with ctx.store().catalog.connect() as con:
        video = _video(con, video_id)
    path = video["path"] or ""
    if not os.path.isfile(path):
        raise HTTPException(404, f"the source video of {video['name']} is missing "
                            "(moved or deleted since ingest, or a live stream)")
    try:
        return video, recorded_file(path)
    except VideoError as exc:
        raise HTTPException(404, str(exc)) from None


VIDEO_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}, "application/octet-stream": {}}},
            206: {"description": "Partial content (Range)"}}


RANGE = re.compile(r"^bytes=\s*(\d*)-(\d*)(\s*,\s*\d*-\d*)*$")


def _check_range(header: str | None, size: int) -> None:
    """A Range header's errors as JSON (Starlette answers them in plain text): 400 when it
    is malformed or a range ends before it starts, 416 when no range starts in the file."""
    if not header:
        return
    if not RANGE.match(header.strip()):
        raise LensDBError("Range header: expected bytes=START-END[, ...]")
    starts = []
    for part in header.strip()[6:].split(","):
        a, b = (x.strip() for x in part.split("-", 1))
        if not a and not b or (a and b and int(b) < int(a)):
            raise LensDBError(f"Range header: '{part.strip()[:40]}' is not a byte range")
        starts.append(int(a) if a else max(size - int(b), 0))
    if size and min(starts) >= size:
        raise HTTPException(416, f"Range header: the file has {size} bytes",
                            headers={"Content-Range": f"bytes */{size}"})


@router.get("/videos/{video_id}/file", summary="The source video (byte ranges)",
            response_class=Response,
            responses={**VIDEO_OK, **responses(400, 401, 404, 416, 422)})
def video_file(video_id: int, request: Request,
               ctx: ServiceContext = Depends(context)) -> Response:
    """The file the store recorded for the video, with HTTP Range support, so a video
    element can seek to a moment's start."""
    _, path = _source_file(ctx, video_id)
    _check_range(request.headers.get("range"), os.path.getsize(path))
    kind = VIDEO_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=kind)


@router.get("/videos/{video_id}/clip", summary="A clip of the source video cut on demand",
            response_class=Response,
            responses={200: {"content": {"video/mp4": {}}}, **responses(400, 401, 404, 422)})
def video_clip(video_id: int, start: float = Query(..., ge=0, le=1e9),
               end: float = Query(..., ge=0, le=1e9),
               ctx: ServiceContext = Depends(context)) -> Response:
    """[start, end] re-encoded as H.264 MP4 (at most MAX_CLIP_SECONDS); the clip's time 0
    is `start`."""
    from lensdb.media import cut_clip

    if end < start:
        raise LensDBError("end must not be before start")
    if end - start > MAX_CLIP_SECONDS:
        raise LensDBError(f"a clip is at most {MAX_CLIP_SECONDS:.0f} seconds long")
    _, path = _source_file(ctx, video_id)
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="lensdb-clip-")
    os.close(fd)
    try:
        cut_clip(path, start, end, Path(out))
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    return FileResponse(out, media_type="video/mp4",
                        background=BackgroundTask(Path(out).unlink, missing_ok=True))

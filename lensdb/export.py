"""What a query or a search found, as files: a JPEG per moment (decoded again from the
source video by seeking, detector boxes drawn on labelled frames), with `clips=True` an MP4
per moment, an index.html contact sheet linking them and an index.json listing them.

A moment shows its middle frame, or, when it has labelled frames, the labelled one nearest
the middle, so the boxes show what was counted; a search hit is a one-frame moment. Live
sources (URLs, stdin) cannot be decoded again: their moments get a note and no image.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import LensDBError, VideoError
from lensdb.media import FrameReader, cut_clip, draw_boxes, encode_jpeg, is_live
from lensdb.outputs import fresh_dir
from lensdb.storage.store import Store
from lensdb.videos import recorded_file, resolve

INDEX = "index.json"  # what marks a folder as an earlier export (and lists its files)
SINGLE_FRAME_CLIP = 1.0  # seconds on each side of a one-frame moment
MAX_CLIP = 30.0  # seconds; longer moments are cut around their middle


@dataclass
class Moment:
    """A stretch of one video to export; `frame_id` pins the frame to show."""

    video: str
    start: float
    stop: float
    frame_id: int | None = None
    video_id: int | None = None  # None: `video` is resolved like a query's `video = ...`
    caption: str = ""


@dataclass
class ExportReport:
    out_dir: str
    index: str
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_KNOWN = {"frame_id", "video_id", "video", "frame_index", "ts", "time", "start", "stop", "end",
          "labelled", "predicted", "by_prediction", "score", "counts", "frames", "n_predicted"}


def to_moments(items: Any) -> list[Moment]:
    """Moments from search hits, a QueryResult (moments or frames) or row dicts."""
    if getattr(items, "kind", None) == "aggregate":
        raise LensDBError("export needs frames or moments; an aggregate query has none "
                          "(drop the avg/sum/frames part and keep the predicate)")
    rows = items.rows if hasattr(items, "kind") else items
    out = []
    for row in rows:
        if isinstance(row, Moment):
            out.append(row)
            continue
        d = row.to_dict() if hasattr(row, "to_dict") else dict(row)
        values = {**(d.get("counts") or {}), **{k: v for k, v in d.items() if k not in _KNOWN}}
        bits = [f"score {d['score']:.3f}"] if d.get("score") is not None else []
        bits += [f"{d['frames']} frame{'s' * (d['frames'] != 1)}"] if d.get("frames") else []
        bits += [f"{k} {_num(v)}" for k, v in values.items()
                 if isinstance(v, int | float) and not isinstance(v, bool)]
        vid = int(d["video_id"]) if d.get("video_id") is not None else None
        if d.get("frame_id") is not None:
            t0 = t1 = float(d.get("ts", d.get("time", 0.0)))
        elif "start" in d and ("end" in d or "stop" in d):
            t0, t1 = float(d["start"]), float(d["stop"] if "stop" in d else d["end"])
        else:
            raise LensDBError("export takes search hits or a query's moments or frames")
        fid = int(d["frame_id"]) if d.get("frame_id") is not None else None
        out.append(Moment(str(d.get("video", "")), t0, t1, fid, vid, ", ".join(bits)))
    return out


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"


_COLS = ("SELECT f.frame_id, f.video_id, f.ts, coalesce(f.labelled, false), v.path FROM frames "
         "f JOIN videos v USING (video_id) ")


def pick_frame(store: Store, m: Moment) -> tuple[int, int, float, bool, str] | None:
    """(frame id, video id, ts, labelled, source) of the frame to show for a moment."""
    with store.catalog.connect() as con:
        if m.frame_id is not None:
            row = con.execute(_COLS + "WHERE f.frame_id = ?", [m.frame_id]).fetchone()
        else:
            video_id = m.video_id if m.video_id is not None else _video_id(con, m.video)
            row = None if video_id is None else con.execute(
                _COLS + "WHERE f.video_id = ? AND f.ts BETWEEN ? AND ? ORDER BY "
                "coalesce(f.labelled, false) DESC, abs(f.ts - ?), f.frame_id LIMIT 1",
                [video_id, m.start, m.stop, (m.start + m.stop) / 2],
            ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), float(row[2]), bool(row[3]),
                                     str(row[4]))


def _video_id(con, text: str) -> int | None:
    """The id of the video a name or path means (QueryError when it could be several)."""
    rows = con.execute("SELECT video_id, name, path FROM videos").fetchall()
    name = resolve(text, rows)
    return next((r[0] for r in rows if r[1] == name), None) if name is not None else None


def detections(store: Store, frame_id: int) -> list[tuple[str, float, tuple[float, ...]]]:
    with store.catalog.connect() as con:
        rows = con.execute("SELECT class, score, x1, y1, x2, y2 FROM detections "
                           "WHERE frame_id = ? ORDER BY score DESC", [frame_id]).fetchall()
    return [(r[0], float(r[1]), tuple(float(v) for v in r[2:])) for r in rows]


def render_frame(store: Store, frame_id: int, boxes: bool = True,
                 reader: FrameReader | None = None) -> np.ndarray:
    """A stored frame decoded again from its source video, with its boxes drawn."""
    picked = pick_frame(store, Moment("", 0.0, 0.0, int(frame_id)))
    if picked is None:
        raise LensDBError(f"no frame with id {frame_id}")
    _, _, ts, labelled, source = picked
    if not is_live(source):
        recorded_file(source)
    own, reader = reader is None, reader or FrameReader()
    try:
        rgb = reader.frame_at(source, ts)
    finally:
        if own:
            reader.close()
    return draw_boxes(rgb, detections(store, int(frame_id))) if boxes and labelled else rgb


def frame_jpeg(store: Store, frame_id: int, boxes: bool = True) -> bytes:
    return encode_jpeg(render_frame(store, frame_id, boxes))


def _safe(name: str) -> str:
    stem = Path(name.rstrip("/")).stem or "video"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:40]


def clip_range(m: Moment, pad: float) -> tuple[float, float]:
    start, stop = m.start - pad, m.stop + pad
    if m.stop - m.start <= 0:
        start, stop = m.start - max(pad, SINGLE_FRAME_CLIP), m.stop + max(pad, SINGLE_FRAME_CLIP)
    if stop - start > MAX_CLIP:
        mid = (m.start + m.stop) / 2
        start, stop = mid - MAX_CLIP / 2, mid + MAX_CLIP / 2
    return max(0.0, start), stop


def export(store: Store, hits_or_moments: Any, out_dir: str | Path, clips: bool = False,
           boxes: bool = True, pad: float = 0.5, overwrite: bool = False) -> ExportReport:
    """Write a JPEG (and with `clips` an MP4) per moment plus index.html and index.json into
    a new or empty folder, or, with `overwrite`, in place of an earlier export there."""
    if not (math.isfinite(pad) and pad >= 0):
        raise LensDBError(f"pad must be 0 or more seconds, not {pad}")
    moments = to_moments(hits_or_moments)
    out = fresh_dir(out_dir, "the export folder", INDEX, overwrite, store.root)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LensDBError(f"cannot create {out}: {exc.strerror}") from None
    _remove_earlier(out)
    report = ExportReport(str(out), str(out / "index.html"))
    reader = FrameReader()
    unchanged: dict[int, str | None] = {}  # video id -> why its source cannot be used
    try:
        for i, m in enumerate(moments, 1):
            item: dict[str, Any] = {**asdict(m), "jpeg": None, "clip": None, "note": None}
            report.items.append(item)
            try:
                picked = pick_frame(store, m)
                if picked is None:
                    raise VideoError("no stored frame in this moment")
                fid, vid, ts, _, source = picked
                item.update(frame_id=fid, video_id=vid, frame_ts=ts)
                if is_live(source):
                    raise VideoError("a live source cannot be decoded again")
                if vid not in unchanged:
                    unchanged[vid] = _source_problem(store, vid, source)
                if unchanged[vid]:
                    raise VideoError(str(unchanged[vid]))
                base = f"{i:04d}-{_safe(m.video)}-{ts:08.2f}s"
                (out / f"{base}.jpg").write_bytes(encode_jpeg(render_frame(store, fid, boxes,
                                                                           reader)))
                item["jpeg"] = f"{base}.jpg"
                if clips:
                    cut_clip(source, *clip_range(m, pad), out / f"{base}.mp4")
                    item["clip"] = f"{base}.mp4"
            except LensDBError as exc:
                item["note"] = str(exc)
    finally:
        reader.close()
    (out / INDEX).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "index.html").write_text(contact_sheet(report.items))
    return report


def _remove_earlier(out: Path) -> None:
    """Remove the files an earlier export in `out` listed, and its index: none of its
    moments must show among the new ones. Nothing it did not write is touched."""
    index = out / INDEX
    if not index.is_file():
        return
    try:
        items = json.loads(index.read_text()).get("items", [])
    except (OSError, ValueError, AttributeError):
        items = []
    for item in items if isinstance(items, list) else []:
        for key in ("jpeg", "clip"):
            name = item.get(key) if isinstance(item, dict) else None
            if isinstance(name, str) and name == Path(name).name:  # a bare name, no path
                (out / name).unlink(missing_ok=True)
    for name in (INDEX, "index.html"):
        (out / name).unlink(missing_ok=True)


def _source_problem(store: Store, video_id: int, source: str) -> str | None:
    """Why a video's frames cannot be drawn from `source` (it changed since ingest: other
    pictures under the stored boxes), or None; a missing file is the reader's to say."""
    from lensdb.ingest_sources import source_changed

    with store.catalog.connect() as con:
        row = con.execute("SELECT content_hash FROM videos WHERE video_id = ?",
                          [video_id]).fetchone()
    if source_changed(source, row[0] if row else None):
        return (f"the source video {source} changed since it was ingested (content hash "
                "differs); its frames are not drawn from it")
    return None


def _clock(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


def contact_sheet(items: list[dict[str, Any]]) -> str:
    cards = []
    for it in items:
        when = _clock(it["start"]) if it["start"] == it["stop"] else \
            f"{_clock(it['start'])}–{_clock(it['stop'])}"
        img = (f'<img src="{html.escape(it["jpeg"])}" loading="lazy" alt="">' if it["jpeg"]
               else '<div class="none">no image</div>')
        link = it["clip"] or it["jpeg"]
        media = f'<a href="{html.escape(link)}">{img}</a>' if link else img
        lines = [f"<b>{html.escape(it['video'])}</b> {when}", html.escape(it["caption"]),
                 f'<a href="{html.escape(it["clip"])}">clip</a>' if it["clip"] else "",
                 f'<i>{html.escape(it["note"])}</i>' if it["note"] else ""]
        caption = "<br>".join(x for x in lines if x)
        cards.append(f"<figure>{media}<figcaption>{caption}</figcaption></figure>")
    return _PAGE.format(n=len(items), cards="\n".join(cards))


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>LensDB export ({n})</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 1em; background: #fafafa }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px }}
figure {{ margin: 0; background: #fff; border: 1px solid #ddd; padding: 6px }}
img {{ width: 100%; display: block }} figcaption {{ margin-top: 4px; line-height: 1.4 }}
.none {{ height: 120px; background: #eee; display: grid; place-items: center }}</style>
</head><body><h1>LensDB export: {n} moments</h1><main>
{cards}
</main></body></html>
"""


__all__ = ["export", "ExportReport", "Moment", "to_moments", "render_frame", "frame_jpeg"]

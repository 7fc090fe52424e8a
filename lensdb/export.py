"""Write what a query or a search found as files to look at: a JPEG per moment (its middle
frame decoded again from the source video, detector boxes drawn when the frame was
labelled), an MP4 clip per moment with `clips=True`, an index.html contact sheet linking
them and an index.json listing them.

The displayed frame of a moment is its middle frame; when the moment has labelled frames,
the labelled one nearest the middle, so the boxes show what was counted. A search hit is
a moment of one frame. Live sources (URLs, stdin) cannot be decoded again: their moments
are listed with a note and no image.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import LensDBError, VideoError
from lensdb.storage.store import Store
from lensdb.video_cut import FrameReader, cut_clip, is_live

SINGLE_FRAME_CLIP = 1.0  # seconds on each side of a one-frame moment
MAX_CLIP = 30.0  # seconds; longer moments are cut around their middle


@dataclass
class Moment:
    """A stretch of one video to export; `frame_id` pins the frame to show."""

    video_id: int
    video: str
    start: float
    stop: float
    frame_id: int | None = None
    caption: str = ""


@dataclass
class ExportReport:
    out_dir: str
    index: str
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_moments(items: Any) -> list[Moment]:
    """Moments from search hits, a QueryResult (moments or frames) or row dicts."""
    kind = getattr(items, "kind", None)
    if kind == "aggregate":
        raise LensDBError("export needs frames or moments; an aggregate query has none "
                          "(drop the avg/sum/frames part and keep the predicate)")
    rows = items.rows if hasattr(items, "rows") and not isinstance(items, list) else items
    out = []
    for row in rows:
        d = row.to_dict() if hasattr(row, "to_dict") else dict(row)
        if "frame_id" in d and d["frame_id"] is not None:
            counts = d.get("counts") or {k: v for k, v in d.items() if k not in _FRAME_KEYS}
            bits = [f"score {d['score']:.3f}"] if d.get("score") is not None else []
            bits += [f"{c} {_num(n)}" for c, n in counts.items() if isinstance(n, int | float)]
            out.append(Moment(int(d["video_id"]), str(d["video"]), float(d["ts"]),
                              float(d["ts"]), int(d["frame_id"]), ", ".join(bits)))
        elif "start" in d and "stop" in d:
            extra = {k: v for k, v in d.items() if k not in _MOMENT_KEYS}
            bits = [f"{d['frames']} frames"] if d.get("frames") is not None else []
            bits += [f"avg {c} {_num(n)}" for c, n in extra.items() if isinstance(n, int | float)]
            out.append(Moment(int(d["video_id"]), str(d["video"]), float(d["start"]),
                              float(d["stop"]), None, ", ".join(bits)))
        else:
            raise LensDBError("export takes search hits or a query's moments or frames")
    return out


_FRAME_KEYS = {"frame_id", "video_id", "video", "frame_index", "ts", "labelled",
               "by_prediction", "score", "counts"}
_MOMENT_KEYS = {"video_id", "video", "start", "stop", "frames", "n_predicted"}


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def pick_frame(store: Store, m: Moment) -> tuple[int, float, bool] | None:
    """(frame id, ts, labelled) of the frame to show for a moment."""
    with store.catalog.connect() as con:
        if m.frame_id is not None:
            row = con.execute("SELECT frame_id, ts, coalesce(labelled, false) FROM frames "
                              "WHERE frame_id = ?", [m.frame_id]).fetchone()
        else:
            row = con.execute(
                "SELECT frame_id, ts, coalesce(labelled, false) FROM frames WHERE video_id = ? "
                "AND ts BETWEEN ? AND ? ORDER BY coalesce(labelled, false) DESC, "
                "abs(ts - ?), frame_id LIMIT 1",
                [m.video_id, m.start, m.stop, (m.start + m.stop) / 2],
            ).fetchone()
    return None if row is None else (int(row[0]), float(row[1]), bool(row[2]))


def video_source(store: Store, video_id: int) -> str:
    with store.catalog.connect() as con:
        row = con.execute("SELECT path FROM videos WHERE video_id = ?", [video_id]).fetchone()
    if row is None:
        raise LensDBError(f"no video with id {video_id}")
    return str(row[0])


def detections(store: Store, frame_id: int) -> list[tuple[str, float, tuple[float, ...]]]:
    with store.catalog.connect() as con:
        rows = con.execute("SELECT class, score, x1, y1, x2, y2 FROM detections "
                           "WHERE frame_id = ? ORDER BY score DESC", [frame_id]).fetchall()
    return [(r[0], float(r[1]), tuple(float(v) for v in r[2:])) for r in rows]


def draw_boxes(rgb: np.ndarray, dets: list[tuple[str, float, tuple[float, ...]]]) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(rgb.copy())
    thick = max(1, round(min(img.shape[:2]) / 240))
    for cls, score, (x1, y1, x2, y2) in dets:
        h = sum(cls.encode()) * 2654435761 % (1 << 24)
        color = (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(img, p1, p2, color, thick)
        label = f"{cls} {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        y = max(p1[1], th + base + 1)
        cv2.rectangle(img, (p1[0], y - th - base - 1), (p1[0] + tw + 2, y), color, -1)
        cv2.putText(img, label, (p1[0] + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return img


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise LensDBError("cannot encode the frame as JPEG")
    return buf.tobytes()


def render_frame(store: Store, frame_id: int, boxes: bool = True,
                 reader: FrameReader | None = None) -> np.ndarray:
    """A stored frame decoded again from its source video, with its boxes drawn."""
    with store.catalog.connect() as con:
        row = con.execute("SELECT video_id, ts, coalesce(labelled, false) FROM frames "
                          "WHERE frame_id = ?", [int(frame_id)]).fetchone()
    if row is None:
        raise LensDBError(f"no frame with id {frame_id}")
    source = video_source(store, int(row[0]))
    own = reader is None
    reader = reader or FrameReader()
    try:
        rgb = reader.frame_at(source, float(row[1]))
    finally:
        if own:
            reader.close()
    return draw_boxes(rgb, detections(store, int(frame_id))) if boxes and row[2] else rgb


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
           boxes: bool = True, pad: float = 0.5) -> ExportReport:
    """Write a JPEG (and with `clips` an MP4) per moment plus index.html and index.json."""
    moments = to_moments(hits_or_moments)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LensDBError(f"cannot create {out}: {exc.strerror}") from None
    report = ExportReport(str(out), str(out / "index.html"))
    reader = FrameReader()
    try:
        for i, m in enumerate(moments, 1):
            item: dict[str, Any] = {**asdict(m), "jpeg": None, "clip": None, "note": None}
            report.items.append(item)
            try:
                source = video_source(store, m.video_id)
                if is_live(source):
                    raise VideoError("a live source cannot be decoded again")
                picked = pick_frame(store, m)
                if picked is None:
                    raise VideoError("no stored frame in this moment")
                fid, ts, _ = picked
                item["frame_id"], item["frame_ts"] = fid, ts
                base = f"{i:04d}-{_safe(m.video)}-{ts:08.2f}s"
                jpg = out / f"{base}.jpg"
                jpg.write_bytes(encode_jpeg(render_frame(store, fid, boxes, reader)))
                item["jpeg"] = jpg.name
                if clips:
                    start, stop = clip_range(m, pad)
                    clip = out / f"{base}.mp4"
                    cut_clip(source, start, stop, clip)
                    item["clip"] = clip.name
            except LensDBError as exc:
                item["note"] = str(exc)
    finally:
        reader.close()
    (out / "index.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "index.html").write_text(contact_sheet(report.items))
    return report


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
        lines = [f"<b>{html.escape(it['video'])}</b> {when}"]
        if it["caption"]:
            lines.append(html.escape(it["caption"]))
        if it["clip"]:
            lines.append(f'<a href="{html.escape(it["clip"])}">clip</a>')
        if it["note"]:
            lines.append(f'<i>{html.escape(it["note"])}</i>')
        cards.append(f'<figure>{media}<figcaption>{"<br>".join(lines)}</figcaption></figure>')
    return _PAGE.format(n=len(items), cards="\n".join(cards))


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>LensDB export ({n})</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; background: #fafafa; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  gap: 12px; }}
figure {{ margin: 0; background: #fff; border: 1px solid #ddd; padding: 6px; }}
img {{ width: 100%; display: block; }}
.none {{ height: 120px; background: #eee; display: grid; place-items: center; }}
figcaption {{ margin-top: 4px; line-height: 1.4; }}
</style></head><body>
<h1>LensDB export: {n} moments</h1>
<main>
{cards}
</main></body></html>
"""


__all__ = ["export", "ExportReport", "Moment", "to_moments", "render_frame", "frame_jpeg"]

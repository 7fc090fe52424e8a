"""Frames and clips decoded again from source videos: seek by time, cut, draw, encode.

Times are seconds from the start of the video, the clock ingest stored them on
(`lensdb.frames.stream_start`: pts minus the stream's start time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from lensdb.errors import LensDBError, VideoError, first_line
from lensdb.frames import decode_in_threads, frame_rate, is_url, stream_start


def is_live(source: str) -> bool:
    return source == "-" or is_url(source)


def _fail(source: str, exc: Exception) -> VideoError:
    return VideoError(f"cannot decode {source} again: {first_line(exc)}")


class FrameReader:
    """Decodes single frames by time from source videos, keeping the files open.

    `threads`: FFmpeg's decoding threads per video (`lensdb.frames.decode_in_threads`; 0:
    the library default)."""

    def __init__(self, threads: int = 0) -> None:
        self._open: dict[str, Any] = {}
        self.threads = threads

    def frame_at(self, source: str, ts: float) -> np.ndarray:
        """The RGB frame whose pts is nearest `ts` (seeks to the keyframe before it)."""
        import av

        if is_live(source):
            raise VideoError("a live source cannot be decoded again")
        if source not in self._open and not Path(source).exists():
            raise VideoError(f"the source video {source} is no longer there")
        try:  # PyAV raises many FFmpeg error types
            container = self._open.get(source)
            if container is None:
                container = self._open.setdefault(source, av.open(source))
                decode_in_threads(container.streams.video[0], self.threads)
            stream = container.streams.video[0]
            ts = ts + (stream_start(stream) or 0.0)  # the stream's own clock
            for back in (0.0, 2.0, 10.0):  # re-seek further back if the seek overshot
                best = None
                container.seek(max(0, int((ts - back) / stream.time_base)), stream=stream,
                               backward=True)
                keyed = False  # some demuxers (MPEG-TS) seek to any frame: start at a key
                for frame in container.decode(stream):
                    keyed = keyed or bool(frame.key_frame)
                    if frame.time is None or not keyed:
                        continue
                    if best is None or abs(frame.time - ts) <= abs(best.time - ts):
                        best = frame
                    if frame.time >= ts - 1e-4:
                        break
                if best is not None and (best.time <= ts + 1e-3 or back == 10.0):
                    return best.to_ndarray(format="rgb24")
        except Exception as exc:
            raise _fail(source, exc) from None
        raise VideoError(f"no frame near {ts:.2f}s in {source}")

    def close(self) -> None:
        for container in self._open.values():
            container.close()
        self._open.clear()


def cut_clip(source: str, start: float, stop: float, out: Path, threads: int = 0) -> int:
    """Re-encode [start, stop] of a video as an H.264 MP4; the number of frames written.
    `threads`: FFmpeg's decoding threads (0: the library default)."""
    from fractions import Fraction

    import av

    n = 0
    try:
        with av.open(source) as inp, av.open(str(out), "w") as dst:
            s = inp.streams.video[0]
            decode_in_threads(s, threads)
            rate = Fraction(frame_rate(s, inp) or 25).limit_denominator(1001)
            w, h = s.codec_context.width // 2 * 2, s.codec_context.height // 2 * 2
            codec: Literal["libx264", "mpeg4"] = (
                "libx264" if "libx264" in av.codecs_available else "mpeg4")
            o = dst.add_stream(codec, rate=rate)
            o.width, o.height, o.pix_fmt = w, h, "yuv420p"
            offset = stream_start(s) or 0.0  # start/stop are from the video's start
            lo, hi = start + offset, stop + offset
            if s.time_base is None:
                raise VideoError("the video stream has no time base")
            inp.seek(max(0, int(lo / s.time_base)), stream=s, backward=True)
            for frame in inp.decode(s):
                if frame.time is None or frame.time < lo - 1e-6:
                    continue
                if frame.time > hi + 1e-6:
                    break
                f = frame.reformat(width=w, height=h, format="yuv420p")
                f.pts, f.time_base = n, 1 / rate
                dst.mux(o.encode(f))
                n += 1
            dst.mux(o.encode())
    except Exception as exc:
        out.unlink(missing_ok=True)
        raise _fail(source, exc) from None
    if n == 0:
        out.unlink(missing_ok=True)
        raise VideoError(f"no frames between {start:.2f}s and {stop:.2f}s")
    return n


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

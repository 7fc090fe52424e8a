"""Frames out of any source: a generator fed by a decoder thread through a bounded queue.

Memory stays flat however long the video: the queue holds at most `queue_size` frames.
Timestamps come from each frame's pts (variable frame rate included).
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lensdb.errors import VideoError
from lensdb.types import Frame

LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class SourceInfo:
    """What the container says about a source before decoding."""

    name: str  # file name or URL
    fps: float  # average frame rate, 0 when unknown
    width: int
    height: int
    duration: float  # seconds, 0 when unknown (live)
    frame_count: int  # estimated frames, 0 when unknown


@dataclass
class DecodeStatus:
    """Filled in by the decoder thread: where decoding stopped and why."""

    frames_decoded: int = 0
    last_pts: float = 0.0
    error: str | None = None  # set when a corrupt stream stopped decoding early


def is_url(source: str) -> bool:
    return source.startswith(LIVE_PREFIXES)


def _open(source: str):
    import av

    try:
        if source == "-":
            return av.open(sys.stdin.buffer, mode="r")
        if is_url(source):
            options = {"rtsp_transport": "tcp"} if source.startswith(("rtsp://", "rtsps://")) \
                else {}
            return av.open(source, options=options, timeout=(10.0, 30.0))
        if not Path(source).exists():
            raise VideoError(f"no such file: {source}")
        return av.open(source)
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many FFmpeg error types
        raise VideoError(f"cannot open {source} as a video: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def open_source(source: str):
    """An open PyAV container. Pass it to `probe` and `iter_frames` for sources that can be
    read only once (stdin, live streams)."""
    return _open(source)


def probe(source: str, container=None) -> SourceInfo:
    """Read a source's stream parameters (from `container` when given, left open)."""
    own = container is None
    container = container if container is not None else _open(source)
    try:
        if not container.streams.video:
            raise VideoError(f"{source} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        frames = int(stream.frames or (duration * fps if fps else 0))
        return SourceInfo(
            name="stdin" if source == "-" else source if is_url(source) else Path(source).name,
            fps=fps,
            width=int(stream.codec_context.width or 0),
            height=int(stream.codec_context.height or 0),
            duration=duration,
            frame_count=frames,
        )
    finally:
        if own:
            container.close()


class Sampler:
    """Keeps every `stride`-th frame, or samples by time at `fps` frames per second."""

    def __init__(self, stride: int = 1, fps: float | None = None, after_pts: float = -math.inf):
        if stride < 1:
            raise VideoError("--stride must be at least 1")
        if fps is not None and fps <= 0:
            raise VideoError("--fps must be positive")
        self.stride = stride
        self.fps = fps
        self._last_slot = math.floor(after_pts * fps) if fps and after_pts > -math.inf else None

    def keep(self, index: int, pts: float) -> bool:
        if self.fps is None:
            return index % self.stride == 0
        slot = math.floor(pts * self.fps + 1e-9)
        if self._last_slot is not None and slot <= self._last_slot:
            return False
        self._last_slot = slot
        return True


_END = object()


def iter_frames(
    source: str,
    sampler: Sampler | None = None,
    video_id: int = 0,
    start_after_index: int = -1,
    queue_size: int = 32,
    status: DecodeStatus | None = None,
    stop: threading.Event | None = None,
    container=None,
) -> Iterator[Frame]:
    """Yield sampled frames with index > start_after_index; decoding runs in a thread.

    A corrupt stream ends the generator early with `status.error` set, keeping what decoded.
    """
    sampler = sampler or Sampler()
    status = status if status is not None else DecodeStatus()
    stop = stop or threading.Event()  # the caller's: ends decoding (a live stream) early
    halt = threading.Event()  # ours: the consumer is gone, the decoder must not block
    container = container if container is not None else _open(source)
    if not container.streams.video:
        container.close()
        raise VideoError(f"{source} has no video stream")
    out: queue.Queue = queue.Queue(maxsize=queue_size)

    def put(item: object) -> bool:
        while not halt.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            index = -1
            for frame in container.decode(stream):
                if stop.is_set():
                    return
                index += 1
                pts = float(frame.time) if frame.time is not None else index / 25.0
                status.frames_decoded = index + 1
                status.last_pts = pts
                if index <= start_after_index or not sampler.keep(index, pts):
                    continue
                if not put(Frame(video_id, index, pts, frame.to_ndarray(format="rgb24"))):
                    return
        except Exception as exc:  # corrupt data: keep what decoded, say where it stopped
            status.error = f"decoding stopped at frame {status.frames_decoded} " \
                f"({status.last_pts:.2f}s): {_reason(exc)}"
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the consumer must still get _END
                pass
            put(_END)

    thread = threading.Thread(target=decode, name="lensdb-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                break
            yield item  # type: ignore[misc]
    finally:
        halt.set()
        thread.join(timeout=5)

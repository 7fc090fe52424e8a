"""Frames out of any source: a generator fed by a decoder thread through a bounded queue.

Memory stays flat however long the video: the queue holds at most `queue_size` frames.
Timestamps are seconds from the start of the video: each frame's pts (variable frame rate
included) minus the stream's start time (`StreamClock`; an MPEG-TS often starts at 1.4 s).
`lensdb.media` decodes frames again on the same clock.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensdb.errors import ParameterError, VideoError, first_line
from lensdb.keyframes import SeekPoint
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

    frames_decoded: int = 0  # the last decoded frame's index + 1
    last_pts: float = 0.0
    error: str | None = None  # set when a corrupt stream stopped decoding early
    started_at: int = 0  # the index decoding started at (a keyframe when seeking)


def decode_in_threads(stream, threads: int = 0) -> None:
    """Let FFmpeg decode `stream` in its own threads (frame and slice threading, "AUTO");
    `threads` 0: the library's default (one per core). Frames are the same either way."""
    if threads < 0:
        raise ParameterError("threads", "must be 0 (the library default) or more")
    codec = stream.codec_context
    codec.thread_type = "AUTO"
    codec.thread_count = int(threads)


def frame_rate(stream, container=None) -> float:
    """Frames per second, 0 when unknown. For an elementary stream (no container duration,
    e.g. raw .h264) FFmpeg's average rate is its 25 fps default; the codec's rate is real."""
    avg, guessed = stream.average_rate, stream.guessed_rate
    if container is not None and container.duration is None and guessed:
        return float(guessed)
    return float(avg or guessed or 0)


def stream_start(stream) -> float | None:
    """The stream's first presentation time in seconds, None when the container has none."""
    if stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


class StreamClock:
    """Seconds from the start of the video for each decoded frame, in decode order: pts
    rebased on the stream's start time (else on the first frame's pts); a frame without pts
    comes 1/rate after the previous one, at the stream's real frame rate."""

    def __init__(self, stream, container=None):
        self.start = stream_start(stream)
        self.rate = frame_rate(stream, container) or 25.0  # 25: no rate anywhere, a guess
        self.last: float | None = None

    def seconds(self, frame, index: int) -> float:
        if frame.time is None:
            t = index / self.rate if self.last is None else self.last + 1.0 / self.rate
        else:
            if self.start is None:
                self.start = float(frame.time)
            t = float(frame.time) - self.start
        self.last = t
        return t


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
        raise VideoError(_truncation(source) or
                         f"cannot open {source} as a video: {_reason(exc)}") from None


IMAGE_FORMATS = ("image2", "image2pipe")  # FFmpeg's still-image demuxers, and every *_pipe


def is_still_image(container) -> bool:
    """Whether FFmpeg opened the source with an image demuxer (PNG, JPEG, BMP, WebP, ...)."""
    names = str(container.format.name).split(",")
    return any(n in IMAGE_FORMATS or n.endswith("_pipe") for n in names)


ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")


def _truncation(source: str) -> str | None:
    """For an MP4/MOV file whose top-level boxes run past its end (a `moov` index cut
    short: the file was not finished), a message that says so; else None."""
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset + 8 <= size:
                f.seek(offset)
                head = f.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if box == 1 and len(head) == 16:
                    box = int.from_bytes(head[8:16], "big")
                if offset == 0 and kind not in ISO_FIRST_BOXES:
                    return None  # not an ISO media (MP4/MOV) file
                if box == 0:
                    return None  # runs to the end of the file by definition
                if box < 8:
                    return None
                if offset + box > size:
                    name = kind.decode("latin-1")
                    return (f"{source} is truncated: its '{name}' box ends at byte "
                            f"{offset + box:,} of a {size:,}-byte file" +
                            (" (the index of the video is cut short)" if name == "moov"
                             else "") + "; the file was not finished writing")
                offset += box
    except OSError:
        return None
    return None


def _reason(exc: Exception) -> str:
    return first_line(exc)


def open_source(source: str):
    """An open PyAV container. Pass it to `probe` and `iter_frames` for sources that can be
    read only once (stdin, live streams)."""
    return _open(source)


def probe(source: str, container=None, images: bool = False) -> SourceInfo:
    """Read a source's stream parameters (from `container` when given, left open). A still
    image is refused unless `images` (then it is a one-frame video)."""
    own = container is None
    container = container if container is not None else _open(source)
    try:
        if not container.streams.video:
            raise VideoError(_truncation(source) or f"{source} has no video stream")
        stream = container.streams.video[0]
        still = is_still_image(container)
        if still and not stream.codec_context.width:
            raise VideoError(f"{source} is neither a video nor a readable image (FFmpeg guessed "
                             f"{container.format.name} from its name but finds no picture)")
        if still and not images:
            raise VideoError(f"{source} is a still image ({container.format.name}), not a "
                             "video; still images are ingested (as one-frame videos) only "
                             "with --images (images=True in Python)")
        fps = frame_rate(stream, container)
        duration = 0.0  # seconds of video, on the clock frames are timed by (from 0)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
            if "matroska" in str(container.format.name):  # its Duration counts from ts 0
                duration = max(0.0, duration - (stream_start(stream) or 0.0))
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
            raise ParameterError("stride", "must be at least 1")
        if fps is not None and fps <= 0:
            raise ParameterError("fps", "must be positive")
        self.stride = stride
        self.fps = fps
        # resuming after a frame kept at after_pts: its slot is taken, by the same rule
        self._last_slot = self.slot(after_pts) if fps and after_pts > -math.inf else None

    def slot(self, pts: float) -> int:
        """The 1/fps-long time slot a frame falls in (the tolerance absorbs pts*fps landing
        a hair below an integer); one frame is kept per slot."""
        assert self.fps is not None
        return math.floor(pts * self.fps + 1e-9)

    def keep(self, index: int, pts: float) -> bool:
        if self.fps is None:
            return index % self.stride == 0
        slot = self.slot(pts)
        if self._last_slot is not None and slot <= self._last_slot:
            return False
        self._last_slot = slot
        return True


_END = object()


def _numbered(container, stream, seek: SeekPoint | None, status: DecodeStatus
              ) -> Iterator[tuple[int, Any]]:
    """(frame index, frame) in presentation order: from the keyframe `seek` when the first
    frame after seeking is the one expected there, else from the start of the video."""
    if seek is not None:
        try:
            container.seek(seek.pts, stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
            first = next(frames, None)
        except Exception:  # noqa: BLE001 - not seekable after all: decode from the start
            first = None
        if first is not None and first.pts == seek.pts:
            status.started_at = seek.index
            yield seek.index, first
            yield from enumerate(frames, seek.index + 1)
            return
        container.seek(stream.start_time or 0, stream=stream, backward=True, any_frame=False)
    status.started_at = 0
    yield from enumerate(container.decode(stream))


def iter_frames(
    source: str,
    sampler: Sampler | None = None,
    video_id: int = 0,
    start_after_index: int = -1,
    queue_size: int = 32,
    status: DecodeStatus | None = None,
    stop: threading.Event | None = None,
    container=None,
    threads: int = 0,
    seek: SeekPoint | None = None,
) -> Iterator[Frame]:
    """Yield sampled frames with index > start_after_index; decoding runs in a thread,
    and FFmpeg's own `threads` inside it (`decode_in_threads`; 0: the library default).
    `seek`: start decoding at that keyframe (`lensdb.keyframes`) instead of the start.

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
    try:
        decode_in_threads(container.streams.video[0], threads)
    except ParameterError:
        container.close()
        raise
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
            clock = StreamClock(stream, container)
            for index, frame in _numbered(container, stream, seek, status):
                if stop.is_set():
                    return
                pts = clock.seconds(frame, index)
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

"""Where a decoder can start inside a video file: its keyframes, found by demuxing alone.

A chunk of a long video (the Ray engine) need not decode every frame before it: it seeks
to the last keyframe at or before its first frame and counts frame indices from there.
That index comes from the packets' presentation times: every packet of the video stream is
one frame, so the rank of a keyframe's pts among all pts is its frame index (demuxing
reads the file but decodes nothing: about a hundredth of the decoding's time).
The decoder checks the first frame it gets after the seek against the pts expected here
and decodes from the start instead when they differ (`lensdb.frames.iter_frames`), so a
stream this cannot describe costs time, never a wrong index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SeekPoint:
    """A keyframe to start decoding at: its frame index and its pts (stream time base)."""

    index: int
    pts: int


@dataclass(frozen=True)
class KeyframeIndex:
    """The video stream's keyframes in presentation order: their frame indices and pts."""

    indices: np.ndarray  # frame index of each keyframe, ascending
    pts: np.ndarray  # the keyframe's pts in the stream's time base
    frames: int  # packets (frames) in the stream

    def seek_point(self, first: int) -> SeekPoint | None:
        """The last keyframe at or before frame `first` (None: before any, or at 0)."""
        at = int(np.searchsorted(self.indices, first, side="right")) - 1
        if at < 0 or self.indices[at] == 0:
            return None  # decoding from the start is the same work
        return SeekPoint(int(self.indices[at]), int(self.pts[at]))


def keyframe_index(source: str) -> KeyframeIndex | None:
    """Demux `source` (a file) and list its keyframes; None when its packets cannot say
    (a packet without pts, two packets with the same pts, no start time, no keyframe)."""
    import av

    try:
        container = av.open(source)
    except Exception:  # noqa: BLE001 - the decoder reports unreadable files itself
        return None
    try:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        if stream.start_time is None:
            return None  # the clock would start at the first decoded frame: not seekable
        pts: list[int] = []
        key: list[bool] = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's final flush packet
            if packet.pts is None:
                return None
            pts.append(int(packet.pts))
            key.append(bool(packet.is_keyframe))
    except Exception:  # noqa: BLE001 - a damaged file: decode it from the start
        return None
    finally:
        container.close()
    if not pts:
        return None
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")
    sorted_pts = np.asarray(pts, np.int64)[order]
    if np.any(np.diff(sorted_pts) <= 0):
        return None
    is_key = np.asarray(key, bool)[order]
    ranks = np.flatnonzero(is_key)
    if len(ranks) == 0:
        return None
    return KeyframeIndex(indices=ranks, pts=sorted_pts[ranks], frames=len(sorted_pts))

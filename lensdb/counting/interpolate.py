"""Linear interpolation in time between the labelled frames of the same video.

A frame between two labelled frames of its video gets the straight line between their
counts at its pts; a frame before the first or after the last label of its video keeps the
nearest label's count when it lies within one label spacing of it (the video ended, or
began, between two labels), and is otherwise *outside*: those frames (a live stream past
its last label, a video without labels) are left to the embedding model. Nothing ever
crosses from one video to another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Interpolated:
    """Per query frame; the side fields describe the labels used (inf / nan: none)."""

    value: np.ndarray  # interpolated count; nan where outside
    inside: np.ndarray  # bool: value is defined
    dt_before: np.ndarray  # seconds since the label before (inf: none)
    dt_after: np.ndarray  # seconds until the label after (inf: none)
    y_before: np.ndarray  # count at the label before (nan: none)
    y_after: np.ndarray  # count at the label after (nan: none)
    spacing: np.ndarray  # typical spacing of labels in the frame's video (seconds)


def label_spacing(ts: np.ndarray) -> float | None:
    """Median gap between consecutive distinct label times (None with < 2 of them)."""
    t = np.unique(np.asarray(ts, np.float64))
    return float(np.median(np.diff(t))) if len(t) >= 2 else None


def interpolate(
    label_video: np.ndarray, label_ts: np.ndarray, label_y: np.ndarray,
    video: np.ndarray, ts: np.ndarray,
) -> Interpolated:
    """Interpolate the labels (video, ts, count) at the query frames (video, ts)."""
    label_video, video = np.asarray(label_video), np.asarray(video)
    label_ts = np.asarray(label_ts, np.float64)
    label_y = np.asarray(label_y, np.float64)
    ts = np.asarray(ts, np.float64)
    n = len(ts)
    out = Interpolated(
        value=np.full(n, np.nan), inside=np.zeros(n, bool), dt_before=np.full(n, np.inf),
        dt_after=np.full(n, np.inf), y_before=np.full(n, np.nan), y_after=np.full(n, np.nan),
        spacing=np.full(n, np.nan),
    )
    overall = _median_spacing(label_video, label_ts)  # for a video with a single label
    labels = _groups(label_video)
    for v, q in _groups(video).items():
        mine = labels.get(v)
        if mine is None:
            continue
        mine = mine[np.argsort(label_ts[mine], kind="stable")]
        lt, ly = label_ts[mine], label_y[mine]
        spacing = label_spacing(lt) or overall or 0.0
        _one_video(out, q, ts[q], lt, ly, spacing)
    return out


def _groups(ids: np.ndarray) -> dict:
    """id -> positions holding it (one sort, not a scan per id)."""
    order = np.argsort(ids, kind="stable")
    keys, starts = np.unique(ids[order], return_index=True)
    return dict(zip(keys.tolist(), np.split(order, starts[1:]), strict=True))


def _median_spacing(label_video: np.ndarray, label_ts: np.ndarray) -> float | None:
    gaps = [np.diff(np.unique(label_ts[p])) for p in _groups(label_video).values()]
    gaps = [g for g in gaps if len(g)]
    return float(np.median(np.concatenate(gaps))) if gaps else None


def _one_video(
    out: Interpolated, q: np.ndarray, t: np.ndarray, lt: np.ndarray, ly: np.ndarray,
    spacing: float,
) -> None:
    after = np.searchsorted(lt, t, side="left")  # first label at or after t
    exact = (after < len(lt)) & (lt[np.minimum(after, len(lt) - 1)] == t)
    before = np.where(exact, after, after - 1)
    has_b = before >= 0
    has_a = after < len(lt)
    b, a = np.clip(before, 0, len(lt) - 1), np.clip(after, 0, len(lt) - 1)
    dt_b = np.where(has_b, t - lt[b], np.inf)
    dt_a = np.where(has_a, lt[a] - t, np.inf)
    y_b = np.where(has_b, ly[b], np.nan)
    y_a = np.where(has_a, ly[a], np.nan)
    both = has_b & has_a
    span = np.where(both, dt_b + dt_a, 1.0)
    w = np.where(both & (span > 0), dt_b / np.where(span > 0, span, 1.0), 0.0)
    value = np.where(both, (1 - w) * np.nan_to_num(y_b) + w * np.nan_to_num(y_a), np.nan)
    # one side only: hold the nearest label within one spacing of it
    hold_b = has_b & ~has_a & (dt_b <= spacing)
    hold_a = has_a & ~has_b & (dt_a <= spacing)
    value = np.where(hold_b, y_b, np.where(hold_a, y_a, value))
    out.value[q] = value
    out.inside[q] = both | hold_b | hold_a
    out.dt_before[q], out.dt_after[q] = dt_b, dt_a
    out.y_before[q], out.y_after[q] = y_b, y_a
    out.spacing[q] = spacing


def time_orders(video: np.ndarray, ts: np.ndarray) -> dict:
    """video id -> the positions of its frames in time order (ties: input order)."""
    ts = np.asarray(ts)
    return {v: idx[np.argsort(ts[idx], kind="stable")]
            for v, idx in _groups(np.asarray(video)).items()}


def running_median(video: np.ndarray, ts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each label replaced by the median of itself and its neighbours before and after in
    its video's time order (a video's first and last label: of the two it has). One
    flicker of the detector on a label no longer bends the line for a gap on each side of
    it; a step between two counts is kept where it is."""
    ts, y = np.asarray(ts, np.float64), np.asarray(y, np.float64)
    out = y.copy()
    for idx in _groups(np.asarray(video)).values():
        if len(idx) < 3:
            continue
        idx = idx[np.argsort(ts[idx], kind="stable")]
        c = y[idx]
        out[idx[1:-1]] = np.median(np.stack([c[:-2], c[1:-1], c[2:]]), axis=0)
    return out


def interpolate_median(
    label_video: np.ndarray, label_ts: np.ndarray, label_y: np.ndarray,
    video: np.ndarray, ts: np.ndarray,
) -> Interpolated:
    """`interpolate` through the running median of the labels (the `median` method)."""
    return interpolate(label_video, label_ts, running_median(label_video, label_ts, label_y),
                       video, ts)

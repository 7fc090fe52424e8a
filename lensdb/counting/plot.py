"""PNG of true vs predicted counts over time for one held-out video (matplotlib, Agg)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class ClassSeries:
    """One class on one video: predictions on every frame, detector counts where labelled."""

    cls: str
    method: str
    ts: np.ndarray  # seconds, every frame of the video
    predicted: np.ndarray  # model's count per frame
    labelled_ts: np.ndarray  # seconds, labelled frames
    true: np.ndarray  # detector count per labelled frame
    held_out: np.ndarray  # bool per labelled frame: in the test part
    baseline: float  # the training part's mean


def plot_counts(path: str | Path, video: str, series: list[ClassSeries], note: str = "") -> Path:
    """Write one panel per class; returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(
        len(series), 1, figsize=(10, 2.8 * len(series)), sharex=True, squeeze=False
    )
    for ax, s in zip(axes[:, 0], series, strict=True):
        ax.plot(s.ts, s.predicted, color="tab:blue", lw=1.2, label=f"predicted ({s.method})")
        ax.axhline(s.baseline, color="tab:gray", ls="--", lw=1, label="baseline (train mean)")
        test = s.held_out.astype(bool)
        ax.scatter(
            s.labelled_ts[test], s.true[test], s=12, color="tab:orange",
            label="detector count, held out", zorder=3,
        )
        if (~test).any():
            ax.scatter(
                s.labelled_ts[~test], s.true[~test], s=12, facecolors="none",
                edgecolors="tab:green", label="detector count, trained on", zorder=3,
            )
        ax.set_ylabel(f"count({s.cls})")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time (s)")
    title = f"LensDB count predictors on held-out video '{video}'"
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

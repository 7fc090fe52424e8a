"""`compare_clip_init`: does CLIP pretraining help the light detector on this data?

    r = compare_clip_init(DetectorTrainConfig("data.yaml", "light-detr", epochs=20),
                          "clip.pt", root="runs/compare")

Two light-detr runs with the same CLIP-tower architecture (--clip-arch), data, budget and
seed: ROOT/scratch (random init) and ROOT/clip (the tower's weights from the checkpoint).
ROOT/compare.json holds both per-epoch curves and final evaluations; ROOT/compare.png plots
mAP50-95 and mAP50 over epochs. A finished run is kept (resumable).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lensdb.detector.config import LIGHT_DETR, DetectorTrainConfig
from lensdb.detector.sweep import _done
from lensdb.errors import LensDBError
from lensdb.runs import atomic_write_bytes, atomic_write_text, read_csv_rows


def _plot(curves: dict[str, list[dict[str, str]]], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), tight_layout=True)
    for name, rows in curves.items():
        ep = [int(r["epoch"]) for r in rows]
        for ax, key in zip(axes, ("map50_95", "map50")):
            ax.plot(ep, [float(r[key]) for r in rows], marker="o", label=name)
            ax.set_xlabel("epoch")
            ax.set_ylabel(key.replace("_", "-"))
    axes[0].legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def compare_clip_init(base: DetectorTrainConfig, clip_init: str, root: str | Path,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> dict:
    from lensdb.detector.train import train_detector

    if base.model != LIGHT_DETR:
        raise LensDBError("compare trains light-detr (--model light-detr)")
    root = Path(root)
    runs = {"scratch": replace(base, backbone="clip", clip_init=None),
            "clip": replace(base, backbone="clip", clip_init=str(clip_init))}
    for c in runs.values():
        c.check()
    from lensdb.detector.light_ckpt import clip_visual

    clip_visual(base.clip_arch, str(clip_init))  # a non-CLIP file: refused before training
    emit = progress or (lambda e: None)
    summaries, curves = {}, {}
    for name, c in runs.items():
        folder = root / name
        summary = _done(folder)
        emit({"kind": "point", "key": name, "skipped": summary is not None})
        if summary is None:
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            summary = train_detector(replace(c, out=str(folder)), progress)
        summaries[name] = summary
        curves[name] = read_csv_rows(folder / "epochs.csv")
    _plot(curves, root / "compare.png")
    table = {name: {"map50": s["eval"]["map50"], "map50_95": s["eval"]["map50_95"],
                    "precision": s["eval"]["precision"], "recall": s["eval"]["recall"],
                    "best_val_loss": s.get("best_val_loss"), "seconds": s["seconds"]}
             for name, s in summaries.items()}
    result = {"root": str(root), "clip_init": str(clip_init), "arch": base.clip_arch,
              "table": table, "curves": curves, "png": str(root / "compare.png"),
              "json": str(root / "compare.json")}
    atomic_write_text(root / "compare.json", json.dumps(result, indent=2, default=str) + "\n")
    return result

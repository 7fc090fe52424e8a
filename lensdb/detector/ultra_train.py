"""Ultralytics models (YOLO11, RT-DETR, any ultralytics yaml or .pt) through ultralytics'
own trainer, with LensDB's run folder around it.

Ultralytics writes its usual save_dir under RUN/ultralytics/ (weights/last.pt, best.pt,
results.csv, args.yaml); callbacks copy each epoch's figures into RUN/epochs.csv and keep
RUN/best_loss.pt (lowest validation loss); at the end best.pt (ultralytics' fitness:
mAP50-95) and final.pt are copied out, optimizer state stripped, atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lensdb.detector.checkpoint import import_ultralytics, ultralytics_device
from lensdb.detector.config import DetectorTrainConfig
from lensdb.errors import LensDBError, first_line
from lensdb.runs import RunFolder


def _strip_copy(src: Path, dst: Path) -> None:
    """`dst` = `src` without optimizer state, written through a temporary file."""
    from ultralytics.utils.torch_utils import strip_optimizer

    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".pt", dir=dst.parent)
    os.close(fd)
    try:
        if not strip_optimizer(src, s=tmp):  # not an ultralytics checkpoint: copy as is
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_copy(src: Path, dst: Path) -> None:
    from lensdb.runs import atomic_write_bytes

    atomic_write_bytes(dst, Path(src).read_bytes())


@contextlib.contextmanager
def _quiet_ultralytics():
    """Ultralytics logs to stdout; keep stdout for LensDB's own output (and --json)."""
    import warnings

    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():  # its Ray Tune callback warns outside a Tune trial
            warnings.filterwarnings("ignore", message=".*get_trial_id.*")
            yield
    finally:
        LOGGER.setLevel(level)


def _epoch_row(trainer, started: float) -> dict[str, Any]:
    losses = trainer.label_loss_items(trainer.tloss, prefix="train")
    m = trainer.metrics or {}
    val = {k: float(v) for k, v in m.items() if k.startswith("val/")}
    row: dict[str, Any] = {"epoch": trainer.epoch + 1}
    row.update({k.replace("/", "_"): float(v) for k, v in losses.items()})
    row.update({k.replace("/", "_"): v for k, v in val.items()})
    row["train_loss"] = float(sum(losses.values()))
    row["val_loss"] = float(sum(val.values())) if val else float("nan")
    row["lr"] = float(next(iter(trainer.lr.values()))) if trainer.lr else float("nan")
    row["precision"] = float(m.get("metrics/precision(B)", float("nan")))
    row["recall"] = float(m.get("metrics/recall(B)", float("nan")))
    row["map50"] = float(m.get("metrics/mAP50(B)", float("nan")))
    row["map50_95"] = float(m.get("metrics/mAP50-95(B)", float("nan")))
    row["seconds"] = round(time.time() - started, 1)
    return row


def train_ultralytics(c: DetectorTrainConfig, data_yaml: Path, run: RunFolder, device: str,
                      emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    import_ultralytics()
    from ultralytics import RTDETR, YOLO

    is_rtdetr = "rtdetr" in Path(c.model).name.lower()
    try:
        model = (RTDETR if is_rtdetr else YOLO)(c.model)
    except Exception as exc:  # noqa: BLE001 - a yaml ultralytics cannot build
        raise LensDBError(f"ultralytics cannot build --model {c.model}: {first_line(exc)}")
    started = time.time()
    state: dict[str, Any] = {"best_loss": float("inf"), "best_loss_epoch": 0, "rows": []}

    def on_model_save(trainer) -> None:  # once per epoch, after weights/last.pt is written
        row = _epoch_row(trainer, started)
        run.log_epoch(row)
        state["rows"].append(row)
        if row["val_loss"] < state["best_loss"]:
            state["best_loss"], state["best_loss_epoch"] = row["val_loss"], row["epoch"]
            _atomic_copy(trainer.last, run.root / "best_loss.pt")
        emit({"kind": "epoch", **row, "epochs": c.epochs})

    model.add_callback("on_model_save", on_model_save)
    args = dict(data=str(data_yaml), epochs=c.epochs, imgsz=c.imgsz, batch=c.batch,
                device=ultralytics_device(device), seed=c.seed, deterministic=True,
                project=str(run.root.resolve()), name="ultralytics", exist_ok=True,
                plots=False, workers=c.workers, verbose=False, val=True, patience=max(
                    c.epochs, 100), amp=device.startswith("cuda"))
    if c.lr is not None:
        args.update(lr0=c.lr, optimizer="AdamW")
    try:
        with _quiet_ultralytics():
            model.train(**args)
    except (KeyboardInterrupt, LensDBError):
        raise
    except Exception as exc:  # noqa: BLE001 - ultralytics' own errors, one line
        raise LensDBError(f"ultralytics training failed: {first_line(exc, last=True)}")
    weights = run.root / "ultralytics" / "weights"
    last, best = weights / "last.pt", weights / "best.pt"
    if not last.is_file():
        raise LensDBError("ultralytics finished without weights/last.pt")
    with _quiet_ultralytics():
        _strip_copy(best if best.is_file() else last, run.root / "best.pt")
        _strip_copy(last, run.root / "final.pt")
        if (run.root / "best_loss.pt").is_file():
            _strip_copy(run.root / "best_loss.pt", run.root / "best_loss.pt")
    rows = state["rows"]
    best_row = max(rows, key=lambda r: r["map50_95"]) if rows else {}
    return {"epochs_run": len(rows), "best_epoch_map": best_row.get("epoch"),
            "best_epoch_loss": state["best_loss_epoch"], "best_val_loss": state["best_loss"],
            "last_epoch": rows[-1] if rows else {}}

"""Shared pieces for training runs: atomic file writes and run folders (device choice is
`lensdb.device.resolve_device`).

A run folder holds what a training run leaves behind, each file written atomically:

    run = RunFolder.create(Path("runs/exp1"), config={"lr": 1e-4})   # config.json
    run.log_step({"step": 1, "loss": 0.7})                           # steps.csv (appended)
    run.log_epoch({"epoch": 1, "val_loss": 0.6})                     # epochs.csv (appended)
    run.write_json("summary.json", {...})                            # summary.json
    run.register(registry_csv, {...})                                # one row across runs

Library code only: no printing, no CLI imports.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` through a temporary file in the same folder, fsynced, then renamed."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append one row; the header comes from the first row written. New keys in later rows
    are refused (a CSV keeps one header)."""
    path = Path(path)
    exists = path.exists() and path.stat().st_size > 0
    if exists:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        extra = [k for k in row if k not in header]
        if extra:
            raise LensDBError(f"{path} has no column(s) {', '.join(extra)}")
    else:
        header = list(row)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="raise")
        if not exists:
            writer.writeheader()
        writer.writerow({k: _cell(row.get(k, "")) for k in header})
        f.flush()
        os.fsync(f.fileno())


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class RunFolder:
    """One training run's folder."""

    root: Path  # the folder; config.json, steps.csv, epochs.csv, summary.json inside

    @classmethod
    def create(cls, root: Path, config: dict[str, Any], overwrite: bool = False) -> RunFolder:
        """A new run folder with its config.json. A folder that already holds a run is
        refused unless `overwrite` (then its logs are cleared)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise LensDBError(f"{root} is a file; give --out a folder for the run")
        if (root / "config.json").exists() and not overwrite:
            raise LensDBError(f"{root} already holds a run; pick another --out, or --resume it")
        root.mkdir(parents=True, exist_ok=True)
        for name in ("steps.csv", "epochs.csv", "summary.json"):
            (root / name).unlink(missing_ok=True)
        run = cls(root)
        run.write_json("config.json", {**config, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return run

    @classmethod
    def open(cls, root: Path) -> RunFolder:
        root = Path(root)
        if not (root / "config.json").exists():
            raise LensDBError(f"{root} is not a run folder (no config.json)")
        return cls(root)

    def config(self) -> dict[str, Any]:
        return json.loads((self.root / "config.json").read_text())

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.root / name
        atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
        return path

    def log_step(self, row: dict[str, Any]) -> None:
        append_csv(self.root / "steps.csv", row)

    def log_epoch(self, row: dict[str, Any]) -> None:
        append_csv(self.root / "epochs.csv", row)

    def truncate_logs(self, after_epoch: int) -> None:
        """On resume: drop log rows past the last epoch that was checkpointed."""
        for name in ("steps.csv", "epochs.csv"):
            path = self.root / name
            rows = [r for r in read_csv_rows(path) if int(r.get("epoch", 0)) <= after_epoch]
            path.unlink(missing_ok=True)
            for r in rows:
                append_csv(path, r)

    def register(self, registry: Path, row: dict[str, Any]) -> None:
        """One row for this run in a CSV shared across runs (`runs.csv` beside the runs)."""
        append_csv(registry, {"run": str(self.root), **row})

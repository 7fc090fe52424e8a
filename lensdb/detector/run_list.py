"""`list_runs`: every detector run under a folder, flat and grouped by configuration.

    r = list_runs("runs")     # {"runs": [row, ...], "groups": [row, ...]}

A run is a folder with config.json (lensdb.runs.RunFolder); its row carries the
configuration that defines a group (model, imgsz, batch, lr, queries, decoder layers,
backbone, clip init), status, epochs, seconds and LensDB's evaluation of best.pt from
summary.json. A group row has the runs' count, how many completed, and their mean and best
mAP50-95.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError

GROUP_KEYS = ("model", "imgsz", "batch", "lr", "num_queries", "decoder_layers", "backbone",
              "clip_init", "subset", "fast")


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def list_runs(root: str | Path) -> dict[str, list[dict[str, Any]]]:
    root = Path(root)
    if not root.is_dir():
        raise LensDBError(f"no such folder: {root}")
    rows = []
    for cfg_path in sorted(root.rglob("config.json")):
        cfg = _read(cfg_path)
        if "kind" not in cfg or "data" not in cfg:  # not a detector run
            continue
        summary = _read(cfg_path.with_name("summary.json"))
        ev = summary.get("eval") or {}
        rows.append({"run": str(cfg_path.parent), **{k: cfg.get(k) for k in GROUP_KEYS},
                     "seed": cfg.get("seed"), "status": summary.get("status", "unfinished"),
                     "epochs": cfg.get("epochs"), "seconds": summary.get("seconds"),
                     "map50": ev.get("map50"), "map50_95": ev.get("map50_95")})
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(str(r[k]) for k in GROUP_KEYS), []).append(r)
    grouped = []
    for members in groups.values():
        done = [m["map50_95"] for m in members if m["status"] == "complete"
                and m["map50_95"] is not None]
        grouped.append({**{k: members[0][k] for k in GROUP_KEYS}, "runs": len(members),
                        "complete": len(done),
                        "mean_map50_95": sum(done) / len(done) if done else None,
                        "best_map50_95": max(done) if done else None})
    return {"runs": rows, "groups": grouped}


def to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()

"""A store made in code, and a brute-force Python evaluation of queries over it.

The oracle reads the raw tables back and evaluates each query with plain Python
(predicates are written as Python lambdas in the tests, not parsed), so the parser,
compiler and SQL are checked against an independent implementation.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensdb.storage.store import Store

VIDEOS = [(0, "bikes.mp4", 40), (1, "street_a.mp4", 30), (2, "o'neil st.mp4", 25),
          (3, "empty.mp4", 0)]
TABLES = ("meta", "videos", "frames", "detections", "counts", "segments", "count_models",
          "predictions")


def make_store(root: Path, seed: int = 7, all_in_train: bool = False) -> Store:
    """Videos with sampled frames (every 3rd labelled); classes:
    person, car: counts + predictions (car lacks predictions on some unlabelled frames);
    bus: counts only (no predictor); dog: a count model and predictions, never detected."""
    rng = random.Random(seed)
    store = Store.open(root, create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        for model_id, cls in enumerate(("person", "car", "dog")):
            con.execute("INSERT INTO count_models (model_id, class, method, active) VALUES "
                        "(?, ?, 'mlp', true)", [model_id, cls])
        frame_id = 0
        for video_id, name, n in VIDEOS:
            con.execute("INSERT INTO videos (video_id, name, path, status) VALUES "
                        "(?, ?, ?, 'complete')", [video_id, name, f"/videos/{name}"])
            for i in range(n):
                labelled = i % 3 == 0
                ts = i * 3 / 25
                con.execute("INSERT INTO frames VALUES (?, ?, ?, ?, ?, 0)",
                            [frame_id, video_id, i * 3, ts, labelled])
                truth = {"person": rng.choice([0, 0, 1, 2, 3, 4, 5, 6]),
                         "car": rng.choice([0, 1, 1, 2, 3]), "bus": rng.choice([0, 0, 1])}
                if labelled:
                    for cls, k in truth.items():
                        if k:
                            con.execute("INSERT INTO counts VALUES (?, ?, ?)",
                                        [frame_id, cls, k])
                in_train = all_in_train or (labelled and i % 2 == 0)
                for model_id, cls in enumerate(("person", "car", "dog")):
                    if cls == "car" and not labelled and rng.random() < 0.15:
                        continue
                    base = truth.get(cls, 0)
                    value = max(0.0, base + rng.choice([-0.5, 0.5, 0.0, 0.4999, 0.51])
                                + rng.gauss(0, 0.6))
                    if rng.random() < 0.1:
                        value = base + 0.5  # exactly halfway: rounds up
                    con.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                                [frame_id, cls, model_id, value, in_train])
                frame_id += 1
        con.execute("COMMIT")
    return store


def checksum(store: Store) -> str:
    """A digest of every catalog table's contents and of the store's file listing."""
    h = hashlib.sha256()
    with store.catalog.connect() as con:
        for table in TABLES:
            rows = con.execute(f"SELECT * FROM {table}").fetchall()
            h.update(repr(sorted(rows, key=repr)).encode())
    for path in sorted(store.root.rglob("*")):
        if path.is_file() and not path.name.endswith(".wal"):
            h.update(f"{path.relative_to(store.root)}:{path.stat().st_size}".encode())
    return h.hexdigest()


def rnd(v: float) -> float:
    return math.floor(v + 0.5)


@dataclass
class F:
    """One frame as the oracle sees it; `c(cls)` is the rounded count under the source."""

    frame_id: int
    video_id: int
    video: str
    frame_index: int
    ts: float
    labelled: bool
    values: dict

    def c(self, cls: str) -> float:
        return rnd(self.values[cls])


class Oracle:
    def __init__(self, store: Store):
        with store.catalog.connect() as con:
            self.frames = con.execute(
                "SELECT f.frame_id, f.video_id, v.name, f.frame_index, f.ts, f.labelled "
                "FROM frames f JOIN videos v USING (video_id)").fetchall()
            self.counts = {(f, c): n for f, c, n in
                           con.execute("SELECT frame_id, class, n FROM counts").fetchall()}
            self.preds = {(f, c): (v, t) for f, c, v, t in con.execute(
                "SELECT frame_id, class, value, in_train FROM predictions").fetchall()}
            self.durations = dict(con.execute(
                "SELECT video_id, duration FROM videos").fetchall())

    def value(self, row, cls: str, source: str) -> float | None:
        fid, labelled = row[0], row[5]
        det = float(self.counts.get((fid, cls), 0)) if labelled else None
        pred = self.preds.get((fid, cls), (None, None))[0]
        if source == "detected":
            return det
        if source == "predicted":
            return pred
        return det if labelled else pred

    def domain(self, classes: list[str], source: str) -> list[F]:
        out = []
        for row in self.frames:
            if source == "detected" and not row[5]:
                continue
            values = {c: self.value(row, c, source) for c in classes}
            if any(v is None for v in values.values()):
                continue
            out.append(F(*row, values=values))
        return sorted(out, key=lambda f: (f.video, f.video_id, f.frame_index, f.frame_id))

    def select(self, pred, classes, source) -> list[F]:
        return [f for f in self.domain(classes, source) if pred(f)]

    def moments(self, pred, classes, source, gap=None) -> list[tuple]:
        """(video, start, end, frames, {cls: mean}) per run of consecutive matches."""
        runs, cur, last_video = [], None, None
        for f in self.domain(classes, source):
            if f.video_id != last_video:
                cur, last_video = None, f.video_id
            if pred(f):
                if cur is None:
                    cur = []
                    runs.append(cur)
                cur.append(f)
            else:
                cur = None
        if gap is not None:
            merged = []
            for run in runs:
                if merged and merged[-1][0].video_id == run[0].video_id and \
                        run[0].ts - merged[-1][-1].ts < gap:
                    merged[-1].extend(run)
                else:
                    merged.append(list(run))
            runs = merged
        return [(r[0].video, r[0].ts, r[-1].ts, len(r),
                 {c: sum(f.values[c] for f in r) / len(r) for c in classes}) for r in runs]

    def picks(self, pred, classes, source, limit, gap) -> list[F]:
        out, last = [], {}
        for f in self.select(pred, classes, source):
            if len(out) == limit:
                break
            if f.video_id not in last or f.ts - last[f.video_id] >= gap:
                out.append(f)
                last[f.video_id] = f.ts
        return out

    def held_out_pairs(self, classes: list[str]) -> tuple[list[tuple], bool]:
        """(detected F, predicted F) for labelled frames with predictions for all classes;
        held-out ones when there are any; and whether they are held-out."""
        pairs, held, _ = self.weighted_pairs(classes)
        return pairs, held

    def weighted_pairs(self, classes: list[str]) -> tuple[list[tuple], bool, np.ndarray]:
        """`held_out_pairs`, and each pair's weight: the time it stands for among all the
        labelled frames with predictions (`estimate_sql.time_weights`)."""
        from lensdb.query.estimate_sql import time_weights

        everyone = self._pairs(classes)
        d = [d for d, _ in everyone]
        w = time_weights(np.array([f.video_id for f in d]), np.array([f.ts for f in d]),
                         np.array([self.durations[f.video_id] or np.nan for f in d], float))
        held = [i for i, (f, _) in enumerate(everyone)
                if not any(self.preds[(f.frame_id, c)][1] for c in classes)]
        if held:
            return [everyone[i] for i in held], True, w[held]
        return everyone, False, w

    def _pairs(self, classes: list[str]) -> list[tuple]:
        pairs = []
        for row in self.frames:
            if not row[5] or any((row[0], c) not in self.preds for c in classes):
                continue
            d = F(*row, values={c: self.value(row, c, "detected") for c in classes})
            p = F(*row, values={c: self.preds[(row[0], c)][0] for c in classes})
            pairs.append((d, p))
        return pairs


def like(pattern: str, text: str) -> bool:
    rx = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, text, re.DOTALL) is not None

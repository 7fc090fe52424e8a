"""The stores of the plan tests (test_query_plans.py, test_plan_facts.py): rows laid out the
way LensDB writes them, and one layout per fact the aligned plan (layout.py) relies on, broken
(LAYOUTS, with the facts each one should show)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from lensdb.storage.store import Store

VIDEOS = [(0, "a.mp4", 14), (1, "b.mp4", 11), (2, "c'q.mp4", 9)]
CLASSES = ("person", "car")


@dataclass
class Rows:
    """A store's rows, in the order they are inserted."""

    videos: list = field(default_factory=list)
    frames: list = field(default_factory=list)  # (frame_id, video_id, frame_index, ts, labelled)
    counts: list = field(default_factory=list)  # (frame_id, class, n)
    preds: list = field(default_factory=list)  # (frame_id, class, value, in_train)


def lensdb_rows(seed: int = 3) -> Rows:
    """Rows as LensDB writes them: videos one after the other, frame ids counting up, every
    3rd frame labelled, predictions for every frame written per batch of 4 frames, class
    by class (as Store.commit_batch does)."""
    rng = random.Random(seed)
    rows = Rows(videos=[(v, name) for v, name, _ in VIDEOS])
    fid = 0
    for v, _, n in VIDEOS:
        batch = []
        for i in range(n):
            labelled = i % 3 == 0
            rows.frames.append((fid, v, i * 2, i * 0.08, labelled))
            truth = {"person": rng.choice([0, 1, 2, 2, 3]), "car": rng.choice([0, 0, 1, 2])}
            if labelled:
                rows.counts += [(fid, cls, k) for cls, k in truth.items() if k]
            batch.append((fid, truth, labelled and i % 2 == 0))
            fid += 1
            if len(batch) == 4 or i == n - 1:
                for cls in CLASSES:
                    for f, t, in_train in batch:
                        value = max(0.0, t[cls] + rng.choice([-0.5, 0.5, 0.0, 0.7, -0.8]))
                        rows.preds.append((f, cls, value, in_train))
                batch = []
    return rows


def build(root: Path, rows: Rows) -> Store:
    store = Store.open(root, create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        for model_id, cls in enumerate(CLASSES):
            con.execute("INSERT INTO count_models (model_id, class, method, active) VALUES "
                        "(?, ?, 'mlp', true)", [model_id, cls])
        for v, name in rows.videos:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (?, ?, 'complete')",
                        [v, name])
        con.executemany("INSERT INTO frames VALUES (?, ?, ?, ?, ?, 0)", rows.frames)
        con.executemany("INSERT INTO counts VALUES (?, ?, ?)", rows.counts)
        con.executemany("INSERT INTO predictions VALUES (?, ?, 0, ?, ?)", rows.preds)
        con.execute("COMMIT")
    return store


# ---- layouts: (name, rows, expected facts: complete, aligned(person), dense(person), runs)

def _interleaved() -> Rows:
    """Videos 0 and 1 ingested at once (a service with two streams): their frames alternate."""
    rows = lensdb_rows()
    a = [f for f in rows.frames if f[1] == 0]
    b = [f for f in rows.frames if f[1] == 1]
    rest = [f for f in rows.frames if f[1] > 1]
    mixed = [f for pair in zip(a, b) for f in pair] + a[len(b):] + rest
    return _renumber(rows, [f[0] for f in mixed])


def _resumed() -> Rows:
    """Video 0 stopped half-way and was resumed after video 1: two ranges of frame ids."""
    rows = lensdb_rows()
    a = [f for f in rows.frames if f[1] == 0]
    order = [f[0] for f in a[:6]] + [f[0] for f in rows.frames if f[1] == 1] + [
        f[0] for f in a[6:]] + [f[0] for f in rows.frames if f[1] == 2]
    return _renumber(rows, order)


def _renumber(rows: Rows, order: list[int]) -> Rows:
    """New frame ids 0.. in `order` (frames, counts and predictions follow)."""
    new = {old: i for i, old in enumerate(order)}
    by_id = {f[0]: f for f in rows.frames}
    frames = [(new[o],) + by_id[o][1:] for o in order]
    counts = sorted(((new[f],) + tuple(r) for f, *r in rows.counts), key=lambda r: r[0])
    preds = sorted(((new[f],) + tuple(r) for f, *r in rows.preds),
                   key=lambda r: (r[0], CLASSES.index(r[1])))
    return Rows(rows.videos, frames, counts, preds)


def _index_back() -> Rows:
    """Within video 0, frame ids 3 and 4 hold frame indexes in the wrong order."""
    rows = lensdb_rows()
    f3, f4 = rows.frames[3], rows.frames[4]
    rows.frames[3], rows.frames[4] = f3[:2] + f4[2:4] + f3[4:], f4[:2] + f3[2:4] + f4[4:]
    return rows


def _frames_out_of_order() -> Rows:
    """The frames table holds video 1's frames before video 0's (ids unchanged)."""
    rows = lensdb_rows()
    rows.frames = [f for f in rows.frames if f[1] == 1] + [f for f in rows.frames if f[1] != 1]
    return rows


def _retrained() -> Rows:
    """train-counter rewrote person's predictions: deleted, then all inserted again."""
    return lensdb_rows()  # the rewrite happens in the store (see test), not in the rows


def _shuffled() -> Rows:
    """person's predictions written in reverse frame order."""
    rows = lensdb_rows()
    person = [r for r in rows.preds if r[1] == "person"][::-1]
    rows.preds = [r for r in rows.preds if r[1] != "person"] + person
    return rows


def _duplicate_prediction() -> Rows:
    rows = lensdb_rows()
    rows.preds.append(next(r for r in rows.preds if r[0] == 5 and r[1] == "person"))
    return rows


def _orphan_prediction() -> Rows:
    """A prediction for a frame id that is not in frames."""
    rows = lensdb_rows()
    rows.preds.append((999, "person", 2.0, False))
    return rows


def _missing_prediction() -> Rows:
    """No person prediction on an unlabelled frame (in the middle of video 0)."""
    rows = lensdb_rows()
    rows.preds = [r for r in rows.preds if not (r[0] == 5 and r[1] == "person")]
    return rows


def _null_value() -> Rows:
    """A person prediction without a value, in the middle of video 1."""
    rows = lensdb_rows()
    rows.preds = [(f, cls, None if (f, cls) == (17, "person") else v, t)
                  for f, cls, v, t in rows.preds]
    return rows


def _missing_video() -> Rows:
    """Frames of a video that is not in the videos table."""
    rows = lensdb_rows()
    rows.videos = [v for v in rows.videos if v[0] != 1]
    return rows


def _unnamed_video() -> Rows:
    rows = lensdb_rows()
    rows.videos = [(v, None if v == 1 else name) for v, name in rows.videos]
    return rows


def _sparse_video_ids() -> Rows:
    """Video ids 0, 5 and 9 (named and ordered by a join, not by lookups)."""
    rows = lensdb_rows()
    ids = {0: 0, 1: 5, 2: 9}
    rows.videos = [(ids[v], name) for v, name in rows.videos]
    rows.frames = [(f, ids[v], *rest) for f, v, *rest in rows.frames]
    return rows


def _duplicate_count() -> Rows:
    """A detector count written twice (the general plan counts such a frame twice)."""
    rows = lensdb_rows()
    rows.counts.append(next(r for r in rows.counts if r[1] == "person"))
    return rows


LAYOUTS = {
    "lensdb": (lensdb_rows, (True, True, True, True)),
    "retrained": (_retrained, (True, True, True, True)),
    "interleaved": (_interleaved, (True, True, True, False)),
    "resumed": (_resumed, (True, True, True, False)),
    "index_back": (_index_back, (True, True, True, False)),
    "frames_out_of_order": (_frames_out_of_order, (True, False, False, True)),
    "shuffled": (_shuffled, (True, False, False, True)),
    "duplicate_prediction": (_duplicate_prediction, (True, False, False, True)),
    "orphan_prediction": (_orphan_prediction, (True, False, False, True)),
    "missing_prediction": (_missing_prediction, (True, False, False, True)),
    "null_value": (_null_value, (True, True, False, True)),
    "missing_video": (_missing_video, (False, True, True, True)),
    "unnamed_video": (_unnamed_video, (True, True, True, True)),
    "sparse_video_ids": (_sparse_video_ids, (True, True, True, True)),
    "duplicate_count": (_duplicate_count, (True, True, True, True)),
}
# the oracle keeps one prediction and count per frame, and sorts by video name
ORACLE_LAYOUTS = [k for k in LAYOUTS if not k.startswith("duplicate") and k != "unnamed_video"]


def make_stores(tmp_path_factory) -> dict[str, Store]:
    """One store per layout of LAYOUTS (the plan tests' module-scoped `stores` fixture)."""
    out: dict[str, Store] = {}
    for name, (make, _) in LAYOUTS.items():
        store = build(tmp_path_factory.mktemp("plans") / name, make())
        if name == "retrained":
            with store.catalog.connect(write=True) as con:
                con.execute("BEGIN")
                kept = con.execute("SELECT * FROM predictions WHERE class = 'person' "
                                   "ORDER BY frame_id").fetchall()
                con.execute("DELETE FROM predictions WHERE class = 'person'")
                con.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)", kept)
                con.execute("COMMIT")
        out[name] = store
    return out

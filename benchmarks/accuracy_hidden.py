"""The hidden-label simulation of `lensdb bench accuracy` (its module docstring has the rules).

A store of one video labelled on EVERY frame (cached); a strategy keeps some labels and
hides the rest; the counting methods fit on the kept ones and every figure is measured on
the hidden frames against the detector's own counts there (`run_video`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.bench import accuracy_ceiling as ceiling
from lensdb.bench import accuracy_estimates as ae
from lensdb.bench import common as c
from lensdb.bench.accuracy_estimates import prf

DETECTOR, EMBEDDER = "ssd-mobilenet-v2", "mobilenet-v2"  # the offline pair
PLACE_ROUNDS = 4  # place_labels rounds after the seed (lensdb label's default)
METHODS = ("constant", "interp", "median", "knn", "blend", "mlp", "combo", "auto")
MIN_RATE, TARGET_RATE, MAX_CLASSES = 0.2, 0.5, 4  # detections a frame (class rule)
COMMON, RARE = (0.2, 0.8), (0.05, 0.2)  # share of frames a predicate matches (predicate rule)
# strategy(video ids, ts, vectors, K, oracle) -> positions of the frames to keep labelled;
# oracle(positions) -> {class: counts there} (what a detector run would give)
Placement = Callable[[np.ndarray, np.ndarray, np.ndarray, int, Callable], np.ndarray]


def conf() -> float:
    """The detector's own default confidence (what `lensdb ingest` uses without --conf)."""
    from lensdb.models.registry import default_conf

    return default_conf(DETECTOR)


def uniform(video: np.ndarray, ts: np.ndarray, vectors: np.ndarray, k: int,
            oracle: Callable) -> np.ndarray:
    """1 frame in k per video, in time order from the first (what --detect-every k keeps)."""
    keep = []
    for v in np.unique(video):
        mine = np.flatnonzero(video == v)
        mine = mine[np.argsort(ts[mine], kind="stable")]
        keep.append(mine[::k])
    return np.sort(np.concatenate(keep))


def placed(video: np.ndarray, ts: np.ndarray, vectors: np.ndarray, k: int,
           oracle: Callable) -> np.ndarray:
    """The budget of `uniform(k)`: a uniform seed of 1 frame in 2k, the rest placed by
    `place_labels` from the vectors and the labels placed so far (see the module doc)."""
    from lensdb.counting.placement import Frames, place_labels

    budget = len(uniform(video, ts, vectors, k, oracle))
    seed = uniform(video, ts, vectors, 2 * k, oracle)
    got = oracle(seed)
    labels = {}
    for cls, y in got.items():
        labels[cls] = np.full(len(ts), np.nan)
        labels[cls][seed] = y
    frames = Frames(video, ts, vectors, labels)
    more = place_labels(frames, budget - len(seed), oracle, rounds=PLACE_ROUNDS)
    return np.sort(np.concatenate([seed, more]))


def scene(video: np.ndarray, ts: np.ndarray, vectors: np.ndarray, k: int,
          oracle: Callable) -> np.ndarray:
    """What `ingest --detect-every auto --detect-budget 1/k` labels: the scene-change placer
    over each video's frames in time order, in ingest's CPU batches. It sees the vectors as
    the store decodes them (ingest: as the embedder made them) and no label; its adaptive
    threshold keeps about the budget, not exactly it."""
    from lensdb.config import IngestConfig, batch_for
    from lensdb.counting.scene_change import scene_placer

    batch_size = batch_for(IngestConfig(), "cpu").batch_size
    keep: list[int] = []
    for v in np.unique(video):
        mine = np.flatnonzero(video == v)
        mine = mine[np.argsort(ts[mine], kind="stable")]
        placer = scene_placer({"detect_budget": 1.0 / k})
        assert placer is not None
        for s in range(0, len(mine), batch_size):
            batch = mine[s:s + batch_size]
            keep += [int(batch[i]) for i in placer.choose(vectors[batch])]
    return np.sort(np.array(keep, np.int64))


STRATEGIES: dict[str, Placement] = {"uniform": uniform, "placed": placed, "scene": scene}


def labelled_store(video: Path):
    """The video ingested with the detector on every frame, cached between runs."""
    import lensdb
    from lensdb.config import IngestConfig
    from lensdb.storage import Store

    root = c.bench_cache() / "accuracy" / (
        f"{video.stem}-{video.stat().st_size}-{DETECTOR}-{EMBEDDER}-conf{conf()}-every1")
    done = root / ".complete"
    if not done.exists():
        c.offline_env()
        db = lensdb.open(root, create=True)
        db.ingest([str(video)], IngestConfig(detector=DETECTOR, embedder=EMBEDDER,
                                             conf=conf(), detect_every=1))
        done.write_text("ok\n")
    return Store.open(root)


def choose_classes(data, classes: list[str]) -> list[str]:
    n = len(data.frame_ids)
    rates = {cls: float(data.counts[cls].sum()) / n for cls in classes}
    return [cls for cls in sorted(rates, key=lambda k: -rates[k]) if rates[cls] >= MIN_RATE][
        :MAX_CLASSES]


def predicates(truth: np.ndarray, cls: str) -> list[dict]:
    """The fixed predicates of one class (the rule in the module docstring)."""
    out, rare = [], None
    for k in range(1, int(truth.max()) + 1):
        share = float(np.mean(truth >= k))
        if COMMON[0] <= share <= COMMON[1]:
            out.append({"predicate": f"count({cls}) >= {k}", "k": k, "share": share,
                        "kind": "common"})
        elif RARE[0] <= share < RARE[1]:
            rare = {"predicate": f"count({cls}) >= {k}", "k": k, "share": share, "kind": "rare"}
    return out + ([rare] if rare else [])


def consecutive(data) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) positions of consecutive frames of the same video."""
    order = np.lexsort((data.ts, data.video_of))
    same = data.video_of[order][1:] == data.video_of[order][:-1]
    return order[:-1][same], order[1:][same]


def agreement(data, y: np.ndarray) -> float:
    """Share of frames within +-1 of the previous frame of the same video."""
    prev, nxt = consecutive(data)
    return float(np.mean(np.abs(y[nxt] - y[prev]) <= 1)) if len(prev) else float("nan")


def consecutive_f1(data, y: np.ndarray, k: int) -> float:
    """F1 of `count >= k` guessed from the previous frame's detector count: the detector's
    own frame-to-frame consistency on the predicate, as the +-1 agreement is for counts (a
    reference, not a bound: the guess carries two frames' flicker)."""
    prev, nxt = consecutive(data)
    return prf(y[nxt] >= k, y[prev] >= k)["f1"] if len(prev) else float("nan")


def run_video(path: Path, ks: list[int],
              placement: Placement | dict[str, Placement] | None = None) -> dict:
    """Every figure of one video (see the module docstring); `placement`: one strategy or
    {name: strategy} that pick the labels (default: STRATEGIES, uniform and placed)."""
    from lensdb.counting.pipeline import load_labelled
    from lensdb.counting.split import MIN_LABELLED, make_split
    from lensdb.errors import LensDBError

    if placement is None:
        placement = STRATEGIES
    elif callable(placement):
        placement = {getattr(placement, "__name__", "custom"): placement}
    store = labelled_store(path)
    data, every = load_labelled(store)
    if len(data.labelled) != len(data.frame_ids):
        raise ValueError(f"{path.name}: the cached store is not labelled on every frame")
    classes = choose_classes(data, every)
    out: dict[str, Any] = {"video": path.name, "frames": len(data.frame_ids), "classes": {},
                           "rows": [], "queries": [], "estimates": []}
    for cls in classes:
        truth = data.counts[cls]
        out["classes"][cls] = {"per_frame": float(truth.mean()), "agreement": agreement(
            data, truth), "target": bool(truth.mean() >= TARGET_RATE),
            "predicates": [{**q, "detector_f1": consecutive_f1(data, truth, q["k"])}
                           for q in predicates(truth, cls)]}

    guesses = {cls: ceiling.smoothers(data.video_of, data.ts, data.counts[cls])
               for cls in classes}
    for k in ks:
        for name, strategy in placement.items():
            asked: list[np.ndarray] = []

            def oracle(pos: np.ndarray, asked: list = asked) -> dict:
                pos = np.asarray(pos, np.int64)
                asked.append(pos)
                return {cls: data.counts[cls][pos].astype(np.float64) for cls in classes}

            kept = np.unique(np.asarray(strategy(data.video_of, data.ts, data.vectors, k,
                                                 oracle), np.int64))
            seen = np.unique(np.concatenate(asked)) if asked else kept[:0]
            if len(np.setdiff1d(seen, kept)):  # a label looked at is a detector run spent
                raise ValueError(f"strategy {name!r} asked for labels it does not keep")
            split = None  # new-footage validation (the embedding model) needs enough labels
            if len(kept) >= 2 * MIN_LABELLED:
                with contextlib.suppress(LensDBError):
                    split = make_split(data.video_of[kept], data.ts[kept], "time")
            _measure(data, classes, out, k, name, kept, split, guesses)
    return out


def _measure(data, classes: list[str], out: dict, k: int, strategy: str, kept: np.ndarray,
             split, guesses: dict[str, list[np.ndarray]]) -> None:
    """Fit on the `kept` labels, append the hidden frames' figures to out rows / queries,
    each next to the neighbour ceiling (`accuracy_ceiling`) on the same hidden frames."""
    from lensdb.counting import TrainConfig
    from lensdb.counting.fit import Frames, fit_class
    from lensdb.counting.metrics import rounded

    hidden = np.setdiff1d(np.arange(len(data.frame_ids)), kept)
    for cls in classes:
        truth = data.counts[cls]
        frames = Frames(data.vectors, data.video_of, data.ts, kept, truth[kept])
        fit = fit_class(frames, split, TrainConfig(classes=(cls,)), cls, deploy_all=True)
        preds = {m: fit.deploy[m] for m in METHODS if m in fit.deploy}
        preds["auto"] = fit.deploy[fit.method]
        base_mae = float(np.mean(np.abs(preds["constant"][hidden] - truth[hidden])))
        where = {"video": out["video"], "k": k, "strategy": strategy, "class": cls,
                 "labels": len(kept)}
        best = ceiling.per_frame(guesses[cls], truth, hidden, base_mae)
        oof = fit.oof[fit.method]
        weights = ae.query_weights(data.video_of, data.ts, kept)
        out["estimates"].append({**where, "predicate": f"avg(count({cls}))", **ae.mean_row(
            truth[kept], oof, truth, preds["auto"], hidden)})
        out["estimates"] += [{**where, "predicate": f"{r['kind']}(count({cls}))", **r} for r in
                             ae.extreme_rows(truth[kept], oof, truth, preds["auto"], hidden)]
        for q in out["classes"][cls]["predicates"]:
            out["estimates"] += [{**where, "predicate": q["predicate"], **r} for r in
                                 ae.selection_rows(truth[kept], oof, truth[hidden],
                                                   preds["auto"][hidden], q["k"], weights)]
        for method, p in preds.items():
            err = p[hidden] - truth[hidden]
            mae = float(np.mean(np.abs(err)))
            out["rows"].append({
                "video": out["video"], "class": cls, "k": k, "strategy": strategy,
                "labels": len(kept), "budget": len(kept) / len(data.frame_ids),
                "method": method, "chosen": fit.method if method == "auto" else None,
                "mae": mae, "mae_vs_constant": mae / base_mae if base_mae else float("nan"),
                "within1": float(np.mean(np.abs(rounded(p[hidden]) - truth[hidden]) <= 1)),
                "fill_in_mae": fit.fill_in.get(method, {}).get("mae"), **best,
            })
        for q in out["classes"][cls]["predicates"]:
            want = truth[hidden] >= q["k"]
            top = ceiling.predicate_f1(guesses[cls], truth, hidden, q["k"])
            for method in ("constant", "interp", "knn", "auto"):
                got = rounded(preds[method][hidden]) >= q["k"]
                out["queries"].append({"video": out["video"], "k_every": k,
                                       "strategy": strategy, "method": method,
                                       **{key: q[key] for key in ("predicate", "share",
                                                                  "kind", "detector_f1")},
                                       **prf(want, got), "ceiling_f1": top})


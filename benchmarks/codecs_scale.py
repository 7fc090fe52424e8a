"""Codecs at scale: index bytes, search recall@10 against exact search, and latency per
query, for flat-scan and IVF codecs on stores of synthetic clustered vectors.

Usage:
    python -m lensdb.bench.codecs_scale [--quick] [--out DIR] [--sizes 1e5 1e6]
        [--codecs NAME ...] [--dim D] [--queries Q] [--train T] [--nprobe 1 8 32]

Each size gets one set of unit vectors: Gaussian clusters (one per 50 vectors) in a 64-d
subspace of D dims, as image embeddings of a camera network (scenes, near-duplicates,
a low intrinsic dimension).
Queries are held-out points of the same clusters; the truth is the exact (float32) top 10.
Per codec, a real store is built the way ingest builds one (bind the space, train the
codec on a sample of T vectors, commit batches, compact into one segment file), then its
index is loaded as a search loads it (`Store.load_index`: a segment of 16 MiB or more is
memory-mapped) and each query is searched alone (`lensdb.search.filtered_search`, k=10)
at every nprobe for IVF codecs (flat-scan codecs: once, nprobe not applicable). Figures:
bytes of the segment file, recall@10 (share of the true top 10 found), median ms per
query, training and build seconds. IVF4096 runs only where there are 30 vectors per list
(>= 122,880 vectors). The default (1e5 vectors) runs in about three minutes on two cores;
1e6 by `--sizes 1e6`. No model runs. Writes codecs_scale.{csv,json,png}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lensdb.bench import common as c
from lensdb.search import filtered_search
from lensdb.storage import Batch, FrameRow, Store
from lensdb.storage.codecs import ivf_lists, min_training_points
from lensdb.storage.index_cache import SegmentedIndex

CODECS = ("Flat", "SQ8", "PQ64", "IVF1024,SQ8", "IVF1024,PQ64", "IVF1024,RaBitQ", "IVF4096,PQ64")
QUICK_CODECS = ("Flat", "SQ8", "IVF256,Flat", "IVF256,PQ16")
PER_LIST = 30  # vectors per inverted list an IVF codec needs to be benchmarked at a size
BATCH = 20_000  # vectors per commit while building a store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lensdb.bench.codecs_scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="20,000 vectors, 128 dims, four small codecs (what CI runs)")
    ap.add_argument("--out", default=None, help="results folder (default results/codecs_scale)")
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5],
                    help="store sizes in vectors (e.g. 1e5 1e6)")
    ap.add_argument("--codecs", nargs="+", default=None,
                    help=f"codec names or FAISS factories (default: {', '.join(CODECS)})")
    ap.add_argument("--dim", type=int, default=512, help="vector dimensions")
    ap.add_argument("--clusters", type=int, default=None,
                    help="clusters in the data (default: one per 50 vectors)")
    ap.add_argument("--queries", type=int, default=100, help="queries per size")
    ap.add_argument("--train", type=int, default=16384,
                    help="training sample (IVF: at least 8 per list)")
    ap.add_argument("--nprobe", nargs="+", type=int, default=[1, 8, 32],
                    help="IVF lists scanned per query")
    ap.add_argument("--threads", type=int, default=1,
                    help="FAISS threads while searching (1: a query per core, as a "
                    "server answering many; more threads help one query on a big scan)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.dim, args.queries = [2e4], 128, 50
        args.codecs, args.train = args.codecs or list(QUICK_CODECS), 4096
    args.codecs = args.codecs or list(CODECS)
    if any(p < 1 for p in args.nprobe) or any(s < 100 for s in args.sizes):
        ap.error("--nprobe must be >= 1 and --sizes >= 100")
    return args


def clustered(n: int, dim: int, clusters: int, latent: int = 64,
              seed: int = 0) -> np.ndarray:
    """n unit vectors: Gaussian clusters (unit spread around N(0, 1) centres) in a
    `latent`-dim subspace mapped into `dim` dims, plus a little full-rank noise. Like image
    embeddings, the data has a low intrinsic dimension, and a true top 10 often spans
    neighbouring clusters (so nprobe matters)."""
    rng = np.random.default_rng(seed)
    lift = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    centres = rng.normal(size=(clusters, latent)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, 100_000):  # in blocks: 1e6 x 512 floats is 2 GB already
        hi = min(n, lo + 100_000)
        z = centres[rng.integers(0, clusters, hi - lo)]
        z += rng.normal(size=z.shape).astype(np.float32)
        block = z @ lift + 0.1 * rng.normal(size=(hi - lo, dim)).astype(np.float32)
        out[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top10(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    return flat.search(queries, 10)[1]


def build_store(root: Path, codec: str, x: np.ndarray, train: int) -> tuple[Store, dict]:
    """A store of `x` built as ingest builds one, compacted into one segment file."""
    rng = np.random.default_rng(1)
    store = Store.open(root, create=True)
    with store.writer():
        factory = store.bind_space("synthetic@bench", x.shape[1], codec)
        need = min_training_points(factory)
        size = min(len(x), max(train, 8 * (ivf_lists(factory) or 0), need))
        t0 = time.perf_counter()
        trained = store.codec(x[rng.choice(len(x), size, replace=False)])
        train_s = time.perf_counter() - t0
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'synthetic', "
                        "'complete')")
        t0 = time.perf_counter()
        for lo in range(0, len(x), BATCH):
            hi = min(len(x), lo + BATCH)
            rows = [FrameRow(i, i / 10) for i in range(lo, hi)]
            store.commit_batch(Batch(0, rows, x[lo:hi]), trained)
        store.compact()
        build_s = time.perf_counter() - t0
    files = store.segments()
    return store, {"factory": factory, "train_vectors": size, "train_s": train_s,
                   "build_s": build_s, "bytes": sum(store.vectors.file_size(f)
                                                    for _, f, _ in files)}


def measure(store: Store, queries: np.ndarray, truth: np.ndarray, nprobes: list[int],
            nthreads: int = 1) -> list[dict]:
    """Recall@10 and median ms per query at each nprobe (once when not applicable)."""
    import faiss

    t0 = time.perf_counter()
    index = store.load_index()
    load_ms = 1000 * (time.perf_counter() - t0)
    nlist = ivf_lists(store.meta()["codec"])
    rows = []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(nthreads)
    for nprobe in (sorted({min(p, nlist) for p in nprobes}) if nlist else [None]):
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            pairs = filtered_search(index, q[None], 10, None, nprobe=nprobe)
            times.append(time.perf_counter() - t)
            found.append([i for i, _ in pairs])
        recall = np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
        rows.append({"nprobe": nprobe, "nlist": nlist, "recall_at_10": float(recall),
                     "median_ms": 1000 * c.median(times), "load_ms": load_ms,
                     "mapped": isinstance(index, SegmentedIndex)})
    faiss.omp_set_num_threads(threads)
    return rows


def run_size(args: argparse.Namespace, n: int, tmp: Path) -> list[dict]:
    x = clustered(n + args.queries, args.dim, args.clusters or max(n // 50, 10))
    queries, x = x[:args.queries].copy(), x[args.queries:]
    truth = exact_top10(x, queries)
    rows = []
    for codec in args.codecs:
        lists = ivf_lists(codec) or 0
        if lists and n < PER_LIST * lists:
            c.console.print(f"[dim]{n:,} vectors: {codec} skipped (needs {PER_LIST} per "
                            f"list, {PER_LIST * lists:,})[/]")
            continue
        c.console.print(f"[dim]{n:,} vectors: {codec}...[/]")
        store, built = build_store(tmp / f"{n}-{codec.replace(',', '_')}", codec, x,
                                   args.train)
        for row in measure(store, queries, truth, args.nprobe, args.threads):
            rows.append({"vectors": n, "codec": codec, **built,
                         "bytes_per_vector": built["bytes"] / n, **row})
        del store
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = c.results_dir("codecs_scale", args.out)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lensdb-bench-codecs-") as tmp:
        for size in args.sizes:
            rows += run_size(args, int(size), Path(tmp))
    c.print_table("Codecs at scale: recall@10 vs exact search, latency per query", rows, [
        ("vectors", "vectors"), ("codec", "codec"), ("bytes", "index B"),
        ("bytes_per_vector", "B/vector"), ("nlist", "lists"), ("nprobe", "nprobe"),
        ("recall_at_10", "recall@10"), ("median_ms", "median ms/query"),
        ("mapped", "mmap"), ("train_s", "train s"), ("build_s", "build s")])
    goals = c.print_goals(_goals(rows))
    note = (f"{args.dim}-d clustered unit vectors ({args.clusters or 'n/50'} clusters), "
            f"{args.queries} queries, k=10, trained on {args.train}, {args.threads} FAISS "
            f"thread(s) per query; {c.machine()['cpu']}")
    _plot(rows, out / "codecs_scale.png", note)
    c.write_csv(out / "codecs_scale.csv", rows)
    result = {"benchmark": "codecs_scale", "machine": c.machine(), "args": vars(args),
              "rows": rows, "goals": goals}
    c.write_json(out / "codecs_scale.json", result)
    return result


def _goals(rows: list[dict]) -> list[dict]:
    goals = []
    for n in sorted({r["vectors"] for r in rows}):
        at = [r for r in rows if r["vectors"] == n]
        flat = next((r for r in at if r["codec"] == "Flat"), None)
        ivf = [r for r in at if r["nlist"]]
        if flat is None or not ivf:
            continue
        good = [r for r in ivf if r["recall_at_10"] >= 0.8]
        best = min(good, key=lambda r: r["median_ms"]) if good else \
            max(ivf, key=lambda r: r["recall_at_10"])
        goals.append(c.goal(
            f"{n:,} vectors: an IVF codec at recall@10 >= 0.8 answers 10x faster than the "
            "exact scan",
            f"{best['codec']} nprobe {best['nprobe']}: {best['median_ms']:.2f} ms, recall "
            f"{best['recall_at_10']:.2f}, {best['bytes_per_vector']:.0f} B/vector vs Flat "
            f"{flat['median_ms']:.2f} ms", bool(good) and
            10 * best["median_ms"] <= flat["median_ms"]))
    return goals


def _plot(rows: list[dict], path: Path, note: str) -> None:
    plt = c.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (n, codec) in dict.fromkeys((r["vectors"], r["codec"]) for r in rows):
        pts = [r for r in rows if r["vectors"] == n and r["codec"] == codec]
        ax.plot([r["median_ms"] for r in pts], [r["recall_at_10"] for r in pts], "o-",
                label=f"{codec} ({n:,})")
    ax.set_xscale("log")
    ax.set_xlabel("median ms per query (log)")
    ax.set_ylabel("recall@10 vs exact")
    ax.legend(fontsize=7)
    c.save_plot(fig, path, note)


if __name__ == "__main__":
    main()

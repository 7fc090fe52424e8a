"""Storage benchmark: what compaction rewrites as a live stream grows, and search latency
with the index rebuilt per request vs kept on the Store between requests.

Usage:
    python -m lensdb.bench.storage [--quick] [--out DIR] [--commits N] [--batch B]
        [--dim D] [--repeats R]

Compaction: two stores take the same live stream, interleaved (commits of B random unit
vectors, SQ8, D dims; a compaction check every 64 commits, as `lensdb ingest` does). The
baseline is the first policy (merge every segment into one once there are more than 64);
the other is the size-tiered merge `Store.maybe_compact` does now. At each doubling of the
stream: bytes stored, bytes rewritten by compaction so far (each policy), their ratio.

Search: on the long tiered store, `lensdb.search.search(like=frame, k=10)` and the index
load alone, each timed three ways, interleaved, medians over R repeats: cold (a fresh
Store: the index is rebuilt from every segment file, as every request did before), kept
(the same Store again, nothing committed since), after one commit (the kept index plus the
one new segment). Ratios are against cold, in the same run. No model runs: vectors are
random, which does not change any of these costs. Writes storage.{csv,json,png}.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np

from lensdb.bench import common as c
from lensdb.storage import Batch, FrameRow, Store
from lensdb.storage.catalog import one_row
from lensdb.storage.compaction import CompactionStats

CHECK_EVERY = 64  # commits between compaction checks (lensdb.writer.COMPACT_EVERY)
OLD_LIMIT = 64  # the first policy: merge everything beyond this many segments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lensdb.bench.storage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="192 commits, 3 repeats")
    ap.add_argument("--out", default=None, help="results folder (default results/storage)")
    ap.add_argument("--commits", type=int, default=1024, help="length of the live stream")
    ap.add_argument("--batch", type=int, default=32, help="vectors per commit")
    ap.add_argument("--dim", type=int, default=512, help="vector dimensions")
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats per search mode")
    args = ap.parse_args(argv)
    if args.quick:
        args.commits, args.repeats = min(args.commits, 192), min(args.repeats, 3)
    return args


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _new_store(root: Path, dim: int, rng: np.random.Generator) -> tuple[Store, object]:
    store = Store.open(root, create=True)
    with store.writer():
        store.bind_space("random@bench", dim, "SQ8")
        codec = store.codec(_unit(rng, 1024, dim))
        with store.catalog.connect(write=True) as con:
            con.execute("INSERT INTO videos (video_id, name, status) VALUES (0, 'stream', "
                        "'ingesting')")
    return store, codec


def _merge_all_beyond_limit(store: Store) -> CompactionStats:
    with store.catalog.connect() as con:
        n = one_row(con.execute("SELECT count(*) FROM segments"))[0]
    return store.compact() if n > OLD_LIMIT else CompactionStats()


def stream(args: argparse.Namespace, tmp: Path) -> tuple[list[dict], Store, object]:
    """Both policies on one interleaved stream; rows at each doubling; the tiered store."""
    rng = np.random.default_rng(0)
    policies = {"before": _merge_all_beyond_limit, "tiers": Store.maybe_compact}
    stores = {name: _new_store(tmp / name, args.dim, rng) for name in policies}
    rewritten = dict.fromkeys(policies, 0)
    seconds = dict.fromkeys(policies, 0.0)
    rows, mark = [], CHECK_EVERY
    with contextlib.ExitStack() as writing:
        for store, _ in stores.values():
            writing.enter_context(store.writer())
        for commit in range(1, args.commits + 1):
            _commit_both(stores, policies, commit, args, rng, rewritten, seconds)
            if commit != mark and commit != args.commits:
                continue
            mark *= 2
            tiers = stores["tiers"][0]
            stored = tiers.vectors.size_on_disk()
            row = {"commits": commit, "vectors": commit * args.batch, "bytes_stored": stored,
                   "rewritten_before": rewritten["before"], "rewritten_tiers": rewritten["tiers"],
                   "per_byte_before": rewritten["before"] / stored,
                   "per_byte_tiers": rewritten["tiers"] / stored,
                   "compact_s_before": seconds["before"], "compact_s_tiers": seconds["tiers"],
                   "segments_tiers": len(tiers.segments())}
            row["ratio"] = row["rewritten_before"] / max(row["rewritten_tiers"], 1)
            rows.append(row)
            c.console.print(f"[dim]{commit} commits: rewritten {rewritten}[/]")
    store, codec = stores["tiers"]
    return rows, store, codec


def _commit_both(stores, policies, commit, args, rng, rewritten, seconds) -> None:
    vectors = _unit(rng, args.batch, args.dim)
    frames = [FrameRow(commit * args.batch + i, commit + i / args.batch)
              for i in range(args.batch)]
    for name, (store, codec) in stores.items():
        store.commit_batch(Batch(0, frames, vectors), codec)
        if commit % CHECK_EVERY == 0:
            t0 = time.perf_counter()
            rewritten[name] += policies[name](store).bytes
            seconds[name] += time.perf_counter() - t0


def search_latency(args: argparse.Namespace, store: Store, codec) -> list[dict]:
    from lensdb.search import search

    rng = np.random.default_rng(1)
    nvec = int(store.load_index().ntotal)
    kept = Store.open(store.root)
    kept.load_index()
    times: dict[str, list[float]] = {f"{what}_{mode}": [] for what in ("search", "load")
                                     for mode in ("cold", "kept", "after_commit")}
    for r in range(args.repeats):
        like = int(rng.integers(0, nvec))
        for what, run in (("search", lambda s, like=like: search(s, like=like, k=10)),
                          ("load", lambda s: s.load_index())):
            t0 = time.perf_counter()
            run(Store.open(store.root))
            times[f"{what}_cold"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run(kept)
            times[f"{what}_kept"].append(time.perf_counter() - t0)
            with store.writer():
                n = args.batch
                start = nvec + 1000 * (2 * r + (what == "load"))
                store.commit_batch(Batch(0, [FrameRow(start + i, 0.0) for i in range(n)],
                                         _unit(rng, n, args.dim)), codec)
            t0 = time.perf_counter()
            run(kept)
            times[f"{what}_after_commit"].append(time.perf_counter() - t0)
    rows = []
    for what in ("search", "load"):
        cold = c.median(times[f"{what}_cold"])
        for mode in ("cold", "kept", "after_commit"):
            med = c.median(times[f"{what}_{mode}"])
            rows.append({"operation": "search (like=, k=10)" if what == "search"
                         else "index load", "mode": mode, "median_ms": 1000 * med,
                         "speedup_vs_cold": cold / med, "vectors": nvec,
                         "segments": len(store.segments())})
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = c.results_dir("storage", args.out)
    with tempfile.TemporaryDirectory(prefix="lensdb-bench-storage-") as tmp:
        growth, store, codec = stream(args, Path(tmp))
        latency = search_latency(args, store, codec)
    c.print_table("Compaction on a live stream: bytes rewritten (cumulative)", growth, [
        ("commits", "commits"), ("vectors", "vectors"), ("bytes_stored", "stored B"),
        ("rewritten_before", "merge-all B"), ("rewritten_tiers", "tiers B"),
        ("per_byte_before", "merge-all per stored B"), ("per_byte_tiers", "tiers per stored B"),
        ("ratio", "merge-all / tiers"), ("segments_tiers", "segments (tiers)")])
    c.print_table("Search latency: index rebuilt per request (cold) vs kept on the Store",
                  latency, [("operation", "operation"), ("mode", "mode"),
                            ("median_ms", "median ms"), ("speedup_vs_cold", "x vs cold"),
                            ("vectors", "vectors"), ("segments", "segments")])
    first, last = growth[0], growth[-1]
    doublings = max(np.log2(last["commits"] / first["commits"]), 1.0)
    tiers_growth = (last["per_byte_tiers"] - first["per_byte_tiers"]) / doublings
    search_rows = {r["mode"]: r for r in latency if r["operation"].startswith("search")}
    goals = c.print_goals([
        c.goal("compaction rewrites O(n log n): per stored byte, tiers add at most ~1 "
               "rewrite per 8x of data (<= 0.5 per doubling)",
               f"{tiers_growth:.2f} more rewrites per stored byte per doubling "
               f"(merge-all: {last['per_byte_before']:.1f} at {last['commits']} commits)",
               tiers_growth <= 0.5),
        c.goal("tiers rewrite less than merge-all on the long stream",
               f"{last['rewritten_tiers']:,} B vs {last['rewritten_before']:,} B "
               f"({last['ratio']:.1f}x less)", last["rewritten_tiers"] < last["rewritten_before"]),
        c.goal("search with the kept index is faster than rebuilding it per request",
               f"median {search_rows['kept']['median_ms']:.1f} ms vs "
               f"{search_rows['cold']['median_ms']:.1f} ms cold "
               f"({search_rows['kept']['speedup_vs_cold']:.1f}x)",
               search_rows["kept"]["median_ms"] < search_rows["cold"]["median_ms"]),
    ])
    note = (f"{last['vectors']:,} random {args.dim}-d vectors, SQ8, {args.batch} per commit; "
            f"medians of {args.repeats}; {c.machine()['cpu']}")
    _plot(growth, latency, out / "storage.png", note)
    c.write_csv(out / "storage.csv", [{"part": "compaction", **r} for r in growth]
                + [{"part": "search", **r} for r in latency])
    result = {"benchmark": "storage", "machine": c.machine(), "args": vars(args),
              "compaction": growth, "search": latency, "goals": goals}
    c.write_json(out / "storage.json", result)
    return result


def _plot(growth: list[dict], latency: list[dict], path: Path, note: str) -> None:
    plt = c.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    x = [r["commits"] for r in growth]
    a.plot(x, [r["rewritten_before"] / 1e6 for r in growth], "o-", label="merge all (before)")
    a.plot(x, [r["rewritten_tiers"] / 1e6 for r in growth], "o-", label="size tiers")
    a.set_xlabel("commits")
    a.set_ylabel("MB rewritten by compaction")
    a.legend()
    labels = [f"{r['operation'].split(' (')[0]}\n{r['mode']}" for r in latency]
    b.bar(range(len(latency)), [r["median_ms"] for r in latency])
    b.set_xticks(range(len(latency)), labels, fontsize=7)
    b.set_ylabel("median ms")
    c.save_plot(fig, path, note)


if __name__ == "__main__":
    main()

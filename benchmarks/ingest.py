"""Ingest benchmark: every stage alone, end to end, and peak memory as the video grows 4x.

Usage:
    python -m lensdb.bench.ingest [--quick] [--out DIR] [--video PATH] [--max-frames N]
        [--detect-every K] [--batch-size N] [--configs default offline] [--repeats R]
    lensdb bench ingest [--quick] [--out DIR]

Two model configurations: `default` (YOLO11n + CLIP ViT-B/32, built from their configs with
random weights: the same speed as trained ones) and `offline` (ssd-mobilenet-v2 +
mobilenet-v2, real weights). The video (default the bikes.mp4 sample) is re-encoded once as
is and once played four times in a row, so both have the same encoding.

In one run, on the same frames: decode only (LensDB's reader), detector only (on every K-th
frame), embedder only, writer only (commit_batch of the vectors and detections into a fresh
store, SQ8 codec), each as a median over batches; the detector's rate counts in pipeline
terms (x K, since it sees one frame in K). End to end runs `lensdb.ingest` in a subprocess
that samples its own resident memory (native allocations included): frames per second,
ratio to the slowest stage, peak RSS for the video and for the 4x video (offline pair).
Timings repeated (interleaved), medians reported. --quick: 48 frames, once. Writes ingest.{csv,
json,png} under the results folder."""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lensdb.bench import common as c

GROWTH_LIMIT = 0.10  # "memory flat": peak RSS of the 4x video at most 10% above the 1x video


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lensdb.bench.ingest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small and fast, for CI")
    ap.add_argument("--out", help="results folder (default ./results/ingest)")
    ap.add_argument("--video", help="video file (default: the bikes.mp4 sample)")
    ap.add_argument("--max-frames", type=int, help="use the first N frames of the video")
    ap.add_argument("--detect-every", type=int, default=5, help="label every K-th frame")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--configs", nargs="+", default=["default", "offline"],
                    choices=["default", "offline"])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every timing")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: one end-to-end run
    args = ap.parse_args(argv)
    if args.quick:
        args.max_frames = args.max_frames or 48
        args.repeats = 1
    return args


def models(config: str) -> tuple[str, str]:
    offline = config == "offline"
    return ("ssd-mobilenet-v2", "mobilenet-v2") if offline else (c.random_yolo(), c.random_clip())


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def per_batch_rate(fn, groups: list[list]) -> tuple[float, list]:
    """Median items/s over batches (robust to other work on the machine), and the outputs."""
    rates, outs = [], []
    for group in groups:
        start = time.perf_counter()
        outs.append(fn(group))
        rates.append(len(group) / max(time.perf_counter() - start, 1e-9))
    return c.median(rates), outs


def torch_threads() -> int | None:
    return int(sys.modules["torch"].get_num_threads()) if "torch" in sys.modules else None


def stages_alone(config: str, frames: list, args: argparse.Namespace) -> list[dict]:
    """Embedder, detector and writer alone on the same decoded frames."""
    import numpy as np

    from lensdb.storage.store import Batch, FrameRow, Store

    detector, embedder = load_models(config)
    k, size = args.detect_every, args.batch_size
    threads = torch_threads if config == "default" else lambda: None
    # Fresh copies per stage (the offline pair remembers recent frames by buffer); the
    # embedder first, before anything can change torch's thread count.
    mine = [f.copy() for f in frames]
    embedder.embed_images(mine[:2])  # warm-up (lazy init, first-call allocations)
    emb_rate, vecs = per_batch_rate(embedder.embed_images, batches(mine, size))
    rows = [{"stage": "embed", "items": len(frames), "rate": emb_rate,
             "pipeline_fps": emb_rate, "torch_threads": threads()}]
    labelled = list(range(0, len(frames), k))
    mine2 = [frames[i].copy() for i in labelled]
    detector.detect([frames[0].copy()])
    det_rate, dets = per_batch_rate(detector.detect, batches(mine2, size))
    rows.append({"stage": "detect", "items": len(labelled), "rate": det_rate,
                 "pipeline_fps": det_rate * k, "torch_threads": threads()})
    del mine, mine2
    vectors = np.concatenate(vecs)
    found = dict(zip(labelled, [d for group in dets for d in group]))
    with tempfile.TemporaryDirectory(prefix="lensdb-bench-") as tmp:
        store = Store.open(Path(tmp) / "store", create=True)
        with store.writer():
            store.bind_space(embedder.model_id, embedder.dim, "SQ8")
            start = time.perf_counter()
            codec = store.codec(vectors)
            train_s = time.perf_counter() - start

            def commit(group: list[int]) -> None:
                rows_ = [FrameRow(i, i / 25.0, found.get(i)) for i in group]
                store.commit_batch(Batch(0, rows_, vectors[group[0] : group[-1] + 1]), codec)

            write_rate, _ = per_batch_rate(commit, batches(list(range(len(frames))), size))
    rows.append({"stage": "write", "items": len(frames), "rate": write_rate,
                 "pipeline_fps": write_rate, "train_codec_s": train_s})
    return [r | {"config": config} for r in rows]


def decode_alone(video: Path) -> dict:
    from lensdb.frames import iter_frames

    start, n = time.perf_counter(), 0
    for _frame in iter_frames(str(video)):
        n += 1
    rate = n / (time.perf_counter() - start)
    return {"config": "both", "stage": "decode", "items": n, "rate": rate, "pipeline_fps": rate}


def median_stages(runs: list[dict]) -> list[dict]:
    """One row per (config, stage): medians over the repeats, the single runs kept."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["config"], r["stage"]), []).append(r)
    return [rs[0] | {key: c.median(r[key] for r in rs) for key in ("rate", "pipeline_fps")}
            | {"rate_runs": [r["rate"] for r in rs]} for rs in groups.values()]


@functools.cache
def load_models(config: str) -> tuple:
    from lensdb.models.registry import get_detector, get_embedder

    det_name, emb_name = models(config)
    return get_detector(det_name), get_embedder(emb_name)


def child(spec_text: str) -> dict:
    """One end-to-end ingest in this (fresh) process, its own memory sampled."""
    import lensdb
    from lensdb.config import IngestConfig

    spec = json.loads(spec_text)
    start_rss = c.rss_bytes()
    with c.PeakRss() as peak:
        db = lensdb.open(spec["store"], create=True)
        report = db.ingest([spec["video"]], IngestConfig(
            detector=spec["detector"], embedder=spec["embedder"], codec="SQ8",
            detect_every=spec["detect_every"], batch_size=spec["batch_size"]))
    info = report.to_dict()
    video = info["videos"][0]
    out = {"frames": video["frames"], "seconds": video["seconds"], "status": video["status"],
           "fps": video["frames"] / video["seconds"], "stages": info["stages"],
           "start_rss": start_rss, "peak_rss": peak.peak, "torch_threads": torch_threads(),
           "rss_timeline": peak.samples[:: max(1, len(peak.samples) // 200)]}
    print("BENCH-RESULT " + json.dumps(out), flush=True)
    return out


def run_child(config: str, video: Path, args: argparse.Namespace) -> dict:
    det, emb = models(config)
    with tempfile.TemporaryDirectory(prefix="lensdb-bench-") as tmp:
        spec = {"store": str(Path(tmp) / "store"), "video": str(video), "detector": det,
                "embedder": emb, "detect_every": args.detect_every,
                "batch_size": args.batch_size}
        proc = subprocess.run([sys.executable, "-m", "lensdb.bench.ingest", "--child",
                               json.dumps(spec)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(f"end-to-end ingest ({config}) failed: {proc.stderr.strip()[-600:]}")


def summarise(config: str, stages: list[dict], e2e: dict, e2e4: dict | None) -> dict:
    mine = [s for s in stages if s["config"] in (config, "both")]
    slow = min(mine, key=lambda s: s["pipeline_fps"])
    rate = {s["stage"]: s["pipeline_fps"] for s in mine}
    row = {"config": config, "frames": e2e["frames"], "e2e_fps": e2e["fps"],
           "slowest_stage": slow["stage"], "slowest_fps": slow["pipeline_fps"],
           "ratio": e2e["fps"] / slow["pipeline_fps"],
           "serial_models_fps": 1 / (1 / rate["detect"] + 1 / rate["embed"]),
           "serial_all_fps": 1 / sum(1 / v for v in rate.values()),
           "peak_rss_mb": e2e["peak_rss"] / 2**20, "torch_threads_e2e": e2e["torch_threads"]}
    if e2e4 is not None:
        row |= {"frames_4x": e2e4["frames"], "e2e_fps_4x": e2e4["fps"],
                "rss_timeline": e2e["rss_timeline"], "rss_timeline_4x": e2e4["rss_timeline"],
                "peak_rss_mb_4x": e2e4["peak_rss"] / 2**20,
                "memory_growth": e2e4["peak_rss"] / e2e["peak_rss"] - 1}
    return row


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.child:
        return child(args.child)
    out = c.results_dir("ingest", args.out)
    src = Path(args.video) if args.video else c.sample_video("bikes.mp4")
    with c.console.status("re-encoding the video (1x and 4x)"):
        v1, v4 = c.loop_video(src, 1, args.max_frames), c.loop_video(src, 4, args.max_frames)
    frames = c.decode(v1)
    memory_config = "offline" if "offline" in args.configs else args.configs[0]
    runs: list[dict] = []
    e2e_runs: dict[str, list[dict]] = {config: [] for config in args.configs}
    for rep in range(args.repeats):  # interleaved, so that load from elsewhere hits all alike
        with c.console.status(f"[{rep + 1}/{args.repeats}] decode alone"):
            runs.append(decode_alone(v1))
        for config in args.configs:
            with c.console.status(f"[{rep + 1}/{args.repeats}] {config}: stages alone"):
                runs += stages_alone(config, frames, args)
            with c.console.status(f"[{rep + 1}/{args.repeats}] {config}: end to end"):
                e2e_runs[config].append(run_child(config, v1, args))
    stages = median_stages(runs)
    summary = []
    for config in args.configs:
        e2e = sorted(e2e_runs[config], key=lambda r: r["fps"])[len(e2e_runs[config]) // 2]
        e2e4 = None
        if config == memory_config:
            with c.console.status(f"{config}: end to end on the 4x video"):
                e2e4 = run_child(config, v4, args)
        summary.append(summarise(config, stages, e2e, e2e4) | {
            "e2e_fps_runs": [r["fps"] for r in e2e_runs[config]], "stages_e2e": e2e["stages"]})
    note = (f"{len(frames)} frames of {src.name} ({frames[0].shape[1]}x{frames[0].shape[0]}), "
            f"detect every {args.detect_every}, batch {args.batch_size}; {c.RANDOM_NOTE}; "
            "offline = ssd-mobilenet-v2 + mobilenet-v2 (real weights)")
    c.print_table("Stages alone (median over batches)", stages, [
        ("config", "config"), ("stage", "stage"), ("items", "items"), ("rate", "items/s"),
        ("pipeline_fps", "pipeline frames/s"), ("torch_threads", "torch threads")], note)
    c.print_table("End to end", summary, [
        ("config", "config"), ("frames", "frames"), ("e2e_fps", "frames/s"),
        ("slowest_stage", "slowest stage"), ("slowest_fps", "its frames/s"),
        ("ratio", "e2e / slowest"), ("serial_models_fps", "detect+embed serial"),
        ("serial_all_fps", "all stages serial"),
        ("peak_rss_mb", "peak RSS MB"), ("peak_rss_mb_4x", "peak RSS MB (4x video)"),
        ("memory_growth", "growth")])
    goals = c.print_goals(make_goals(summary))
    result = {"benchmark": "ingest", "machine": c.machine(), "note": note,
              "video": str(src), "frames": len(frames), "detect_every": args.detect_every,
              "stages": stages, "end_to_end": summary, "goals": goals}
    c.write_csv(out / "ingest.csv", stages + [{k: v for k, v in s.items() if not k.startswith(
        ("stages_", "rss_"))} | {"stage": "end-to-end"} for s in summary])
    c.write_json(out / "ingest.json", result)
    plot(stages, summary, out / "ingest.png", note)
    c.console.print(f"results in {out}/ingest.{{csv,json,png}}")
    return result


def make_goals(summary: list[dict]) -> list[dict]:
    ratio = "; ".join(f"{s['config']}: {s['ratio']:.2f} ({s['e2e_fps']:.1f} vs {s['slowest_stage']}"
                      f" {s['slowest_fps']:.1f} frames/s)" for s in summary)
    goals = [c.goal("end-to-end ingest >= 0.9x the slowest stage", ratio,
                    all(s["ratio"] >= 0.9 for s in summary))]
    mem = [s for s in summary if "memory_growth" in s]
    goals.append(c.goal(
        f"memory flat as the video grows 4x (peak RSS +{GROWTH_LIMIT:.0%} at most)",
        "; ".join(f"{s['config']}: {s['peak_rss_mb']:.0f} -> {s['peak_rss_mb_4x']:.0f} MB "
                  f"({s['memory_growth']:+.1%})" for s in mem) or "not run",
        all(s["memory_growth"] <= GROWTH_LIMIT for s in mem) if mem else None))
    return goals


def plot(stages: list[dict], summary: list[dict], path: Path, note: str) -> None:
    fig, (left, right) = c.pyplot().subplots(1, 2, figsize=(12, 4.8), width_ratios=[2.2, 1])
    names = ["decode", "detect", "embed", "write", "end-to-end"]
    width = 0.8 / max(1, len(summary))
    for i, s in enumerate(summary):
        rate = {r["stage"]: r["pipeline_fps"] for r in stages if r["config"] in (s["config"],
                                                                                 "both")}
        rate["end-to-end"] = s["e2e_fps"]
        bars = left.bar([j + i * width for j in range(len(names))], [rate[n] for n in names],
                        width, label=s["config"])
        left.bar_label(bars, fmt="%.0f", fontsize=7)
    left.set_xticks([j + width * (len(summary) - 1) / 2 for j in range(len(names))],
                    ["decode", "detect (x K)", "embed", "write", "end-to-end"])
    left.set(yscale="log", ylabel="frames/s (log)", title="stages alone vs end to end")
    left.legend()
    for s in (s for s in summary if "rss_timeline_4x" in s):
        for key, label in (("rss_timeline", "1x"), ("rss_timeline_4x", "4x")):
            right.plot([t for t, _ in s[key]], [r / 2**20 for _, r in s[key]],
                       label=f"{s['config']}, {label} video")
    right.set(xlabel="seconds into the ingest", ylabel="resident memory (MB)", ylim=(0, None),
              title="memory as the video grows 4x")
    right.legend(fontsize=8)
    c.save_plot(fig, path, note)


if __name__ == "__main__":
    main()

"""CPU embedder benchmark: batched array preprocessing vs open_clip's per-PIL-image transform,
and the int8 vision tower vs fp32, on the same frames in one run.

Usage:
    python -m lensdb.bench.embed_cpu [--quick] [--out DIR] [--video PATH] [--frames N]
        [--batch-size B] [--repeats R] [--arch ViT-B-32]
    lensdb bench embed_cpu [--quick] [--out DIR]

CLIP (default ViT-B/32) with random seeded weights saved to a checkpoint (the same speed as
trained ones; no CLIP weights offline), on N frames of a video (default bikes.mp4, 640x272).
Timed per batch, interleaved, median of R repeats, torch on every core:

- preprocess: open_clip's transform image by image (PIL) vs `ArrayPreprocess` on the batch;
  their largest and mean absolute difference (normalised units);
- embed (preprocess + vision tower): fp32 with the PIL path (before), fp32 batched, int8
  batched (`SPEC+int8`); frames/s and the ratios against fp32 in the same run; the cosine of
  batched vs PIL fp32 vectors and of int8 vs fp32, per frame (min and mean), next to the
  embedder's own load-time check (`space_check`).

Writes embed_cpu.{csv,json,png}. --quick: lensdb-tiny (ResNet: nothing to quantise, the int8
row measures the check only), 16 frames, once."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.bench import common as c

COSINE_GOAL = 0.99  # int8 vs fp32 (the issue)
PREPROCESS_GOAL = 0.05  # largest abs difference to open_clip's preprocess, normalised units


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lensdb.bench.embed_cpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small and fast, for CI")
    ap.add_argument("--out", help="results folder (default ./results/embed_cpu)")
    ap.add_argument("--video", help="video file (default: the bikes.mp4 sample)")
    ap.add_argument("--frames", type=int, default=96, help="frames to embed")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats per timing")
    ap.add_argument("--arch", default="ViT-B-32", help="open_clip architecture")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.repeats, args.arch = 16, 1, "lensdb-tiny"
        args.batch_size = min(args.batch_size, 16)
    return args


def random_checkpoint(arch: str) -> str:
    """Embedder spec of `arch` with random seeded weights in a checkpoint (cached)."""
    if arch == "ViT-B-32":
        return c.random_clip()
    path = c.bench_cache() / f"clip-{arch}-random.pt"
    if not path.exists():
        import open_clip
        import torch

        import lensdb.finetune.tiny  # noqa: F401  (registers lensdb-tiny)

        torch.manual_seed(0)
        torch.save(open_clip.create_model_and_transforms(arch, pretrained=None)[0].state_dict(),
                   path)
    return f"clip:{arch}:{path}"


def _pil(emb, images):
    import torch
    from PIL import Image

    return torch.stack([emb.preprocess(Image.fromarray(i)) for i in images])


def _embed(emb, batches, batched: bool) -> np.ndarray:
    keep = emb.batch_preprocess
    emb.batch_preprocess = keep if batched else None
    try:
        return np.concatenate([emb.embed_images(b) for b in batches])
    finally:
        emb.batch_preprocess = keep


def _times(fns: dict, repeats: int) -> dict[str, float]:
    """name -> median seconds, the calls interleaved, after one warm-up call each."""
    for fn in fns.values():
        fn()
    seen: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            seen[name].append(time.perf_counter() - t)
    return {k: c.median(v) for k, v in seen.items()}


def run(args: argparse.Namespace) -> dict:
    import torch

    from lensdb.device import set_threads
    from lensdb.models import clip_int8
    from lensdb.models.registry import get_embedder

    threads = set_threads(None)
    frames = c.decode(args.video or c.sample_video(), max_frames=args.frames)
    batches = [frames[i : i + args.batch_size] for i in range(0, len(frames), args.batch_size)]
    spec = random_checkpoint(args.arch)
    fp32: Any = get_embedder(spec, device="cpu")  # the open_clip adapter: its batched path
    t = time.perf_counter()
    int8: Any = get_embedder(spec + "+int8", device="cpu")
    load_check_s = time.perf_counter() - t
    pre = fp32.batch_preprocess
    assert pre is not None, f"{args.arch}: open_clip config without a batched path"

    ref = torch.cat([_pil(fp32, b) for b in batches])
    got = torch.cat([pre(b) for b in batches])
    diff = (ref - got).abs()
    one = batches[0]
    pre_t = _times({"pil": lambda: _pil(fp32, one), "batched": lambda: pre(one)}, args.repeats)
    embed_t = _times({"fp32_pil": lambda: _embed(fp32, batches, False),
                      "fp32": lambda: _embed(fp32, batches, True),
                      "int8": lambda: _embed(int8, batches, True)}, args.repeats)
    v_pil, v_fp32 = _embed(fp32, batches, False), _embed(fp32, batches, True)
    v_int8 = _embed(int8, batches, True)
    cos_pre, cos_q = clip_int8.cosines(v_pil, v_fp32), clip_int8.cosines(v_fp32, v_int8)
    n = len(frames)
    rows = [
        {"stage": "preprocess", "path": "open_clip per PIL image", "batch": len(one),
         "ms_per_batch": 1000 * pre_t["pil"], "frames_per_s": len(one) / pre_t["pil"],
         "speedup": 1.0},
        {"stage": "preprocess", "path": "batched arrays", "batch": len(one),
         "ms_per_batch": 1000 * pre_t["batched"], "frames_per_s": len(one) / pre_t["batched"],
         "speedup": pre_t["pil"] / pre_t["batched"]},
    ] + [
        {"stage": "embed", "path": path, "batch": args.batch_size,
         "ms_per_batch": 1000 * embed_t[key] / len(batches), "frames_per_s": n / embed_t[key],
         "speedup": embed_t["fp32"] / embed_t[key]}
        for key, path in (("fp32_pil", "fp32, PIL preprocess (before)"),
                          ("fp32", "fp32, batched preprocess"),
                          ("int8", "int8 vision tower, batched"))
    ]
    check = int8.space_check or {}
    return {
        "rows": rows, "frames": n, "threads": threads, "arch": args.arch,
        "frame_size": list(frames[0].shape[:2]),
        "preprocess_diff_max": float(diff.max()), "preprocess_diff_mean": float(diff.mean()),
        "cosine_batched_vs_pil": {"min": float(cos_pre.min()), "mean": float(cos_pre.mean())},
        "cosine_int8_vs_fp32": {"min": float(cos_q.min()), "mean": float(cos_q.mean())},
        "int8_speedup_vs_fp32": embed_t["fp32"] / embed_t["int8"],
        "embed_speedup_vs_before": embed_t["fp32_pil"] / embed_t["fp32"],
        "preprocess_speedup": pre_t["pil"] / pre_t["batched"],
        "int8_space_check": check, "int8_embedder_id_same": int8.model_id == fp32.model_id,
        "int8_load_and_check_s": load_check_s,
    }


def plot(result: dict, path: Path) -> None:
    plt = c.pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    rows = result["rows"]
    ax.barh([f"{r['stage']}: {r['path']}" for r in rows], [r["frames_per_s"] for r in rows])
    ax.set_xlabel("frames/s (median)")
    ax.invert_yaxis()
    c.save_plot(fig, path, f"{result['arch']} random weights, {result['frames']} frames "
                f"{result['frame_size'][1]}x{result['frame_size'][0]}, {result['threads']} "
                f"torch threads")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    c.offline_env()
    result = run(args)
    out = c.results_dir("embed_cpu", args.out)
    c.print_table(f"CPU embedder, {result['arch']} (random weights), {result['frames']} frames",
                  result["rows"], [("stage", "stage"), ("path", "path"), ("batch", "batch"),
                                   ("ms_per_batch", "ms/batch"), ("frames_per_s", "frames/s"),
                                   ("speedup", "x vs first")],
                  caption=f"{result['threads']} torch threads; medians of {args.repeats}")
    q, p = result["cosine_int8_vs_fp32"], result["cosine_batched_vs_pil"]
    goals = c.print_goals([
        c.goal("batched preprocess within 0.05 of open_clip's (normalised units)",
               f"max {result['preprocess_diff_max']:.4f}, mean "
               f"{result['preprocess_diff_mean']:.5f}",
               result["preprocess_diff_max"] < PREPROCESS_GOAL),
        c.goal("batched vs PIL embeddings: cosine >= 0.999", f"min {p['min']:.5f}",
               p["min"] >= 0.999),
        c.goal("int8 vs fp32 vectors: cosine >= 0.99", f"min {q['min']:.5f}, mean "
               f"{q['mean']:.5f}; recorded as "
               f"{'the same' if result['int8_embedder_id_same'] else 'its own'} space",
               q["min"] >= COSINE_GOAL),
        c.goal("int8 faster than fp32 on the CPU", f"{result['int8_speedup_vs_fp32']:.2f}x",
               None if args.quick else result["int8_speedup_vs_fp32"] > 1.0),
    ])
    result |= {"benchmark": "embed_cpu", "machine": c.machine(), "args": vars(args),
               "goals": goals}
    c.write_csv(out / "embed_cpu.csv", result["rows"])
    c.write_json(out / "embed_cpu.json", result)
    plot(result, out / "embed_cpu.png")
    return result


if __name__ == "__main__":
    main()

"""Fine-tuning benchmark: training images/s and peak memory of the embedder's training step.

Usage:
    python -m lensdb.bench.finetune [--quick] [--out DIR] [--steps N] [--archs A,B]
        [--batches 16,64]

For each architecture (`lensdb-tiny`, `ViT-B-32`), device (cpu, and cuda when torch sees
one) and batch size, a fresh child process builds the open_clip model from random init
(speed is the same as with trained weights; no weights are reachable offline) and runs the
step `lensdb finetune-embedder` runs: both towers forward, InfoNCE, backward, gradient
clipping, AdamW, logit-scale clamp (fp16 autocast + grad scaler on CUDA). Inputs are
preprocessed-size random tensors and real tokenised captions, so decoding is not timed.
One warm-up step, then the median of N timed steps. Memory: the child's peak RSS, and its
RSS before the model was built (torch and open_clip imported), so peak - base is what the
model and training add; on CUDA the peak allocated GPU memory. Writes finetune.{csv,json}.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os

from lensdb.bench.common import print_table, results_dir, write_csv, write_json

RANDOM = "random-init weights (same speed as trained ones); the machine's cores are shared"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _measure(arch: str, device: str, batch: int, steps: int, queue) -> None:
    import math
    import resource
    import statistics
    import time

    import torch
    import torch.nn.functional as F

    import lensdb.finetune.tiny  # noqa: F401
    from lensdb.finetune.losses import infonce_loss

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    import open_clip

    base = _rss_mb()
    model = open_clip.create_model(arch).to(device)
    tok = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple | list) else size
    x = torch.randn(batch, 3, size, size, device=device)
    t = tok([f"{i % 3 + 1} red circles on a grey street" for i in range(batch)]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    amp = device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    if amp:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 1):
        if amp:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            img = F.normalize(model.encode_image(x).float(), dim=-1)
            txt = F.normalize(model.encode_text(t).float(), dim=-1)
            loss = infonce_loss(img, txt, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if amp:
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    queue.put({"arch": arch, "device": device, "batch": batch, "step_s": step,
               "images_per_s": batch / step,
               "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
               "rss_base_mb": base,
               "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if amp else None})


def run(archs: list[str], batches: list[int], steps: int) -> list[dict]:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ctx = mp.get_context("spawn")
    rows = []
    for arch in archs:
        for device in devices:
            for batch in batches:
                queue = ctx.Queue()
                child = ctx.Process(target=_measure, args=(arch, device, batch, steps, queue))
                child.start()
                child.join()
                rows.append(queue.get() if child.exitcode == 0 and not queue.empty() else
                            {"arch": arch, "device": device, "batch": batch,
                             "error": f"child exited {child.exitcode}"})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny at 16/64, ViT-B-32 at 16")
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--archs", default="lensdb-tiny,ViT-B-32")
    parser.add_argument("--batches", default="16,64")
    args = parser.parse_args(argv)
    archs = args.archs.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    if args.quick:
        rows = run(["lensdb-tiny"], batches, args.steps or 3)
        rows += run(["ViT-B-32"], [16], args.steps or 2) if "ViT-B-32" in archs else []
    else:
        rows = run(archs, batches, args.steps or 3)
    out = results_dir("finetune", args.out)
    print_table("Fine-tuning step: images/s and memory", rows,
                [("arch", "arch"), ("device", "device"), ("batch", "batch"),
                 ("images_per_s", "images/s"), ("step_s", "s/step"), ("params_m", "M params"),
                 ("rss_base_mb", "RSS base MB"), ("rss_peak_mb", "RSS peak MB"),
                 ("gpu_peak_mb", "GPU peak MB")], caption=RANDOM)
    result = {"rows": rows, "note": RANDOM, "threads": os.environ.get("BENCH_THREADS", "1")}
    write_csv(out / "finetune.csv", rows)
    write_json(out / "finetune.json", result)
    return result


if __name__ == "__main__":
    main()

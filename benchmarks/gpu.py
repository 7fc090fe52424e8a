"""GPU throughput of the default networks: YOLO11n/x and CLIP ViT-B/32, fp16, by batch size.

    python -m lensdb.bench.gpu [--out DIR] [--batches 32,64,128] [--seconds 5]
    lensdb bench gpu

On a machine with a CUDA GPU it measures, per batch size, images/s of the detector alone
(YOLO11n, YOLO11x), the embedder alone (CLIP ViT-B/32 image tower) and the whole bill of an
ingest that labels 1 frame in 10 with YOLO11x and embeds every frame, against YOLO11x on
every frame; it writes gpu.json. Networks are built from their configs with random weights
(the speed of trained ones; no hub is reachable here). Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import cast

from lensdb.bench.common import console, results_dir

DETECT_EVERY = 10


def _time(fn, batch, seconds: float) -> float:
    """Images per second of fn(batch), median of repeated timed calls after a warm-up."""
    import statistics

    import torch

    for _ in range(3):
        fn(batch)
    torch.cuda.synchronize()
    rates: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(rates) < 3:
        start = time.perf_counter()
        fn(batch)
        torch.cuda.synchronize()
        rates.append(len(batch) / (time.perf_counter() - start))
    return statistics.median(rates)


def _yolo(name: str, device: str):
    import torch
    from ultralytics import YOLO

    # ultralytics annotates Model.model `str | None`; once YOLO() has built it, it is a Module
    model = cast(torch.nn.Module, YOLO(f"{name}.yaml").model).to(device).half().eval()

    def run(batch):
        with torch.inference_mode():
            model(batch)

    return run


def _clip(device: str):
    import open_clip
    import torch

    model = open_clip.create_model("ViT-B-32", pretrained=None).visual.to(device).half().eval()

    def run(batch):
        with torch.inference_mode():
            model(batch)

    return run


def measure(batches: list[int], seconds: float) -> dict:
    import torch

    device = "cuda"
    rows = []
    nets = {"yolo11n": _yolo("yolo11n", device), "yolo11x": _yolo("yolo11x", device),
            "clip-vit-b-32": _clip(device)}
    for b in batches:
        det_in = torch.rand(b, 3, 640, 640, device=device).half()
        emb_in = torch.rand(b, 3, 224, 224, device=device).half()
        row: dict[str, float] = {"batch": b}
        for name, fn in nets.items():
            row[f"{name}_images_per_s"] = round(_time(fn, emb_in if "clip" in name else det_in,
                                                      seconds), 1)
        per_frame = (1 / DETECT_EVERY) / row["yolo11x_images_per_s"] + \
            1 / row["clip-vit-b-32_images_per_s"]
        row["bill_frames_per_s"] = round(1 / per_frame, 1)
        row["bill_vs_yolo11x_every_frame"] = round(
            row["bill_frames_per_s"] / row["yolo11x_images_per_s"], 2)
        rows.append(row)
        console.print(row)
    return {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "precision": "fp16", "detect_every": DETECT_EVERY,
            "note": "random weights (same speed as trained ones); model forward only, "
                    "decoding and storage excluded", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lensdb bench gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--batches", default="32,64,128")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="batch 32 only, 1 s each")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        console.print("bench gpu needs a CUDA GPU; torch sees none here "
                      f"(torch {torch.__version__}). Nothing measured.")
        return 0
    batches = [32] if args.quick else [int(b) for b in args.batches.split(",")]
    result = measure(batches, 1.0 if args.quick else args.seconds)
    out = results_dir("gpu", args.out) / "gpu.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

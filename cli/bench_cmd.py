"""`lensdb bench NAME`: run one of the benchmark scripts (`BENCHMARKS`)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path

import typer

from lensdb.cli.common import JsonOption, print_json
from lensdb.errors import LensDBError

BENCHMARKS = {
    "compression": "bytes per vector vs count accuracy vs recall@10, per codec",
    "ingest": "every stage alone vs end to end, and memory as the video grows",
    "query": "queries from predictions vs re-detection, the whole bill, latency vs size",
    "gpu": "images/s of YOLO11n/x and CLIP ViT-B/32 in fp16 by batch (needs a CUDA GPU)",
    "accuracy": "counts on frames whose labels are hidden (1 in K kept) vs the constant",
    "storage": "bytes compaction rewrites on a live stream, search latency cold vs kept index",
    "finetune": "embedder fine-tuning: training images/s and peak memory, tiny and ViT-B/32",
    "classify": "condition classification: crops/s zero-shot and linear probe vs embedding",
    "codecs_scale": "index bytes, recall@10 and ms/query per codec (Flat, SQ8, PQ, IVF) at "
                    "1e5+ vectors, nprobe 1/8/32",
    "embed_cpu": "CPU embedder: batched vs per-PIL preprocessing, int8 vs fp32 vision tower",
    "store_scale": "query latency and catalog size of synthetic stores of 10^6..10^8 frames "
                   "vs DuckDB's raw scan",
}


def register(app: typer.Typer) -> None:
    app.command("bench", help=HELP)(bench)


HELP = ("Run a benchmark: prints its tables and goals, writes CSV, JSON and a PNG plot into "
        "--out (default ./results/NAME).\n\n"
        + "\n\n".join(f"{name}: {what}." for name, what in BENCHMARKS.items())
        + "\n\nMore options: python -m lensdb.bench.NAME --help")


def bench(
    name: str = typer.Argument(..., help="Benchmark: " + ", ".join(BENCHMARKS) + "."),
    quick: bool = typer.Option(False, "--quick", help="Small and fast (what CI runs)."),
    out: Path | None = typer.Option(
        None, "--out", help="Results folder (default ./results/NAME): CSV, JSON and a PNG plot."
    ),
    as_json: bool = JsonOption,
) -> None:
    if name not in BENCHMARKS:
        raise LensDBError(f"unknown benchmark '{name}'; benchmarks: {', '.join(BENCHMARKS)}")
    from lensdb.bench.common import results_dir

    module = importlib.import_module(f"lensdb.bench.{name}")
    argv = (["--quick"] if quick else []) + (["--out", str(out)] if out else [])
    if not as_json:
        module.main(argv)
        return
    with contextlib.redirect_stdout(sys.stderr):  # the tables go to stderr, the JSON alone out
        result = module.main(argv)
    folder = results_dir(name, out)
    print_json({"benchmark": name, "out": str(folder),
                "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
                "result": result})

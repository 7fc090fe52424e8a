"""`lensdb ingest`: stream videos into the store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lensdb.cli.common import (
    JsonOption,
    StoreOption,
    console,
    console_err,
    print_error,
    print_json,
    store_path,
)
from lensdb.config import IngestConfig
from lensdb.errors import LensDBError

HELP = """Stream videos into the store (crash-safe, resumable).

Samples frames, runs the detector on every K-th kept frame, embeds every kept frame, and
commits batch by batch.

PATHS are video files (mp4, avi, mkv, mov, webm, ...), globs ('clips/*.mp4'), URLs
(http(s)://, rtsp://) or '-' for a stream on stdin. Re-running the same command resumes an
interrupted ingest; a video already complete is skipped (by content hash).

Examples:

  lensdb ingest street.mp4 --detector ssd-mobilenet-v2 --embedder mobilenet-v2

  lensdb ingest 'traffic/*.mp4' --stride 5 --detect-every 10

  lensdb ingest rtsp://camera.local/stream --fps 2

Exit codes: 0 done, 2 an input failed (others still ingested), 3 a video was truncated or
corrupt (what decoded was kept).
"""


def register(app: typer.Typer) -> None:
    @app.command("ingest", help=HELP)
    def ingest_cmd(
        paths: list[str] = typer.Argument(..., help="Video files, globs, URLs, or '-'."),
        store: Path = StoreOption,
        detector: str = typer.Option("yolo11n", help="Detector name or .pt/.onnx path."),
        embedder: str = typer.Option("clip-vit-b-32", help="Embedder name (lensdb models)."),
        stride: int = typer.Option(1, help="Keep every N-th frame."),
        fps: float = typer.Option(None, help="Sample by time: frames per second to keep."),
        detect_every: int = typer.Option(5, help="Detect on every K-th kept frame (1: all)."),
        codec: str = typer.Option(None, help="FAISS index_factory codec (default SQ8)."),
        batch_size: int = typer.Option(32, help="Frames per batch and per transaction."),
        conf: float = typer.Option(0.25, help="Detector confidence threshold."),
        as_json: bool = JsonOption,
    ) -> None:
        import lensdb

        config = IngestConfig(
            detector=detector, embedder=embedder, conf=conf, stride=stride, fps=fps,
            detect_every=detect_every, codec=codec, batch_size=batch_size,
        )
        config.validate()
        db = lensdb.open(store_path(store), create=True)
        with _ProgressView(enabled=not as_json) as view:
            report = db.ingest(paths, config, progress=view.on_event)
        data = report.to_dict()
        failed = [v for v in report.videos if v.status == "failed"]
        partial = [v for v in report.videos if v.status == "partial"]
        if as_json:
            print_json(data)
        elif len(failed) < len(report.videos):
            _print_summary(data)
        for v in partial:
            print_error(f"{Path(v.name).name}: {v.message}", "warning", "yellow")
        for v in failed:
            print_error(str(v.message))
        if failed:
            raise typer.Exit(2)
        if partial:
            raise typer.Exit(3)


class _ProgressView:
    """Renders ingest events as a rich progress bar with frames/s and ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} fr/s"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console_err, transient=False,
        )
        self.task = None

    def __enter__(self) -> _ProgressView:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def on_event(self, event: str, data: dict) -> None:
        if not self.enabled:
            return
        if event == "video":
            self.task = self.progress.add_task(
                data["name"][-40:], total=data["total"], completed=data["done"], rate="-"
            )
        elif event == "advance" and self.task is not None:
            self.progress.advance(self.task, data["n"])
            t = self.progress.tasks[-1]
            self.progress.update(self.task, rate=f"{t.speed:.1f}" if t.speed else "-")
        elif event == "skip":
            console_err.print(f"[dim]{data['name']}: {data['message']}[/]")
        elif event == "failed":
            console_err.print(f"[red]{data['name']}: failed[/]")


def _print_summary(data: dict) -> None:
    table = Table(title="Ingested")
    for col in ("video", "status", "frames", "labelled", "counts (detections)", "seconds"):
        table.add_column(col)
    for v in data["videos"]:
        top = sorted(v["counts"].items(), key=lambda x: -x[1])[:6]
        counts = ", ".join(f"{k} {n}" for k, n in top)
        status = v["status"]
        if v["message"] and status != "failed":
            status += f" ({v['message']})"
        table.add_row(Path(str(v["name"])).name[-40:], status, str(v["frames"]),
                      str(v["labelled"]), counts or "-", f"{v['seconds']:.1f}")
    console.print(table)
    stages = Table(title="Stages (busy seconds, items per second)")
    for col in ("stage", "seconds", "items", "per second"):
        stages.add_column(col)
    for name, s in data["stages"].items():
        stages.add_row(name, f"{s['seconds']:.2f}", str(s["items"]), f"{s['per_second']:.1f}")
    console.print(stages)
    console.print(
        f"{data['frames']} frames ({data['labelled']} labelled) in {data['seconds']:.1f}s, "
        f"{data['frames_per_second']:.1f} frames/s end to end"
    )


__all__ = ["register", "LensDBError"]

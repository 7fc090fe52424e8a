"""`lensdb ingest`: stream videos into the store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from lensdb.cli.common import (
    JsonOption,
    StoreOption,
    console,
    console_err,
    print_error,
    print_json,
    store_path,
)
from lensdb.config import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, IngestConfig
from lensdb.device import DEVICE_HELP
from lensdb.errors import LensDBError
from lensdb.events import Event, FramesDone, VideoFinished, VideoStarted

HELP = """Stream videos into the store (crash-safe, resumable).

Samples frames, runs the detector on every K-th kept frame, embeds every kept frame, and
commits batch by batch.

PATHS are video files (mp4, avi, mkv, mov, webm, ...), globs ('clips/*.mp4'), URLs
(http(s)://, rtsp://) or '-' for a stream on stdin. Still images are refused unless
--images is given. Re-running the same command resumes an interrupted ingest of a file,
with the sampling it started with (other --stride/--fps/--detect-every/--conf values are
refused); a video already complete is skipped (by content hash). A live source (stdin, a
URL) cannot be rewound: an interrupted one is marked stopped and keeps what it holds, and
running again ingests the stream as a new video.

--detector and --embedder default to the store's own (the embedder of its vectors, the
detector of its latest video, with that video's --conf), in a new store to yolo11n and
clip-vit-b-32. --conf defaults to the detector's own threshold (ssd-mobilenet-v2 0.4, YOLO
0.25); the one used is recorded per video (lensdb info).

Examples:

  lensdb ingest street.mp4 --detector ssd-mobilenet-v2 --embedder mobilenet-v2

  lensdb ingest 'traffic/*.mp4' --stride 5 --detect-every 10

  lensdb ingest rtsp://camera.local/stream --fps 2

A codec that trains (IVF, PQ) waits for enough frames: an ingest that ends short of them
keeps its frames in the store, marks the videos `held`, and the next ingest adds to them.

Exit codes: 0 done (or held for the codec), 1 an unexpected error, 2 an input failed
(others still ingested), 3 a video was truncated or corrupt (what decoded was kept), 4 the
store's disk is full (what was committed stays; free space and run again to resume), 130
interrupted.
"""

FLAGS = {"stride": "--stride", "fps": "--fps", "detect_every": "--detect-every",
         "detect_budget": "--detect-budget", "conf": "--conf"}


def register(app: typer.Typer) -> None:
    @app.command("ingest", help=HELP)
    def ingest_cmd(
        paths: list[str] = typer.Argument(..., help="Video files, globs, URLs, or '-'."),
        store: Path = StoreOption,
        detector: str = typer.Option(None, help="Detector name or .pt/.onnx path (default: "
                                     f"the store's, in a new store {DEFAULT_DETECTOR})."),
        embedder: str = typer.Option(None, help="Embedder name (lensdb models; default: the "
                                     f"store's, in a new store {DEFAULT_EMBEDDER})."),
        stride: int = typer.Option(1, help="Keep every N-th frame."),
        fps: float = typer.Option(None, help="Sample by time: frames per second to keep "
                                  "(instead of --stride)."),
        detect_every: str = typer.Option("5", help="Detect on every K-th kept frame (1: all),"
                                         " or 'auto': by scene change (see --detect-budget)."),
        detect_budget: float = typer.Option(None, help="Label about this share of frames, "
                                            "placed by scene change (auto: 0.1)."),
        codec: str = typer.Option(None, help="FAISS index_factory codec (default SQ8)."),
        batch_size: int = typer.Option(0, help="Frames per batch and per transaction (0: by "
                                       "device: 32 on the CPU, 128 on a GPU)."),
        conf: float = typer.Option(None, help="Detector confidence threshold (default: the "
                                   "store's with its detector, else the detector's own, "
                                   "e.g. 0.4 for ssd-mobilenet-v2)."),
        images: bool = typer.Option(False, "--images",
                                    help="Accept still images as one-frame videos."),
        wait: bool = typer.Option(False, "--wait", help="If another process is writing to "
                                  "the store, wait for it to finish instead of failing."),
        engine: str = typer.Option("local", help="local (this process) or ray (Ray actors; "
                                   "pip install 'lensdb[ray]')."),
        address: str = typer.Option(None, help="Ray cluster: auto, HOST:PORT or "
                                    "ray://HOST:PORT (default: start a local Ray)."),
        workers: int = typer.Option(2, help="Ray actors running the models (--engine ray)."),
        gpus_per_worker: float = typer.Option(0.0, help="GPUs each Ray actor reserves."),
        chunk_seconds: float = typer.Option(60.0, help="Ray: cut long videos into chunks "
                                            "this long."),
        device: str = typer.Option("auto", help=f"Where torch models run: {DEVICE_HELP}."),
        threads: int = typer.Option(None, help="Torch threads (default: every core)."),
        as_json: bool = JsonOption,
    ) -> None:
        import lensdb

        config = IngestConfig(
            detector=detector, embedder=embedder, conf=conf, stride=stride, fps=fps,
            detect_every=_every(detect_every), codec=codec, batch_size=batch_size,
            images=images, device=device, threads=threads,
            engine=engine, address=address, workers=workers,
            gpus_per_worker=gpus_per_worker, chunk_seconds=chunk_seconds,
            detect_budget=(detect_budget if detect_budget is not None
                           else 0.1 if detect_every.strip() == "auto" else None),
        )
        config.validate()
        from lensdb.ingest_sources import expand_sources

        paths = expand_sources(paths)  # a mistyped path: an error before a store is created
        db = lensdb.open(store_path(store), create=True)
        with _ProgressView(enabled=not as_json) as view:
            report = db.ingest(paths, config, progress=view.on_event, wait=wait)
        data = report.to_dict()
        failed = [v for v in report.videos if v.status == "failed"]
        partial = [v for v in report.videos if v.status == "partial"]
        if as_json:
            print_json(data)
        elif len(failed) < len(report.videos):
            _print_summary(data)
        for v in partial:
            print_error(f"{Path(v.name).name}: {v.message}", "warning", "yellow")
        held = [v for v in report.videos if v.status == "held"]
        if held and not as_json:
            print_error(f"{len(held)} video(s) {held[0].message}", "note", "yellow")
        for v in failed:
            print_error(_as_flags(v))
        if failed:
            raise typer.Exit(2)
        if partial:
            raise typer.Exit(3)


def _every(text: str) -> int:
    """--detect-every: a positive integer, or 'auto' (the stride then goes unused)."""
    if text.strip() == "auto":
        return 1
    from lensdb.errors import ParameterError

    try:
        return int(text)
    except ValueError:
        raise ParameterError("detect_every", f"must be a whole number or 'auto', not "
                             f"'{text}'") from None


class _ProgressView:
    """Renders ingest events as a rich progress bar with frames/s and ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and console_err.is_terminal  # no bar in a log or a pipe
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} fr/s"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console_err, transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _ProgressView:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.enabled:
            if exc_type is not None:  # a failure: the one `error:` line is all that stays
                self.progress.live.transient = True
            self.progress.stop()

    def on_event(self, event: Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, VideoStarted):
            self.task = self.progress.add_task(
                event.name[-40:], total=event.total, completed=event.done, rate="-"
            )
        elif isinstance(event, FramesDone) and self.task is not None:
            self.progress.advance(self.task, event.n)
            t = self.progress.tasks[-1]
            self.progress.update(self.task, rate=f"{t.speed:.1f}" if t.speed else "-")
        elif isinstance(event, VideoFinished) and event.status == "skipped":
            console_err.print(Text(f"{event.name}: {event.message}", style="dim"))


def _as_flags(v) -> str:
    """A failed video's message; a refused resume names the flags to resume it with."""
    if not v.ingested_with:
        return str(v.message)
    flags = " ".join(f"{FLAGS[k]} {val}" for k, val in v.ingested_with.items()
                     if val is not None and k in FLAGS)
    return f"{Path(v.name).name} was ingested with {flags}; resume it with those flags " \
        "(or use another --store)"


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
    models = data.get("models") or {}
    console.print(
        f"{data['frames']} frames ({data['labelled']} labelled) in {data['seconds']:.1f}s, "
        f"{data['frames_per_second']:.1f} frames/s end to end; detector "
        f"{models.get('detector', '-')} on {data['devices'].get('detector', 'cpu')}, embedder "
        f"{models.get('embedder', '-')} on {data['devices'].get('embedder', 'cpu')}, "
        f"{data['threads']} torch threads, "
        f"batches of {data.get('batch_size') or '-'}"
    )


__all__ = ["register", "LensDBError"]

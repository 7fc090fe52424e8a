"""`lensdb train-counter`: count predictors per class (interpolation in time, kNN, MLP or a
learned combination), evaluated for fill-in and for new footage, refitted on every label."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from lensdb.cli.common import JsonOption, StoreOption, console, print_json, store_path
from lensdb.device import DEVICE_HELP
from lensdb.errors import LensDBError

FIGURE_NAMES = {
    "mae": "MAE", "mse": "MSE", "rmse": "RMSE", "r2": "R²",
    "exact": "exact", "within1": "within ±1", "within2": "within ±2",
}
LOWER_IS_BETTER = {"mae", "mse", "rmse"}


def register(app: typer.Typer) -> None:
    app.command("train-counter")(train_counter)


def train_counter(
    store: Path | None = StoreOption,
    classes: str | None = typer.Option(
        None, "--classes", help="Comma-separated classes, e.g. person,car. "
        "Default: the 2 classes with the most detections."
    ),
    size: str = typer.Option("tiny", "--size", help="MLP size: tiny, small or medium."),
    split: str | None = typer.Option(
        None, "--split", help="video (whole videos apart; default with >= 2 videos) or time "
        "(contiguous blocks per video)."
    ),
    train_fraction: float = typer.Option(
        0.4, "--train-fraction", help="Share of videos (or time blocks) that train."
    ),
    method: str = typer.Option(
        "auto", "--method", help="auto (per class: the lowest fill-in MAE of interp, median "
        "(interp through a running median of 3 labels: one flickering label bends nothing), "
        "knn, blend (interp and knn weighted per frame by their error variances), mlp, combo), "
        "or force one of them."
    ),
    loss: str = typer.Option("mse", "--loss", help="MLP loss: mse, huber or poisson."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the training."),
    pretrain_coco: Path | None = typer.Option(
        None, "--pretrain-coco", help="COCO instances json: pre-train person/car MLPs on it."
    ),
    coco_images: Path | None = typer.Option(
        None, "--coco-images", help="Folder of the COCO images named in --pretrain-coco."
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG of true vs predicted counts on a held-out video."
    ),
    device: str = typer.Option("auto", "--device", help=f"Where the MLPs train and predict: "
                               f"{DEVICE_HELP}."),
    threads: int | None = typer.Option(None, "--threads", help="Torch threads (default: every "
                                       "core; an MLP's training steps on the CPU use one)."),
    json_out: bool = JsonOption,
) -> None:
    """Train count predictors per class: interpolation in time, kNN, MLP or a combination.

    Labels are the detector's counts on labelled frames. Two regimes, each next to a
    constant baseline: fill-in (frames between labels: out of fold on the labelled frames,
    pessimistic) picks the method; new footage (held-out videos or time blocks) measures
    the embedding model that predicts frames past the labels. The winner is then refitted
    on every label and predicts every frame.

    Examples:

      lensdb train-counter --classes person,car

      lensdb train-counter --split time --plot counts.png --json

      lensdb train-counter --device cuda --threads 8
    """
    from lensdb.counting import TrainConfig, train_counters
    from lensdb.storage import Store

    config = TrainConfig(
        classes=_classes(classes),
        size=size, split=split, train_fraction=train_fraction, method=method, loss=loss,
        seed=seed, coco_annotations=pretrain_coco, coco_images=coco_images, plot=plot,
        device=device, threads=threads,
    )
    db = Store.open(store_path(store))
    if json_out:
        print_json(train_counters(db, config).to_dict())
        return
    columns = (
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def on_progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        report = train_counters(db, config, progress=on_progress)
    show_report(report.to_dict())


def _fmt(value: float | None, name: str) -> str:
    if value is None:
        return "–"
    if name in ("exact", "within1", "within2"):
        return f"{100 * value:.1f}%"
    return f"{value:.3f}"


def show_report(r: dict) -> None:
    console.print(
        f"[bold]{r['split']} split[/]: {r['labelled_frames']} labelled of {r['frames']} frames; "
        f"train videos {', '.join(r['train_videos'])}; test videos {', '.join(r['test_videos'])}"
    )
    console.print(f"embedder [cyan]{r['embedder_id']}[/], codec {r['codec']}; MLPs on "
                  f"{r.get('device', 'cpu')}, {r.get('threads', 0)} torch threads",
                  highlight=False)
    if r.get("coco"):
        c = r["coco"]
        console.print(
            f"COCO pretraining: {c['images']} images ({'cached' if c['cached'] else 'embedded'}"
            f"), pretrained: {', '.join(c['pretrained']) or 'none'}"
        )

    fill = Table(title="Fill-in: out-of-fold MAE per method (lower wins; pessimistic, "
                 "twice the label spacing)")
    names = ("interp", "median", "knn", "blend", "mlp", "combo", "constant")
    for col in ("class", *names, "chosen"):
        fill.add_column(col, justify="left" if col in ("class", "chosen") else "right",
                        no_wrap=True)
    for cls, c in ((escape(k), v) for k, v in r["classes"].items()):
        f = c.get("fill_in_mae") or {}
        fill.add_row(cls, *(_fmt(f.get(m), "mae") for m in names),
                     f"[bold green]{c['method']}[/]")
    console.print(fill)
    console.print("stored: " + ", ".join(f"{escape(k)} model #{c['model_id']} ({c['file']})"
                                         for k, c in r["classes"].items()), highlight=False)
    fill_fig = Table(title="Fill-in figures: chosen method vs constant, out of fold")
    fill_fig.add_column("figure")
    for raw in r["classes"]:
        cls = escape(raw)
        fill_fig.add_column(f"{cls} {r['classes'][raw]['method']}", justify="right")
        fill_fig.add_column(f"{cls} constant", justify="right", style="dim")
    for key, label in FIGURE_NAMES.items():
        row = [label]
        for c in r["classes"].values():
            m, b = c["fill_in"]["model"][key], c["fill_in"]["baseline"][key]
            row += [_fmt(m, key), _fmt(b, key)]
        fill_fig.add_row(*row)
    console.print(fill_fig)

    choice = Table(title="New footage: embedding model per class (validation MAE, lower wins;"
                   " it predicts frames past the labels)")
    for col in ("class", "MLP", "kNN", "baseline", "embedding model"):
        choice.add_column(col, justify="left" if col in ("class", "embedding model") else "right")
    for cls, c in ((escape(k), v) for k, v in r["classes"].items()):
        v = c["validation_mae"]
        choice.add_row(
            cls, _fmt(v.get("mlp"), "mae"), _fmt(v.get("knn"), "mae"), _fmt(v["baseline"], "mae"),
            f"[bold]{c['embedding_model']}[/]",
        )
    console.print(choice)

    metrics = Table(title="New footage, held-out frames: embedding model vs constant (train "
                    "mean)")
    metrics.add_column("figure")
    for cls in map(escape, r["classes"]):
        metrics.add_column(f"{cls} model", justify="right")
        metrics.add_column(f"{cls} baseline", justify="right", style="dim")
    for key, label in FIGURE_NAMES.items():
        row = [label]
        for c in r["classes"].values():
            m, b = c["test"]["model"][key], c["test"]["baseline"][key]
            better = m is not None and b is not None and (
                m < b if key in LOWER_IS_BETTER else m > b
            )
            row += [f"[green]{_fmt(m, key)}[/]" if better else _fmt(m, key), _fmt(b, key)]
        metrics.add_row(*row)
    console.print(metrics)

    videos = Table(title="New footage, per held-out video")
    for col in ("class", "video", "frames", "mean count", "MAE", "baseline MAE", "±1", "base ±1"):
        videos.add_column(col, justify="left" if col in ("class", "video") else "right")
    for cls, c in ((escape(k), v) for k, v in r["classes"].items()):
        for v in c["test"]["per_video"]:
            videos.add_row(
                cls, v["video"], str(v["frames"]), f"{v['true_mean']:.2f}",
                _fmt(v["mae"], "mae"), _fmt(v["baseline_mae"], "mae"),
                _fmt(v["within1"], "within1"), _fmt(v["baseline_within1"], "within1"),
            )
    console.print(videos)

    for cls, c in ((escape(k), v) for k, v in r["classes"].items()):
        conf = c["test"]["confusion"]
        table = Table(title=f"{cls}, new footage: true bin (rows) vs predicted bin, model "
                      "(baseline)")
        table.add_column("true \\ pred")
        for b in conf["bins"]:
            table.add_column(b, justify="right")
        for i, b in enumerate(conf["bins"]):
            table.add_row(
                b, *(f"{conf['model'][i][j]} ({conf['baseline'][i][j]})"
                     for j in range(len(conf["bins"])))
            )
        console.print(table)
    for cls, c in ((escape(k), v) for k, v in r["classes"].items()):
        console.print(f"[bold]{cls}[/]: {c['why']}", highlight=False)
    if r.get("plot"):
        console.print(f"plot written to {r['plot']}")


def _classes(text: str | None) -> tuple[str, ...]:
    """--classes: comma-separated names; given, it must name at least one."""
    if text is None:
        return ()
    names = tuple(c.strip().lower() for c in text.split(",") if c.strip())
    if not names:
        raise LensDBError(f"--classes '{text}' names no class; give e.g. person,car")
    return names

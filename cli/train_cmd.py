"""`lensdb train-counter`: count predictors (MLP or kNN per class) on the stored embeddings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lensdb.cli.common import JsonOption, StoreOption, console, print_json, store_path

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
        "auto", "--method", help="auto (pick MLP or kNN per class by validation MAE), mlp, knn."
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
    json_out: bool = JsonOption,
) -> None:
    """Train count predictors on the stored embeddings (MLP or kNN per class).

    Labels are the detector's counts on labelled frames; the held-out figures are printed
    next to a constant baseline (the train mean), and predictions are written for every
    frame.

    Examples:

      lensdb train-counter --classes person,car

      lensdb train-counter --split time --plot counts.png --json
    """
    from lensdb.counting import TrainConfig, train_counters
    from lensdb.storage import Store

    config = TrainConfig(
        classes=tuple(c.strip().lower() for c in (classes or "").split(",") if c.strip()),
        size=size, split=split, train_fraction=train_fraction, method=method, loss=loss,
        seed=seed, coco_annotations=pretrain_coco, coco_images=coco_images, plot=plot,
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
        tasks: dict[str, int] = {}

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
    console.print(f"embedder [cyan]{r['embedder_id']}[/], codec {r['codec']}", highlight=False)
    if r.get("coco"):
        c = r["coco"]
        console.print(
            f"COCO pretraining: {c['images']} images ({'cached' if c['cached'] else 'embedded'}"
            f"), pretrained: {', '.join(c['pretrained']) or 'none'}"
        )

    choice = Table(title="Method per class (validation MAE, lower wins)")
    for col in ("class", "MLP", "kNN", "baseline", "chosen", "model"):
        choice.add_column(col, justify="left" if col in ("class", "chosen", "model") else "right")
    for cls, c in r["classes"].items():
        v = c["validation_mae"]
        choice.add_row(
            cls, _fmt(v.get("mlp"), "mae"), _fmt(v.get("knn"), "mae"), _fmt(v["baseline"], "mae"),
            f"[bold green]{c['method']}[/]", f"#{c['model_id']} {c['file']}",
        )
    console.print(choice)

    metrics = Table(title="Held-out frames: model vs constant baseline (train mean)")
    metrics.add_column("figure")
    for cls in r["classes"]:
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

    videos = Table(title="Per held-out video")
    for col in ("class", "video", "frames", "mean count", "MAE", "baseline MAE", "±1", "base ±1"):
        videos.add_column(col, justify="left" if col in ("class", "video") else "right")
    for cls, c in r["classes"].items():
        for v in c["test"]["per_video"]:
            videos.add_row(
                cls, v["video"], str(v["frames"]), f"{v['true_mean']:.2f}",
                _fmt(v["mae"], "mae"), _fmt(v["baseline_mae"], "mae"),
                _fmt(v["within1"], "within1"), _fmt(v["baseline_within1"], "within1"),
            )
    console.print(videos)

    for cls, c in r["classes"].items():
        conf = c["test"]["confusion"]
        table = Table(title=f"{cls}: true bin (rows) vs predicted bin, model (baseline)")
        table.add_column("true \\ pred")
        for b in conf["bins"]:
            table.add_column(b, justify="right")
        for i, b in enumerate(conf["bins"]):
            table.add_row(
                b, *(f"{conf['model'][i][j]} ({conf['baseline'][i][j]})"
                     for j in range(len(conf["bins"])))
            )
        console.print(table)
    if r.get("plot"):
        console.print(f"plot written to {r['plot']}")

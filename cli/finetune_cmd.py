"""`lensdb finetune-embedder`: teach the embedder your footage from image-text pairs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lensdb.cli.common import JsonOption, console, print_json
from lensdb.errors import LensDBError

HELP = (
    "Fine-tune an open_clip embedder on image-text pairs (CSV image_path,text[,label]).\n\n"
    "Objectives: bce (match/mismatch, learnable scale and bias), infonce (CLIP's symmetric "
    "cross-entropy), sanw-debias (negatives close to the positive down-weighted: likely false "
    "negatives), sanw-bandpass (mid-hard negatives emphasised). The run folder gets best.pt "
    "and final.pt (use as --embedder clip:ARCH:RUN/best.pt), config.json, steps.csv, "
    "epochs.csv and summary.json; a pretrained-vs-fine-tuned table is printed at the end.\n\n"
    "Examples:\n\n"
    "  lensdb finetune-embedder --train train.csv --val val.csv --objective sanw-debias\n\n"
    "  lensdb finetune-embedder --train t.csv --val v.csv --embedder clip:lensdb-tiny "
    "--lr 1e-3 --epochs 20 --compare infonce,sanw-debias,sanw-bandpass\n\n"
    "  lensdb finetune-embedder eval runs/x/best.pt --data test.csv"
)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def side_by_side(title: str, columns: dict[str, dict[str, float]]) -> Table:
    """One row per metric, one column per model (pretrained first)."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    first = next(iter(columns.values()))
    for key in first:
        table.add_row(key.replace("_", " "), *[_fmt(col.get(key)) for col in columns.values()])
    return table


class _Bar:
    """Rich progress: one bar over every step of a run, loss and val score in the line."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.quiet = quiet
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 console=console, disable=quiet)
        self.task: Any = None

    def __call__(self, e: dict[str, Any]) -> None:
        if e["kind"] == "start":
            total = e["steps_per_epoch"] * (e["epochs"] - e["start_epoch"] + 1)
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(f"training on {e['device']}", total=total,
                                               info="")
        elif e["kind"] == "step" and self.task is not None:
            self.progress.update(self.task, advance=1, info=f"epoch {e['epoch']} loss "
                                 f"{e['loss']:.3f} T {e['temperature']:.3f}")
        elif e["kind"] == "epoch" and not self.quiet:
            self.progress.console.print(
                f"epoch {e['epoch']}: loss {e['train_loss']:.3f}, val score "
                f"{e['val_score']:.3f}" + (" [green]best[/]" if e["best"] else ""))
        elif e["kind"] == "objective" and not self.quiet:
            self.progress.console.print(f"[bold]objective {e['objective']}[/]")


def register(app: typer.Typer) -> None:
    ft = typer.Typer(help=HELP, invoke_without_command=True, no_args_is_help=True)
    app.add_typer(ft, name="finetune-embedder")
    _register_reembed(app)

    @ft.callback(invoke_without_command=True)
    def train_cmd(
        ctx: typer.Context,
        train: Path = typer.Option(None, "--train", help="Training pairs/captions CSV."),
        val: Path = typer.Option(None, "--val", help="Validation CSV (images not in --train)."),
        test: Path = typer.Option(None, "--test", help="Held-out CSV, evaluated at the end."),
        image_root: Path = typer.Option(None, "--image-root", help="Root of relative paths."),
        embedder: str = typer.Option("clip-vit-b-32", "--embedder",
                                     help="Start from: clip-vit-b-32 or clip:ARCH[:CKPT]."),
        objective: str = typer.Option("infonce", "--objective",
                                      help="bce | infonce | sanw-debias | sanw-bandpass."),
        compare: str = typer.Option(None, "--compare", help="Comma-separated objectives, "
                                    "one run each, compared in OUT/compare.json and .png."),
        epochs: int = typer.Option(5, "--epochs"),
        batch_size: int = typer.Option(16, "--batch-size"),
        lr: float = typer.Option(5e-6, "--lr", help="Peak learning rate."),
        weight_decay: float = typer.Option(0.1, "--weight-decay"),
        warmup: float = typer.Option(1.0, "--warmup", help="Warmup length in epochs."),
        freeze_: str = typer.Option("none", "--freeze", help="text | vision | none."),
        topical: int = typer.Option(0, "--topical-batches", help="K clusters of near "
                                    "neighbours to cut batches from (0: plain shuffle)."),
        alpha: float = typer.Option(None, "--alpha", help="SANW: image-image share of sim."),
        delta: float = typer.Option(0.3, "--delta", help="sanw-debias midpoint."),
        lam: float = typer.Option(1.0, "--lam", help="sanw-debias steepness."),
        m1: float = typer.Option(0.2, "--m1", help="sanw-bandpass lower edge."),
        m2: float = typer.Option(0.85, "--m2", help="sanw-bandpass upper edge."),
        gamma: float = typer.Option(0.75, "--gamma", help="sanw-bandpass softness."),
        patience: int = typer.Option(2, "--patience", help="Early stop after N epochs "
                                     "without a better val score (0: never)."),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps."),
        seed: int = typer.Option(0, "--seed"),
        strict: bool = typer.Option(False, "--strict", help="Refuse unreadable images."),
        out: Path = typer.Option(None, "--out", help="Run folder (default finetune-runs/...)."),
        resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder."),
        as_json: bool = JsonOption,
    ) -> None:
        if ctx.invoked_subcommand:
            return
        from lensdb.finetune.config import FinetuneConfig
        from lensdb.finetune.losses import Objective

        bar = _Bar(as_json)
        if resume is not None:
            from lensdb.finetune.train import finetune

            with bar.progress:
                summary = finetune(FinetuneConfig("", ""), bar, resume=resume)
            _print_summary(summary, as_json)
            return
        if train is None or val is None:
            raise LensDBError("give --train FILE and --val FILE (or --resume RUN)")
        config = FinetuneConfig(
            str(train), str(val), str(test) if test else None,
            str(image_root) if image_root else None, embedder,
            Objective(objective, alpha, delta, lam, m1, m2, gamma), epochs, batch_size, lr,
            weight_decay, warmup, freeze=freeze_, topical_batches=topical, device=device,
            patience=patience, seed=seed, strict=strict, out=str(out) if out else None)
        if compare:
            from lensdb.finetune.compare import compare_objectives

            with bar.progress:
                result = compare_objectives(config, compare.split(","), bar)
            if as_json:
                print_json(result)
                return
            console.print(side_by_side(f"objectives compared on {result['split']}",
                                       result["metrics"]))
            console.print(f"comparison: {result['json']}, {result['png']}")
            return
        from lensdb.finetune.train import finetune

        with bar.progress:
            summary = finetune(config, bar)
        _print_summary(summary, as_json)

    @ft.command("eval")
    def eval_cmd(
        checkpoint: str = typer.Argument(..., help="best.pt of a run, or an embedder spec."),
        data: Path = typer.Option(..., "--data", help="Pairs/captions CSV to evaluate on."),
        baseline: str = typer.Option(None, "--baseline", help="Embedder to compare with "
                                     "(e.g. the one it was fine-tuned from)."),
        image_root: Path = typer.Option(None, "--image-root"),
        device: str = typer.Option("auto", "--device"),
        strict: bool = typer.Option(False, "--strict", help="Refuse unreadable images."),
        as_json: bool = JsonOption,
    ) -> None:
        """Retrieval both ways (R@1/5/10, median rank, mAP@10) and match metrics."""
        from lensdb.finetune.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(checkpoint, data, image_root, device, strict, baseline)
        if as_json:
            print_json(report.to_dict())
            return
        cols = {"pretrained": report.baseline} if report.baseline else {}
        cols["fine-tuned"] = report.metrics
        console.print(side_by_side(f"{data.name}: {report.images} images, {report.rows} rows",
                                   cols))
        console.print(f"threshold from {report.threshold_source}"
                      + (f"; {report.skipped_images} unreadable image(s) skipped"
                         if report.skipped_images else "")
                      + (f"; {report.generated_mismatches} mismatches made for the match "
                         "metrics" if report.generated_mismatches else ""))


def _register_reembed(app: typer.Typer) -> None:
    from lensdb.cli.common import StoreOption, store_path

    @app.command("reembed")
    def reembed_cmd(
        embedder: str = typer.Option(..., "--embedder", help="The new embedder, e.g. "
                                     "clip:ARCH:RUN/best.pt from finetune-embedder."),
        batch_size: int = typer.Option(32, "--batch-size", help="Frames per embedding call."),
        retrain: bool = typer.Option(True, "--retrain/--no-retrain",
                                     help="Retrain the count models in the new space."),
        store: Path = StoreOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Re-embed every stored frame with a new embedder (videos decoded again from their
        recorded paths; detections, counts and labels stay), then switch atomically.
        Crash-safe: rerun the same command to resume."""
        from lensdb.finetune.reembed import reembed

        with console.status("re-embedding") as status:
            result = reembed(store_path(store), embedder, batch_size, retrain,
                             lambda e: status.update(f"re-embedding: {e.get('frames', 0)} "
                                                     "frames") if e["kind"] == "batch"
                             else None)
        if as_json:
            print_json(result)
            return
        if result.get("note"):
            console.print(result["note"])
            return
        console.print(f"[green]ok[/] {result['frames']} frames now in {result['embedder_id']}"
                      + (" (resumed)" if result["resumed"] else "")
                      + (f"; count models retrained: {', '.join(result['retrained'])}"
                         if result["retrained"] else ""))


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    for split in ("val", "test"):
        if summary.get(split):
            console.print(side_by_side(f"{split}: pretrained vs fine-tuned "
                                       f"({summary['objective']})",
                                       {"pretrained": summary[split]["pretrained"],
                                        "fine-tuned": summary[split]["finetuned"]}))
    console.print(f"best epoch {summary['best_epoch']} of {summary['epochs_run']}"
                  + (" (stopped early)" if summary["stopped_early"] else ""))
    console.print(f"use it: --embedder {summary['best']}")

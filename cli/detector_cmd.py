"""`lensdb detector audit | train | eval | predict`: your own labeller, end to end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lensdb.cli.common import console, print_json
from lensdb.errors import LensDBError

HELP = (
    "Check a YOLO-format dataset, train a detector on it, measure it, predict with it.\n\n"
    "Models: yolo11n.yaml (random init) or any ultralytics .yaml/.pt, rtdetr-l.yaml "
    "(through ultralytics' trainer), light-detr (LensDB's small DETR). A run folder gets "
    "config.json, epochs.csv, summary.json, best.pt (by mAP50-95), best_loss.pt (by val "
    "loss) and final.pt; an ultralytics checkpoint plugs into `lensdb ingest --detector`.\n\n"
    "Examples:\n\n"
    "  lensdb detector audit data.yaml --strict\n\n"
    "  lensdb detector train data.yaml --model yolo11n.yaml --fast --out runs/debug\n\n"
    "  lensdb detector eval runs/debug/best.pt data.yaml --split val\n\n"
    "  lensdb detector predict runs/debug/best.pt images/ --out preds/"
)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


JsonOutOption = typer.Option(None, "--json", help="Write the JSON report to this file "
                             "('-': print it instead of tables).")


def _json_target(target: str | None) -> None:
    """A bad --json FILE is refused before the work that fills it."""
    if target is not None and target != "-":
        from lensdb.outputs import output_file

        output_file(target, "--json")


def _write_json(target: str | None, obj: Any) -> bool:
    """Write the report to `target` (a file); True when it goes to stdout instead ('-')."""
    if target is None or target == "-":
        return target == "-"
    import json

    from lensdb.runs import atomic_write_text

    atomic_write_text(Path(target), json.dumps(obj, indent=2, default=str) + "\n")
    return False


def _print_audit(report, as_json: bool) -> None:
    d = report.to_dict()
    if as_json:
        print_json(d)
        return
    t = Table(title=f"dataset {d['data']}")
    t.add_column("split")
    for col in ("images", "labelled", "background", "boxes", "imbalance"):
        t.add_column(col, justify="right")
    t.add_column("box side px (p5/med/p95)", justify="right")
    for split, s in d["splits"].items():
        bs = s["box_sizes"]
        sizes = (f"{bs['side_px_p5']:.0f}/{bs['side_px_median']:.0f}/{bs['side_px_p95']:.0f}"
                 if bs else "-")
        t.add_row(split, str(s["images"]), str(s["labelled"]), str(s["background"]),
                  str(s["boxes"]), _fmt(s["imbalance_ratio"]), sizes)
    console.print(t)
    h = Table(title="boxes per class")
    h.add_column("class")
    for split in d["splits"]:
        h.add_column(split, justify="right")
    for name in d["names"]:
        h.add_row(name, *[str(s["histogram"].get(name, 0)) for s in d["splits"].values()])
    console.print(h)
    if report.defects:
        dt = Table(title=f"{len(report.defects)} defect(s)")
        for col in ("kind", "split", "file", "line", "detail"):
            dt.add_column(col)
        for x in report.defects[:30]:
            dt.add_row(x.kind, x.split, Path(x.file).name, str(x.line or ""), x.detail)
        console.print(dt)
        if len(report.defects) > 30:
            console.print(f"... and {len(report.defects) - 30} more (see --json)")
    else:
        console.print("[green]no defects found[/]")
    for note in d["notes"]:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    det = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(det, name="detector")

    @det.command("audit")
    def audit_cmd(
        data: Path = typer.Argument(..., help="The dataset's data.yaml."),
        splits: str = typer.Option(None, "--splits", help="Comma-separated (default: all)."),
        strict: bool = typer.Option(False, "--strict", help="Exit non-zero on any defect."),
        json_out: str = JsonOutOption,
    ) -> None:
        """Check a dataset: classes, labels vs images, bad lines and boxes, duplicates
        across splits, class histograms and imbalance, box sizes."""
        from lensdb.detector.audit import audit

        _json_target(json_out)
        chosen = tuple(s.strip() for s in splits.split(",") if s.strip()) if splits else None
        report = audit(data, chosen)
        as_json = _write_json(json_out, report.to_dict())
        _print_audit(report, as_json)
        if report.failed(strict):
            raise LensDBError(f"{len(report.defects)} defect(s) found (--strict)")

    @det.command("train")
    def train_cmd(
        data: Path = typer.Argument(..., help="The dataset's data.yaml."),
        model: str = typer.Option("yolo11n.yaml", "--model", help="yolo11n.yaml | PATH.pt | "
                                  "rtdetr-l.yaml | light-detr."),
        epochs: int = typer.Option(50, "--epochs"),
        imgsz: int = typer.Option(None, "--imgsz", help="Input size (default 640; "
                                  "light-detr 128)."),
        batch: int = typer.Option(None, "--batch", help="Images per step (default 16; "
                                  "light-detr 8)."),
        lr: float = typer.Option(None, "--lr", help="Peak learning rate (default: the "
                                 "trainer's own)."),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps."),
        fast: bool = typer.Option(False, "--fast", help="Debug run: <=2 epochs, <=64 px, "
                                  "<=64 train and 32 val images."),
        subset: int = typer.Option(0, "--subset", help="Train on N images drawn with --seed."),
        seed: int = typer.Option(0, "--seed"),
        out: Path = typer.Option(None, "--out", help="Run folder (default runs/detector/...)."),
        clip_init: Path = typer.Option(None, "--clip-init", help="light-detr: an open_clip "
                                       "checkpoint whose visual tower is the backbone."),
        clip_arch: str = typer.Option("lensdb-tiny", "--clip-arch", help="Its architecture."),
        num_queries: int = typer.Option(20, "--num-queries", help="light-detr object queries."),
        decoder_layers: int = typer.Option(3, "--decoder-layers", help="light-detr layers."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Train a detector; the run folder gets config, epochs.csv, summary and checkpoints."""
        from lensdb.detector.config import DetectorTrainConfig
        from lensdb.detector.train import train_detector

        config = DetectorTrainConfig(
            str(data), model, epochs, imgsz, batch, lr, device, fast, subset, seed,
            str(out) if out else None, clip_init=str(clip_init) if clip_init else None,
            clip_arch=clip_arch, num_queries=num_queries, decoder_layers=decoder_layers)

        def show(e: dict[str, Any]) -> None:
            if as_json:
                return
            if e["kind"] == "start":
                console.print(f"training {e['model']} on {e['device']} -> {e['run']}")
            elif e["kind"] == "epoch":
                console.print(f"epoch {e['epoch']}/{e['epochs']}: train loss "
                              f"{_fmt(e['train_loss'])}, val loss {_fmt(e['val_loss'])}, "
                              f"mAP50 {_fmt(e['map50'])}, mAP50-95 {_fmt(e['map50_95'])}")

        summary = train_detector(config, show)
        if as_json:
            print_json(summary)
            return
        ev = summary["eval"]
        console.print(f"[green]done[/] in {summary['seconds']:.0f} s: best.pt on val: mAP50 "
                      f"{_fmt(ev['map50'])}, mAP50-95 {_fmt(ev['map50_95'])} (LensDB's metric)")
        for name, path in summary["checkpoints"].items():
            console.print(f"  {name}: {path}")

    @det.command("eval")
    def eval_cmd(
        ckpt: Path = typer.Argument(..., help="A checkpoint (ultralytics or light-detr)."),
        data: Path = typer.Argument(..., help="The dataset's data.yaml."),
        split: str = typer.Option("val", "--split"),
        device: str = typer.Option("cpu", "--device", help="auto | cpu | cuda | cuda:N | mps."),
        json_out: str = JsonOutOption,
    ) -> None:
        """mAP50, mAP50-95, per-class AP, precision and recall, by LensDB's metric code."""
        from lensdb.detector.evaluate import evaluate_checkpoint

        _json_target(json_out)
        r = evaluate_checkpoint(ckpt, data, split, device=device)
        if _write_json(json_out, r):
            print_json(r)
            return
        t = Table(title=f"{ckpt} on {split} ({r['images']} images, {r['instances']} boxes)")
        t.add_column("class")
        t.add_column("AP50", justify="right")
        t.add_column("AP50-95", justify="right")
        for name, a in r["per_class"].items():
            t.add_row(name, _fmt(a["ap50"]), _fmt(a["ap50_95"]))
        t.add_row("[bold]all[/]", _fmt(r["map50"]), _fmt(r["map50_95"]))
        console.print(t)
        console.print(f"precision {_fmt(r['precision'])}, recall {_fmt(r['recall'])} "
                      "(at the max-F1 confidence)")

    @det.command("predict")
    def predict_cmd(
        ckpt: Path = typer.Argument(..., help="A checkpoint (ultralytics or light-detr)."),
        inputs: list[Path] = typer.Argument(..., help="Images and/or folders of images."),
        conf: float = typer.Option(0.25, "--conf", help="Confidence threshold."),
        iou: float = typer.Option(0.5, "--iou", help="NMS IoU threshold."),
        max_images: int = typer.Option(0, "--max-images", help="At most N images (0: all)."),
        out: Path = typer.Option(Path("predictions"), "--out", help="Output folder."),
        device: str = typer.Option("cpu", "--device", help="auto | cpu | cuda | cuda:N | mps."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Boxes on images: OUT/images/*.jpg drawn, OUT/labels/*.txt (cls cx cy w h score)."""
        from lensdb.detector.predict import predict_images

        r = predict_images(ckpt, list(inputs), out, conf, iou, max_images, device)
        if as_json:
            print_json(r)
            return
        counts = ", ".join(f"{n} {c}" for n, c in r["per_class"].items() if c) or "none"
        console.print(f"{r['images']} image(s), {r['boxes']} box(es) ({counts}) -> {r['out']}")

    def _floats(text: str | None, flag: str) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in text.split(",") if x.strip()) if text else ()
        except ValueError:
            raise LensDBError(f"{flag} must be comma-separated numbers, not '{text}'")

    def _shares(values: tuple[float, ...], flag: str) -> tuple[float, ...]:
        bad = [v for v in values if not 0 < v < 1]
        if bad:
            raise LensDBError(f"{flag} values must lie strictly between 0 and 1, not {bad[0]}")
        return values

    @det.command("sweep")
    def sweep_cmd(
        data: Path = typer.Argument(..., help="The dataset's data.yaml."),
        model: str = typer.Option("light-detr", "--model", help="As for train."),
        lrs: str = typer.Option(None, "--lrs", help="Learning rates, e.g. 1e-4,5e-5."),
        batch_sizes: str = typer.Option(None, "--batch-sizes", help="e.g. 8,16."),
        num_queries: str = typer.Option(None, "--num-queries", help="light-detr, e.g. 50,100."),
        decoder_layers: str = typer.Option(None, "--decoder-layers", help="light-detr: 2,3."),
        conf_thres: str = typer.Option(None, "--conf-thres", help="Eval thresholds."),
        nms_iou: str = typer.Option(None, "--nms-iou", help="Eval NMS IoUs."),
        epochs: int = typer.Option(3, "--epochs"),
        imgsz: int = typer.Option(None, "--imgsz"),
        device: str = typer.Option("auto", "--device"),
        fast: bool = typer.Option(False, "--fast"),
        subset: int = typer.Option(0, "--subset"),
        seed: int = typer.Option(0, "--seed"),
        out: Path = typer.Option(Path("runs/sweep"), "--out", help="Sweep folder (resumable)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """A grid of short runs, OUT/sweep.csv and OUT/best.json; finished runs are kept."""
        from lensdb.detector.config import DetectorTrainConfig
        from lensdb.detector.evaluate import EVAL_CONF, EVAL_IOU
        from lensdb.detector.sweep import SweepGrid, sweep

        grid = SweepGrid(
            _floats(lrs, "--lrs"), tuple(int(x) for x in _floats(batch_sizes, "--batch-sizes")),
            tuple(int(x) for x in _floats(num_queries, "--num-queries")),
            tuple(int(x) for x in _floats(decoder_layers, "--decoder-layers")),
            _shares(_floats(conf_thres, "--conf-thres"), "--conf-thres") or (EVAL_CONF,),
            _floats(nms_iou, "--nms-iou") or (EVAL_IOU,))
        base = DetectorTrainConfig(str(data), model, epochs, imgsz, device=device, fast=fast,
                                   subset=subset, seed=seed)

        def show(e: dict[str, Any]) -> None:
            if not as_json:
                state = "done before, kept" if e["skipped"] else "training"
                console.print(f"[{e['index']}/{e['total']}] {e['key']}: {state}")

        r = sweep(base, grid, out, show)
        if as_json:
            print_json(r)
            return
        t = Table(title=f"sweep {r['root']}")
        for col in ("key", "conf", "nms_iou", "map50", "map50_95", "seconds"):
            t.add_column(col, justify="left" if col == "key" else "right")
        for row in r["rows"]:
            style = "bold green" if row is r["best"] else None
            t.add_row(row["key"], _fmt(row["conf"]), _fmt(row["nms_iou"]), _fmt(row["map50"]),
                      _fmt(row["map50_95"]), _fmt(row["seconds"]), style=style)
        console.print(t)
        console.print(f"best: {r['best']['key']} (conf {r['best']['conf']}, nms "
                      f"{r['best']['nms_iou']}); report {r['csv']}")

    @det.command("compare")
    def compare_cmd(
        data: Path = typer.Argument(..., help="The dataset's data.yaml."),
        clip_init: Path = typer.Option(..., "--clip-init", help="open_clip checkpoint."),
        clip_arch: str = typer.Option("lensdb-tiny", "--clip-arch", help="Its architecture."),
        epochs: int = typer.Option(10, "--epochs"),
        imgsz: int = typer.Option(None, "--imgsz"),
        batch: int = typer.Option(None, "--batch", help="Images per step (default 8)."),
        lr: float = typer.Option(None, "--lr"),
        device: str = typer.Option("auto", "--device"),
        fast: bool = typer.Option(False, "--fast"),
        subset: int = typer.Option(0, "--subset"),
        seed: int = typer.Option(0, "--seed"),
        out: Path = typer.Option(Path("runs/compare"), "--out", help="Comparison folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """light-detr from scratch vs from a CLIP-initialised backbone: a table and a plot."""
        from lensdb.detector.compare import compare_clip_init
        from lensdb.detector.config import DetectorTrainConfig

        base = DetectorTrainConfig(str(data), "light-detr", epochs, imgsz, batch, lr, device,
                                   fast, subset, seed, clip_arch=clip_arch)
        r = compare_clip_init(base, str(clip_init), out)
        if as_json:
            print_json(r)
            return
        t = Table(title=f"light-detr ({clip_arch} tower): scratch vs CLIP init, val split")
        t.add_column("metric")
        for name in r["table"]:
            t.add_column(name, justify="right")
        for key in ("map50", "map50_95", "precision", "recall", "best_val_loss", "seconds"):
            t.add_row(key, *[_fmt(col[key]) for col in r["table"].values()])
        console.print(t)
        console.print(f"plot: {r['png']}; curves: {r['json']}")

    @det.command("runs")
    def runs_cmd(
        root: Path = typer.Option(Path("runs"), "--root", help="Folder holding run folders."),
        grouped: bool = typer.Option(False, "--grouped", help="One row per configuration."),
        as_json: bool = typer.Option(False, "--json", help="JSON instead of CSV."),
    ) -> None:
        """Every detector run under ROOT as CSV: flat, or grouped by configuration."""
        from lensdb.detector.run_list import list_runs, to_csv

        r = list_runs(root)
        if as_json:
            print_json(r)
            return
        typer.echo(to_csv(r["groups"] if grouped else r["runs"]), nl=False)

"""`lensdb classify`: conditions of stored detections (zero-shot or trained), `train`, `eval`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lensdb.cli import common
from lensdb.errors import LensDBError

HELP = """Give every stored detection of a condition set's object its condition.

Crops of the detections (decoded again from the source videos) are embedded and scored
by the set's trained classifier when it has one, else zero-shot against the values'
prompt ensembles (a CLIP embedder; mobilenet-v2 has no text side). Results are detection
attributes, committed batch by batch; a re-run resumes where one stopped. Queries then
count by condition: count(car\\[parked]) >= 3.

Examples:
  lensdb classify --conditions parking
  lensdb classify --conditions parking --context crop+margin --spatial --method zero-shot
  lensdb classify train --conditions parking --data labels.csv
  lensdb classify eval --conditions parking --data test.csv --png confusion.png
"""

TRAIN_HELP = """Train a classifier of a condition set on labelled crops; classify uses it.

DATA is a CSV image_path,x1,y1,x2,y2,object,condition or a YOLO dataset folder whose
class names are object-condition pairs ("car parked"). A linear probe (logistic
regression, C picked on validation) on frozen embeddings; works with mobilenet-v2 (no
text side: linear probe only). --method vision fine-tunes a CLIP vision tower from the
zero-shot head, --method full both towers (the head: the prompts' text embeddings,
recomputed as the text tower learns); AdamW, warm-up + cosine, early stopping on
validation. Remedies for rare classes: --class-weights auto (n_max / n_c), --oversample,
--loss focal. --wise-ft ALPHA|auto blends the zero-shot weights in (CLIP).

Examples:
  lensdb classify train --conditions drains --data drains.csv --class-weights auto
  lensdb classify train --conditions parking --data yolo/ --embedder mobilenet-v2
"""

EVAL_HELP = """Compare zero-shot prompts and trained classifiers on a labelled dataset.

Accuracy, weighted F1, per-class precision/recall/F1/support and confusion matrices;
zero-shot per --contexts, with and without spatial prompts.

Examples:
  lensdb classify eval --conditions parking --data test.csv
  lensdb classify eval --conditions parking --data test.csv --contexts crop,full+box --png cm.png
"""


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=HELP, invoke_without_command=True, no_args_is_help=False)
    group.callback(invoke_without_command=True)(classify_command)
    group.command("train", help=TRAIN_HELP)(train_command)
    group.command("eval", help=EVAL_HELP)(eval_command)
    app.add_typer(group, name="classify", help=HELP)


def _fail(exc: LensDBError):
    return typer.Exit(common.report_error(exc))


def classify_command(
    ctx: typer.Context,
    conditions: str | None = typer.Option(None, "--conditions", "-c", help="Condition set."),
    method: str = typer.Option("auto", "--method", help="auto (the set's classifier, else "
                               "zero-shot), zero-shot or classifier."),
    classifier: int | None = typer.Option(None, "--classifier", help="A stored classifier "
                                          "id (default: the set's newest)."),
    context: str | None = typer.Option(None, "--context", help="crop, crop+margin or "
                                       "full+box (default: the classifier's, else crop)."),
    spatial: bool = typer.Option(False, "--spatial", help="Zero-shot: add the box's position "
                                 "to the prompts."),
    embedder: str | None = typer.Option(None, "--embedder", help="Embedder (default: the "
                                        "classifier's, else the store's)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Crops per batch and commit."),
    redo: bool = typer.Option(False, "--redo", help="Classify detections that have a value "
                              "already, too."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many detections."),
    store: Path | None = common.StoreOption,
    as_json: bool = common.JsonOption,
) -> None:
    if ctx.invoked_subcommand:
        return
    from lensdb.classify.run import ClassifyConfig, classify_store
    from lensdb.storage.store import Store

    try:
        if not conditions:
            raise LensDBError("--conditions NAME is required (list sets with `lensdb "
                              "conditions`)")
        config = ClassifyConfig(conditions, method, classifier, context, spatial, embedder,
                                batch_size, redo, limit)
        report = classify_store(Store.open(common.store_path(store)), config)
    except LensDBError as exc:
        raise _fail(exc) from None
    if as_json:
        common.print_json(report.to_dict())
        return
    who = (f"classifier {report.classifier_id}" if report.classifier_id else
           f"zero-shot{' (spatial prompts)' if report.spatial else ''}")
    table = Table(title=f"{report.conditions}: {report.classified} {report.object} "
                  f"detections classified by {who} ({report.context}, "
                  f"{report.crops_per_second:.1f} crops/s)")
    table.add_column("value")
    table.add_column("query class")
    table.add_column("detections in the store", justify="right")
    for value, n in report.values.items():
        table.add_row(escape(value), escape(f"count({report.object}[{value}])"), str(n))
    common.console.print(table)
    if report.remaining:
        common.console.print(f"{report.remaining} detections left; run again to go on")


def train_command(
    conditions: str = typer.Option(..., "--conditions", "-c", help="Condition set."),
    data: str = typer.Option(..., "--data", help="CSV or YOLO dataset folder."),
    method: str = typer.Option("linear-probe", "--method", help="linear-probe, vision "
                               "(fine-tune the CLIP vision tower) or full (both towers)."),
    embedder: str | None = typer.Option(None, "--embedder", help="Default: the store's."),
    context: str = typer.Option("crop", "--context", help="crop, crop+margin or full+box."),
    class_weights: str = typer.Option("none", "--class-weights", help="auto (n_max / n_c) "
                                      "or none."),
    oversample: bool = typer.Option(False, "--oversample", help="Repeat rare classes."),
    loss: str = typer.Option("ce", "--loss", help="ce or focal."),
    wise_ft: str | None = typer.Option(None, "--wise-ft", help="Blend in zero-shot: ALPHA "
                                       "in [0, 1] or auto."),
    epochs: int = typer.Option(10, "--epochs", help="--method vision|full: most epochs (early "
                               "stopping on validation)."),
    lr: float = typer.Option(1e-5, "--lr", help="--method vision|full: the tower's peak learning "
                             "rate (the head's: --head-lr)."),
    head_lr: float = typer.Option(1e-3, "--head-lr", help="--method vision|full: the head's."),
    seed: int = typer.Option(0, "--seed"),
    store: Path | None = common.StoreOption,
    as_json: bool = common.JsonOption,
) -> None:
    from lensdb.classify.finetune import FinetuneConfig
    from lensdb.classify.train import TrainConfig, train_classifier
    from lensdb.storage.store import Store

    try:
        if class_weights not in ("none", "auto"):
            raise LensDBError("--class-weights takes auto or none")
        alpha: float | str | None = wise_ft
        if wise_ft not in (None, "auto"):
            try:
                alpha = float(wise_ft)
            except ValueError:
                raise LensDBError("--wise-ft takes an alpha between 0 and 1, or auto") from None
        config = TrainConfig(conditions, data, method, embedder, context,
                             class_weights == "auto", oversample, loss, wise_ft=alpha,
                             seed=seed, finetune=FinetuneConfig(epochs=epochs, lr=lr,
                                                                head_lr=head_lr))
        report = train_classifier(Store.open(common.store_path(store)), config)
    except LensDBError as exc:
        raise _fail(exc) from None
    if as_json:
        common.print_json(report.to_dict())
        return
    table = Table(title=f"classifier {report.classifier_id} of {report.conditions}: "
                  f"{report.method} on {report.samples} crops ("
                  f"{f'C={report.C:g}, ' if report.method.startswith('linear') else ''}"
                  f"imbalance {report.imbalance_ratio:.1f}:1)")
    for col in ("value", "samples", "validation recall"):
        table.add_column(col, justify="left" if col == "value" else "right")
    for value, n in report.class_counts.items():
        r = report.val_recall.get(value)
        table.add_row(value, str(n), "-" if r is None else f"{r:.3f}")
    common.console.print(table)
    per = "C" if report.method.startswith("linear") else "epoch"
    common.console.print(Text(f"{report.val_metric} on validation per {per}: " + ", ".join(
        f"{c}: {s:.3f}" for c, s in report.val_scores.items()) + (
        f"; remedies: {', '.join(report.remedies)}" if report.remedies else "") + (
        f"; WiSE-FT alpha {report.wise_ft_alpha:g}" if report.wise_ft_alpha is not None
        else ""), style="dim"))
    for note in report.notes:
        common.console.print(Text(note, style="yellow"))


def eval_command(
    conditions: str = typer.Option(..., "--conditions", "-c", help="Condition set."),
    data: str = typer.Option(..., "--data", help="CSV or YOLO dataset folder."),
    embedder: str | None = typer.Option(None, "--embedder", help="Zero-shot rows' embedder "
                                        "(default: the store's)."),
    contexts: str = typer.Option("crop", "--contexts", help="Zero-shot contexts, e.g. "
                                 "crop,crop+margin,full+box."),
    classifiers: str | None = typer.Option(None, "--classifiers", help="Classifier ids "
                                           "(default: the active one)."),
    no_zero_shot: bool = typer.Option(False, "--no-zero-shot", help="Skip zero-shot rows."),
    png: str | None = typer.Option(None, "--png", help="Write confusion matrices here."),
    store: Path | None = common.StoreOption,
    as_json: bool = common.JsonOption,
) -> None:
    from lensdb.classify.evaluate import EvalConfig, evaluate_classifiers
    from lensdb.storage.store import Store

    try:
        try:
            ids = tuple(int(t) for t in classifiers.split(",")) if classifiers else None
        except ValueError:
            raise LensDBError("--classifiers takes comma-separated classifier ids") from None
        config = EvalConfig(conditions, data, embedder, not no_zero_shot,
                            tuple(c.strip() for c in contexts.split(",") if c.strip()),
                            classifiers=ids, png=png)
        report = evaluate_classifiers(Store.open(common.store_path(store)), config)
    except LensDBError as exc:
        raise _fail(exc) from None
    if as_json:
        common.print_json(report.to_dict())
        return
    counts = ", ".join(f"{v} {n}" for v, n in report.class_counts.items())
    table = Table(title=f"{report.conditions} on {report.samples} crops ({counts}; imbalance "
                  f"{report.imbalance_ratio:.1f}:1)")
    values = list(report.class_counts)
    for col in ("model", "context", "accuracy", "weighted F1", "macro F1",
                *[f"{v} P/R/F1" for v in values]):
        table.add_column(col, justify="left" if col in ("model", "context") else "right")
    for row in report.rows:
        extra = f" [{', '.join(row['remedies'])}]" if row.get("remedies") else ""
        table.add_row(escape(row["name"] + extra), row["context"], f"{row['accuracy']:.3f}",
                      f"{row['weighted_f1']:.3f}", f"{row['macro_f1']:.3f}",
                      *["{precision:.2f}/{recall:.2f}/{f1:.2f}".format(**row["per_class"][v])
                        for v in values])
    common.console.print(table)
    for row in report.rows:
        cm = Table(title=f"confusion, {row['name']} ({row['context']})", caption="rows: true, "
                   "columns: predicted")
        cm.add_column("true")
        for v in row["labels"]:
            cm.add_column(escape(v), justify="right")
        for v, line in zip(row["labels"], row["confusion"]):
            cm.add_row(escape(v), *[str(n) for n in line])
        common.console.print(cm)
    for note in report.notes:
        common.console.print(Text(note, style="yellow"))
    if report.png:
        common.console.print(f"confusion matrices: {report.png}")

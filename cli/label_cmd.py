"""`lensdb label`: run the detector where a label helps most, store it, refit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lensdb.cli import common
from lensdb.errors import LensDBError

if TYPE_CHECKING:
    from lensdb.counting.label import LabelReport

HELP = """Label the frames where a label helps most, then refit the count predictors.

In 4 rounds, each split by how well the embedding sees the counts (leave one out on the
labels so far): where it sees them, frames score high where propagation is unsure
(interpolation in time against embedding neighbours, the spread of the neighbours' counts,
distance in time and in the embedding to the nearest label, predicted counts near
--thresholds); where it sees them weakly, labels split the gaps where interpolation loses
most (long gaps where counts move; gaps across a --thresholds value first). Those frames
are decoded again from the source videos, the store's detector runs on them (the one and
the confidence each video was ingested with), the counts are stored as labels, and the
count predictors are refitted.

Crash-safe: labels are committed batch by batch; re-running finishes the job and never
duplicates a label. A source video that is gone or changed is a one-line error.

Examples:
  lensdb label --budget 50
  lensdb label --target-error 0.3 --classes person
  lensdb label --budget 100 --thresholds 6,8 --classes person
"""


def register(app: typer.Typer) -> None:
    app.command("label", help=HELP)(label_command)


def label_command(
    store: Path | None = common.StoreOption,
    budget: int | None = typer.Option(None, "--budget", help="Detector runs (frames to label);"
                                      " default 5% of the frames."),
    target_error: float | None = typer.Option(
        None, "--target-error", help="Label in rounds (refit after each) until the MAE on the "
        "frames just labelled is at most this; --budget caps it (default 25% of frames)."),
    classes: str | None = typer.Option(None, "--classes", help="Comma-separated classes that "
                                       "guide placement; default: those with count models."),
    thresholds: str | None = typer.Option(None, "--thresholds", help="Comma-separated count "
                                          "thresholds people query, e.g. 6,8."),
    no_refit: bool = typer.Option(False, "--no-refit", help="Store the labels, skip the refit."),
    as_json: bool = common.JsonOption,
) -> None:
    try:
        _run(store, budget, target_error, classes, thresholds, not no_refit, as_json)
    except LensDBError as exc:
        raise typer.Exit(common.report_error(exc)) from None


def _split(text: str | None, kind: type, name: str) -> tuple:
    from lensdb.errors import ParameterError

    if not text:
        return ()
    try:
        return tuple(kind(t.strip()) for t in text.split(",") if t.strip())
    except ValueError:
        raise ParameterError(name, f"must be comma-separated numbers, not '{text}'") from None


def _run(store_dir, budget, target_error, classes, thresholds, refit, as_json) -> None:
    from lensdb.counting.label import LabelConfig, label_store
    from lensdb.storage.store import Store

    config = LabelConfig(budget=budget, target_error=target_error,
                         classes=tuple(c.strip().lower() for c in (classes or "").split(",")
                                       if c.strip()),
                         thresholds=_split(thresholds, float, "thresholds"), refit=refit)
    config.validate()
    store = Store.open(common.store_path(store_dir))
    bar = Progress(TextColumn("[bold]detector"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=common.console_err, disable=as_json,
                   transient=True)
    task = bar.add_task("label", total=None)

    def progress(done: int, total: int) -> None:
        bar.start()  # only once the detector runs: an error before that prints alone
        bar.update(task, completed=done, total=total)
    try:
        report = label_store(store, config, progress=progress)
    finally:
        if bar.live.is_started:  # stopping a bar never shown prints an empty line
            bar.stop()
    if as_json:
        common.print_json(report.to_dict())
    else:
        _print(report)
    if report.refit_error:
        raise typer.Exit(3)  # labelled, not refitted: not a full success


def _print(report: LabelReport) -> None:
    table = Table(title=f"Labelled {report.labelled} frames ({report.detector_runs} detector "
                  f"runs; {report.labelled_total} of {report.frames} frames labelled now)")
    for col in ("class", "MAE before on the placed frames", "fill-in MAE before",
                "fill-in MAE after", "method"):
        table.add_column(col, justify="left" if col in ("class", "method") else "right")
    for cls in report.classes:
        table.add_row(cls, _f(report.placed_mae.get(cls)), _f(report.before.get(cls)),
                      _f(report.after.get(cls)), (report.refit or {}).get(cls, "-"))
    common.console.print(table)
    common.console.print(Text(
        "MAE before on the placed frames: the predictions there against the new labels (an "
        "honest estimate before labelling, on the frames placement found hardest). Fill-in "
        "MAE: out of fold on the labelled frames, which now include those hard frames.",
        style="dim"))
    for note in report.notes:
        common.console.print(Text(note, style="yellow"))


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"

"""`lensdb query`: count queries answered from stored counts and predictions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lensdb.cli import common
from lensdb.errors import LensDBError, QueryError

MAX_TABLE_ROWS = 200
FORMATS = ("table", "json", "csv", "parquet")

HELP = escape("""\
Answer a count query for every stored frame, without running the detector.

Counts come from the detector on labelled frames and from the trained count predictors
(`lensdb train-counter`) elsewhere; --source picks which. Every answer carries an
estimate of its own error, measured on labelled frames.

SELECTIONS  (answer: moments = runs of consecutive matching frames; --frames for frames)
  count(person) > 3
  count(person) >= 2 AND count(car) = 0
  NOT (count(car) > 0 OR count(bus) > 0)
  count(person) > 0 AND video = 'street.mp4'
  count(car) >= 1 AND video LIKE 'cam%' AND time BETWEEN 10s AND 2m
  count('traffic light') >= 1 AND time >= 1m30s
  count(bus) >= 1 LIMIT 10 GAP 5s      10 frames at least 5s apart (BlazeIt form)
  count(bus) >= 1 LIMIT 3              the first 3 moments

AGGREGATES  (over the matching frames, or all frames)
  avg(count(person))
  max(count(car)), sum(count(car)) WHERE count(person) > 0
  avg(count(car)) WHERE count(person) > 0 BY video
  frames WHERE count(person) > 5 BY minute       BY second | minute | hour | 10s | 2m

RULES
  count(CLASS) OP N compares the count rounded to the nearest integer (predictions are
  fractional); OP is = == != <> < <= > >=. Aggregates use the unrounded counts.
  AND binds tighter than OR; NOT and parentheses as usual. Keywords are case-insensitive;
  class names are as stored (quote them when they have odd characters); video names
  and LIKE patterns are quoted ('...' with '' for a quote; % and _ are wildcards).
  Durations: 250ms, 10s, 2m, 1h, 1m30s; time is seconds from the start of each video.
  LIMIT n GAP d picks matching frames in time order, each at least d after the last
  pick in its video. BY minute buckets time within each video.

SOURCES  best (default): detector counts on labelled frames, predictions elsewhere.
  predicted: predictions only. detected: labelled frames only (exact, but sparse).

GUARANTEES  (run the detector on sampled frames; each run is stored as a label)
  --recall 0.9 | --precision 0.9 [--confidence 0.95] [--budget 500]: SUPG selection
  --error 0.1 on avg(count(c)) / sum(count(c)): sample until the 95% interval is that narrow

Examples:
  lensdb query "count(person) > 3"
  lensdb query "count(car) >= 2" --frames --format csv --out cars.csv
  lensdb query "avg(count(person)) BY video" --format json
""")


def register(app: typer.Typer) -> None:
    app.command("query", help=HELP)(query_command)


def query_command(
    query: str = typer.Argument(..., metavar="QUERY", help="The query, quoted (see above)."),
    store: Path | None = common.StoreOption,
    source: str = typer.Option("best", "--source", help="best | predicted | detected."),
    fmt: str = typer.Option("table", "--format", "-f",
                            help="table | json | csv | parquet (parquet needs --out)."),
    frames: bool = typer.Option(False, "--frames", help="One row per matching frame."),
    gap: str | None = typer.Option(None, "--gap", metavar="DURATION",
                                   help="Merge moments less than this apart: seconds, or a "
                                        "duration as in queries (2s, 1m30s, 250ms)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Write the answer to FILE (format from --format "
                                         "or the file's suffix)."),
    recall: float | None = typer.Option(None, "--recall", help="Guarantee: a selection with "
                                        "at least this recall (runs the detector, SUPG)."),
    precision: float | None = typer.Option(None, "--precision", help="Guarantee: a selection "
                                           "with at least this precision (SUPG)."),
    error: float | None = typer.Option(None, "--error", help="Guarantee on avg/sum: sample "
                                       "until the interval's half-width is at most this."),
    confidence: float | None = typer.Option(None, "--confidence", help="Probability the "
                                            "guarantee holds (default 0.95)."),
    budget: int | None = typer.Option(None, "--budget", help="Detector runs allowed for a "
                                      "guarantee (default 500); each is stored as a label."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (same as --format json; "
                                 "with --out, the file keeps its format and what was written "
                                 "is printed as JSON)."),
) -> None:
    try:
        if as_json and out is None and fmt.lower() not in ("table", "json"):
            raise QueryError(f"--json and --format {fmt} contradict each other; give one")
        verify = {"recall": recall, "precision": precision, "error": error,
                  "confidence": confidence, "budget": budget}
        _run(query, store, source, fmt.lower(), frames, _gap(gap), out, verify, as_json)
    except LensDBError as exc:
        raise typer.Exit(common.report_error(exc))


def _gap(text: str | None) -> float | None:
    """--gap: seconds or a duration of the query language; its errors name the flag."""
    if text is None:
        return None
    from lensdb.query.parse import parse_duration

    try:
        return parse_duration(text)
    except QueryError:
        raise LensDBError(f"--gap must be 0 or more seconds or a duration such as 2s or "
                          f"1m30s, not {text!r}") from None


def _run(text: str, store_dir: Path | None, source: str, fmt: str, frames: bool,
         gap: float | None, out: Path | None, verify: dict | None = None,
         as_json: bool = False) -> None:
    if as_json and out is None:
        fmt = "json"
    if fmt not in FORMATS:
        raise QueryError(f"unknown --format '{fmt}'; use table, json, csv or parquet")
    if fmt == "parquet" and out is None:
        raise QueryError("--format parquet needs --out FILE")
    from lensdb.query import run_query
    from lensdb.query.result import csv_text, format_for
    from lensdb.storage.store import Store

    store = Store.open(common.store_path(store_dir))
    if out is not None:  # checked before a guarantee runs the detector
        from lensdb.outputs import output_file

        out = output_file(out, "--out", store.root)
        out_fmt = format_for(out) if fmt == "table" else fmt
    if verify and any(v is not None for v in verify.values()):  # a guarantee: runs the detector
        from lensdb.query import run_verified

        if verify["confidence"] is None:
            verify["confidence"] = 0.95
        result = run_verified(store, text, source=source, frames=frames, gap=gap, **verify)
    else:
        result = run_query(store, text, source=source, frames=frames, gap=gap)
    if out is not None:
        path = result.write(out, out_fmt)
        if as_json:
            common.print_json({"wrote": str(path), "format": out_fmt, "kind": result.kind,
                               "rows": len(result)})
        else:
            common.console.print(Text(f"wrote {len(result)} {_noun(result)} to {path}"),
                                 soft_wrap=True)
        return
    if fmt == "json":
        common.print_json(result.to_dict())
    elif fmt == "csv":
        typer.echo(csv_text(result), nl=False)
    else:
        print_table(result)


def _noun(result) -> str:
    return {"moments": "moments", "frames": "frames"}.get(result.kind, "rows")


def print_table(result) -> None:
    table = Table(show_lines=False, header_style="bold")
    shown = [c for c in result.columns if c != "video_id"]  # names are unique; ids: --json
    for name in shown:
        numeric = name not in ("video", "labelled", "predicted")
        table.add_column(Text(name), justify="right" if numeric else "left")
    rows = result.rows
    for row in rows[:MAX_TABLE_ROWS]:
        table.add_row(*(Text(_cell(k, row[k])) for k in shown))
    con = common.console
    con.print(table)
    if len(rows) > MAX_TABLE_ROWS:
        con.print(Text(f"... {len(rows) - MAX_TABLE_ROWS} more rows; use --format json/csv "
                       "or --out FILE for all of them"))
    summary = f"{len(rows)} {_noun(result)}"
    if result.kind == "moments":
        summary += f", {sum(r['frames'] for r in rows)} frames"
    con.print(Text(f"{summary} (source: {result.source})", style="bold"))
    for note in result.notes:
        con.print(Text(note, style="dim"))
    con.print(Text(result.describe_estimate()))


def _cell(name: str, value) -> str:
    if value is None:
        return "-"
    if name in ("start", "end", "time"):
        return clock(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def clock(seconds: float) -> str:
    """Seconds as m:ss.ss (or h:mm:ss.ss)."""
    minutes, sec = divmod(float(seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:05.2f}" if hours else f"{minutes}:{sec:05.2f}"

"""`lensdb export`: what a query or a search found, as JPEGs, clips and a contact sheet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from lensdb.cli.common import (
    JsonOption,
    StoreOption,
    console,
    print_error,
    print_json,
    store_path,
)
from lensdb.errors import LensDBError

HELP = (
    "Write what a QUERY (the query language) or a search found as files to look at: a JPEG "
    "per moment (its middle frame, detector boxes drawn on labelled frames), with --clips "
    "an MP4 per moment, and OUT/index.html, a contact sheet linking them.\n\n"
    "Examples:\n\n"
    '  lensdb export "count(car) > 2" --out shots/\n\n'
    '  lensdb export "count(person) >= 3 LIMIT 20 GAP 10s" --out shots/ --clips\n\n'
    '  lensdb export --search "a cyclist" --where "count(car) = 0" -k 12 --out shots/\n\n'
    "  lensdb export --image example.jpg -k 12 --out shots/\n\n"
    '  lensdb export "count(car) > 3" --out shots/ --overwrite   (replaces that export)\n'
)


def register(app: typer.Typer) -> None:
    @app.command("export", help=HELP)
    def export_cmd(
        query: str = typer.Argument(None, help="A selection query, e.g. \"count(car) > 2\"."),
        out: Path = typer.Option(..., "--out", "-o", help="Directory to write into: new or "
                                 "empty, or an earlier export with --overwrite."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export "
                                       "in --out (its files only; other folders are refused)."),
        search_text: str = typer.Option(None, "--search", help="Export a text search's hits."),
        image: Path = typer.Option(None, "--image", help="Export an image search's hits."),
        k: int = typer.Option(10, "-k", "--k", help="Hits of a search."),
        where: str = typer.Option(None, "--where", help="Filter of a search (predicate)."),
        video: str = typer.Option(None, "--video", help="Search only this video."),
        source: str = typer.Option("best", help="Counts from best | predicted | detected."),
        frames: bool = typer.Option(False, "--frames", help="A query's frames, not moments."),
        clips: bool = typer.Option(False, "--clips", help="Also cut an MP4 per moment."),
        pad: float = typer.Option(0.5, help="Seconds of context around each clip."),
        boxes: bool = typer.Option(True, "--boxes/--no-boxes", help="Draw detector boxes."),
        limit: int = typer.Option(200, help="Export at most this many moments."),
        embedder: str = typer.Option(None, help="Embedder spec for a search, when the store "
                                     "cannot name it."),
        store: Path = StoreOption,
        as_json: bool = JsonOption,
    ) -> None:
        import lensdb
        from lensdb.export import export

        searching = search_text is not None or image is not None
        if (query is not None) == searching:
            raise LensDBError("give a QUERY, or --search TEXT / --image PATH (one of them)")
        if query is not None and (where or video):
            raise LensDBError("--where and --video filter a search; put them in the QUERY")
        if limit < 1:
            raise LensDBError(f"--limit must be at least 1 moment, not {limit}")
        db = lensdb.open(store_path(store))
        if searching:
            from lensdb.search import search

            found = search(db.store, text=search_text, image=image, k=k, where=where,
                           video=video, source=source, embedder=embedder)
            items: list = list(found)
        else:
            from lensdb.export import to_moments
            from lensdb.query import run_query

            items = to_moments(run_query(db.store, query, source=source, frames=frames))
        if len(items) > limit:
            console.print(f"[yellow]{len(items)} moments; exporting the first {limit} "
                          "(--limit)[/]")
            items = items[:limit]
        report = export(db.store, items, out, clips=clips, boxes=boxes, pad=pad,
                        overwrite=overwrite)
        written = sum(1 for it in report.items if it["jpeg"])
        if as_json:
            print_json(report.to_dict())
        else:
            clips_n = sum(1 for it in report.items if it["clip"])
            console.print(f"{len(report.items)} moments: {written} JPEGs"
                          + (f", {clips_n} clips" if clips else "") + f" in {report.out_dir}")
            console.print(f"contact sheet: {report.index}")
        notes = Counter(it["note"] for it in report.items if it["note"])
        for note, n in notes.items():  # on stderr, once per reason
            print_error(f"{n} moment(s): {note}", "warning", "yellow")
        if report.items and not written:
            raise typer.Exit(3)  # nothing could be drawn: not a success

"""`lensdb pairs`: check, split and extend image-text pairs files for fine-tuning."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lensdb.cli.common import JsonOption, StoreOption, console, print_json, store_path

ImageRoot = typer.Option(None, "--image-root",
                         help="Folder relative image paths start from (default: the CSV's).")


def register(app: typer.Typer) -> None:
    pairs_app = typer.Typer(
        help="Image-text pairs for `lensdb finetune-embedder`: a pairs CSV "
        "(image_path,text,label with label 1 match / 0 mismatch) or a captions CSV "
        "(image_path,text; several rows per image allowed).", no_args_is_help=True)
    app.add_typer(pairs_app, name="pairs")

    @pairs_app.command("validate")
    def validate_cmd(file: Path = typer.Argument(..., help="Pairs or captions CSV."),
                     image_root: Path = ImageRoot, as_json: bool = JsonOption) -> None:
        """Columns, empty values, labels 0/1, images that exist and decode, duplicates,
        match/mismatch balance, captions per image. Exits 1 when the file has errors."""
        from lensdb.finetune.pairs import validate_pairs

        report = validate_pairs(file, image_root)
        if as_json:
            print_json(report.to_dict())
        else:
            table = Table(title=f"{file.name}: " + ("[green]ok[/]" if report.ok
                                                    else f"[red]{len(report.errors)} error(s)[/]"))
            table.add_column("")
            table.add_column("value", justify="right")
            for key, value in (("rows", report.rows), ("images", report.images),
                               ("matches", report.matches), ("mismatches", report.mismatches),
                               ("duplicates", report.duplicates)):
                table.add_row(key, str(value))
            c = report.captions_per_image
            table.add_row("captions per image (min/median/max)",
                          f"{c['min']}/{c['median']}/{c['max']}")
            console.print(table)
            for line in report.errors[:20]:
                console.print(f"[red]error[/] {line}", highlight=False)
            if len(report.errors) > 20:
                console.print(f"[red]... and {len(report.errors) - 20} more[/]")
            for line in report.warnings:
                console.print(f"[yellow]warning[/] {line}", highlight=False)
        if not report.ok:
            raise typer.Exit(1)

    @pairs_app.command("split")
    def split_cmd(file: Path = typer.Argument(..., help="Pairs or captions CSV."),
                  out: Path = typer.Option(..., "--out", help="Folder for train/val/test.csv."),
                  val: float = typer.Option(0.2, "--val", help="Fraction of images for val."),
                  test: float = typer.Option(0.0, "--test", help="Fraction of images for test."),
                  seed: int = typer.Option(0, "--seed"), image_root: Path = ImageRoot,
                  as_json: bool = JsonOption) -> None:
        """Split by image: all rows of an image land on the same side."""
        from lensdb.finetune.pairs import split_pairs

        result = split_pairs(file, out, val=val, test=test, seed=seed, image_root=image_root)
        if as_json:
            print_json(result)
            return
        table = Table(title=f"split of {file.name} (seed {seed})")
        for col in ("split", "rows", "images", "file"):
            table.add_column(col)
        for name, s in result["splits"].items():
            table.add_row(name, str(s["rows"]), str(s["images"]), s["file"])
        console.print(table)

    @pairs_app.command("mismatches")
    def mismatches_cmd(file: Path = typer.Argument(..., help="Pairs or captions CSV."),
                       per_match: int = typer.Option(1, "--per-match",
                                                     help="Mismatches made per match."),
                       out: Path = typer.Option(None, "--out",
                                                help="Output CSV (default NAME-pairs.csv)."),
                       seed: int = typer.Option(0, "--seed"), image_root: Path = ImageRoot,
                       as_json: bool = JsonOption) -> None:
        """Add mismatches: each image with another image's text (none of its own)."""
        from lensdb.finetune.pairs import make_mismatches

        result = make_mismatches(file, out, per_match=per_match, seed=seed,
                                 image_root=image_root)
        if as_json:
            print_json(result)
            return
        console.print(f"[green]ok[/] {result['file']}: {result['matches']} matches, "
                      f"{result['mismatches']} mismatches ({result['made']} made)")

    @pairs_app.command("from-store")
    def from_store_cmd(out: Path = typer.Option(..., "--out", help="Folder for images/ and "
                                                "captions.csv."),
                       query: str = typer.Option(None, "--query", "-q",
                                                 help='Predicate, e.g. "count(person) >= 1".'),
                       limit: int = typer.Option(1000, "--limit", help="At most this many "
                                                 "frames (evenly spread)."),
                       template: str = typer.Option("a street with {counts}", "--template",
                                                    help="Caption template with {counts}."),
                       store: Path = StoreOption, as_json: bool = JsonOption) -> None:
        """Captions from a store's labelled frames and their detector counts."""
        import lensdb
        from lensdb.finetune.from_store import captions_from_store

        db = lensdb.open(store_path(store))
        result = captions_from_store(db.store, out, query=query, limit=limit,
                                     template=template)
        if as_json:
            print_json(result)
            return
        console.print(f"[green]ok[/] {result['file']}: {result['images']} frames, "
                      f"{result['distinct_captions']} distinct captions")

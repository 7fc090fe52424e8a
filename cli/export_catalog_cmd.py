"""`lensdb export-catalog`: the catalog's tables as Parquet, partitioned by video."""

from __future__ import annotations

from pathlib import Path

import typer

from lensdb.cli.common import JsonOption, StoreOption, console, print_json, store_path

HELP = (
    "Write the store's frames, counts, predictions, detections and videos as Parquet under "
    "DIR, one folder per table, partitioned by video hive style (DIR/predictions/"
    "video_id=N/...), for Spark, Trino, Daft, DuckDB or pandas. The export is written "
    "beside DIR and renamed into place when complete.\n\n"
    "Examples:\n\n"
    "  lensdb export-catalog --parquet lake/\n\n"
    "  lensdb export-catalog --parquet lake/ --videos bikes.mp4 --overwrite\n\n"
    "  duckdb -c \"SELECT video_id, avg(value) FROM read_parquet('lake/predictions/*/"
    "*.parquet', hive_partitioning=true) GROUP BY ALL\"\n"
)


def register(app: typer.Typer) -> None:
    @app.command("export-catalog", help=HELP)
    def export_catalog_cmd(
        parquet: Path = typer.Option(..., "--parquet", help="Folder to write the tables into "
                                     "(new or empty, unless --overwrite)."),
        videos: list[str] = typer.Option(None, "--videos", help="Only this video (name or "
                                         "path); repeat for more."),
        overwrite: bool = typer.Option(False, "--overwrite",
                                       help="Replace an earlier export in DIR (once the new "
                                            "one is done); other files are refused."),
        store: Path = StoreOption,
        as_json: bool = JsonOption,
    ) -> None:
        import lensdb
        from lensdb.export_catalog import check_target, export_catalog

        check_target(parquet, overwrite)  # before opening the store: the cheaper error first
        db = lensdb.open(store_path(store))
        report = export_catalog(db.store, parquet, videos or None, overwrite)
        if as_json:
            print_json(report.to_dict())
            return
        from rich.table import Table

        table = Table(title=f"{report.videos} videos exported to {report.out_dir} "
                            f"in {report.seconds:.1f}s")
        for col in ("table", "rows", "files", "MB"):
            table.add_column(col, justify="left" if col == "table" else "right")
        for name, t in report.tables.items():
            table.add_row(name, f"{t['rows']:,}", str(t["files"]), f"{t['bytes'] / 2**20:.2f}")
        table.add_row("total", "", "", f"{report.bytes / 2**20:.2f}", style="bold")
        console.print(table)
        console.print(f"read it with pandas.read_parquet('{report.out_dir}/predictions') or "
                      f"read_parquet('{report.out_dir}/predictions/*/*.parquet', "
                      "hive_partitioning=true) in DuckDB", highlight=False)

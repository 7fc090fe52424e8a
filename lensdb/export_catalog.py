"""The catalog as Parquet, for Spark, Trino, Daft, DuckDB or pandas: one folder per table
(videos, frames, counts, predictions, detections), each partitioned by video hive style
(`DIR/predictions/video_id=3/data_0.parquet`), so a reader that knows hive partitions
gets `video_id` back as a column and can skip the videos it does not want.

DuckDB writes the files itself (`COPY (...) TO ... (FORMAT parquet, PARTITION_BY
(video_id))`) from one read-only connection, in one transaction, so every table comes from
the same state of the store. The files go to a hidden folder beside DIR, which is renamed
into place only once every table is written: an export that fails leaves no half folder
that looks finished. DIR/_lensdb_export.json lists what was written.

Reading it back:
    duckdb -c "SELECT video_id, count(*) FROM read_parquet('DIR/predictions/*/*.parquet',
        hive_partitioning=true) GROUP BY ALL"
    pandas.read_parquet('DIR/predictions')
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from lensdb.errors import LensDBError, first_line
from lensdb.outputs import fresh_dir
from lensdb.storage.store import Store
from lensdb.videos import resolve_known

MANIFEST = "_lensdb_export.json"
# table -> SELECT of its rows with the video_id they belong to (the partition key)
TABLES = {
    "videos": "SELECT * FROM videos v",
    "frames": "SELECT * FROM frames f",
    "counts": "SELECT f.video_id, t.* FROM counts t JOIN frames f USING (frame_id)",
    "predictions": "SELECT f.video_id, t.* FROM predictions t JOIN frames f USING (frame_id)",
    "detections": "SELECT f.video_id, t.* FROM detections t JOIN frames f USING (frame_id)",
}


@dataclass
class CatalogExport:
    """What `export_catalog` wrote."""

    out_dir: str
    videos: int  # videos exported
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # rows, files, bytes
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(t["bytes"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"bytes": self.bytes}


def check_target(out: Path, overwrite: bool, store_root: Path | None = None) -> None:
    """Refuse a DIR that is a file, is or holds or sits in the store, or is not empty;
    `overwrite` replaces only an earlier export (a folder with its MANIFEST)."""
    fresh_dir(out, "--parquet", MANIFEST, overwrite, store_root)


def video_ids(con, videos: list[str] | None) -> list[int] | None:
    """The ids of the videos named (by name or path, as `video = ...` in a query)."""
    if videos is None:
        return None
    rows = con.execute("SELECT video_id, name, path FROM videos").fetchall()
    ids = []
    for text in videos:
        name = resolve_known(text, rows)
        ids.append(next(r[0] for r in rows if r[1] == name))
    return sorted(set(ids))


def export_catalog(store: Store, out_dir: str | Path, videos: list[str] | None = None,
                   overwrite: bool = False) -> CatalogExport:
    """Write the store's tables as Parquet partitioned by video under `out_dir` (all videos,
    or those `videos` names); see the module docstring."""
    out = Path(out_dir)
    check_target(out, overwrite, store.root)
    start = time.perf_counter()
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise LensDBError(f"cannot write beside {out}: {exc.strerror}") from None
    try:
        with store.catalog.connect() as con:
            con.execute("BEGIN TRANSACTION")  # one snapshot for every table
            ids = video_ids(con, videos)
            report = CatalogExport(str(out), _count_videos(con, ids))
            for table, select in TABLES.items():
                report.tables[table] = _copy(con, table, select, ids, tmp / table)
            con.execute("COMMIT")
        report.seconds = time.perf_counter() - start
        (tmp / MANIFEST).write_text(json.dumps(report.to_dict() | {
            "store": str(store.root), "partitioning": "hive, by video_id",
            "format": "parquet"}, indent=2) + "\n")
        _into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _count_videos(con, ids: list[int] | None) -> int:
    if ids is not None:
        return len(ids)
    return int(con.execute("SELECT count(*) FROM videos").fetchall()[0][0])


def _copy(con, table: str, select: str, ids: list[int] | None, dest: Path) -> dict[str, int]:
    where, params = "", []
    if ids is not None:
        key = "v.video_id" if table == "videos" else "f.video_id"
        where, params = f" WHERE {key} IN (SELECT unnest(?::INTEGER[]))", [ids]
    dest.mkdir()
    try:
        rows = con.execute(f"COPY ({select}{where}) TO '{_quote(dest)}' (FORMAT parquet, "
                           "PARTITION_BY (video_id), OVERWRITE_OR_IGNORE)", params
                           ).fetchall()[0][0]
    except duckdb.Error as exc:
        raise LensDBError(f"cannot write {table} to {dest}: {first_line(exc, 200)}") from None
    files = list(dest.rglob("*.parquet"))
    return {"rows": int(rows), "files": len(files),
            "bytes": sum(p.stat().st_size for p in files)}


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished export to `out` (an old one, with overwrite, goes after)."""
    old = None
    if out.exists():
        check_target(out, overwrite)  # (nothing else wrote there meanwhile)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["export_catalog", "CatalogExport", "TABLES", "MANIFEST"]

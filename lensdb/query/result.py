"""The answer to a query: rows as an Arrow table, the error estimate, and writers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from lensdb.errors import QueryError
from lensdb.query.estimate import describe
from lensdb.strict_json import strict

FORMATS = ("json", "csv", "parquet")


@dataclass
class QueryResult:
    """`kind` is "moments", "frames" or "aggregate"; `table` holds the rows."""

    query: str
    source: str
    kind: str
    table: pa.Table
    estimate: dict
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [{k: strict(v) for k, v in row.items()} for row in self.table.to_pylist()]

    def __len__(self) -> int:
        return self.table.num_rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: query, source, kind, columns, rows, estimate, notes."""
        return {
            "query": self.query, "source": self.source, "kind": self.kind,
            "columns": self.columns, "rows": self.rows,
            "estimate": strict(self.estimate), "notes": list(self.notes),
        }

    def describe_estimate(self) -> str:
        return describe(self.estimate)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def write(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write to `path` as json, csv or parquet (by default from the file's suffix)."""
        path = Path(path)
        fmt = fmt or format_for(path)
        if fmt == "json":
            path.write_text(self.to_json() + "\n")
        elif fmt == "csv":
            write_csv(self, path)
        elif fmt == "parquet":
            write_parquet(self, path)
        else:
            raise QueryError(f"unknown output format '{fmt}'; use one of {', '.join(FORMATS)}")
        return path


def format_for(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("pq", "parquet"):
        return "parquet"
    if suffix in FORMATS:
        return suffix
    raise QueryError(f"cannot tell the format of '{path.name}' from its suffix; "
                     "pass --format json, csv or parquet")


def write_csv(result: QueryResult, path_or_buffer) -> None:
    """Rows as CSV with a header (the estimate is not part of CSV; use JSON for it)."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(result.table, path_or_buffer)


def write_parquet(result: QueryResult, path: Path) -> None:
    """Rows as Parquet; the query, source and estimate go into the schema metadata."""
    import pyarrow.parquet as pq

    meta = dict(result.table.schema.metadata or {})
    meta[b"lensdb.query"] = result.query.encode()
    meta[b"lensdb.source"] = result.source.encode()
    meta[b"lensdb.estimate"] = json.dumps(strict(result.estimate)).encode()
    pq.write_table(result.table.replace_schema_metadata(meta), path)


def csv_text(result: QueryResult) -> str:
    buf = pa.BufferOutputStream()
    write_csv(result, buf)
    return buf.getvalue().to_pybytes().decode()


def make_table(columns: dict[str, list], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array(vals, type=types[name]) for name, vals in columns.items()})

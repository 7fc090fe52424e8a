"""Shared CLI pieces: consoles, the --store option, error printing, JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from lensdb.errors import LensDBError, QueryError

console = Console()
console_err = Console(stderr=True, soft_wrap=True)

StoreOption = typer.Option(
    None, "--store", "-s", envvar="LENSDB_STORE",
    help="Store directory (env LENSDB_STORE; default ./lensdb-store).",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def store_path(store: Path | None) -> str | None:
    return str(store) if store else None


def report_error(exc: BaseException) -> int:
    """Print a one-line error (plus a caret for query errors); the exit code to use."""
    if isinstance(exc, QueryError):
        console_err.print(f"[red]error:[/] {exc}", highlight=False, markup=True)
        caret = exc.caret()
        if caret:
            console_err.print(caret, highlight=False, markup=False)
        return exc.exit_code
    if isinstance(exc, LensDBError):
        console_err.print(f"[red]error:[/] {exc}", highlight=False)
        return exc.exit_code
    if os.environ.get("LENSDB_DEBUG"):
        raise exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    console_err.print(
        f"[red]error:[/] {type(exc).__name__}: {text} (set LENSDB_DEBUG=1 for a traceback)",
        highlight=False,
    )
    return 1


def print_json(obj: Any) -> None:
    """JSON to stdout, unstyled, so scripts can parse it."""
    typer.echo(json.dumps(obj, indent=2, default=str))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"

"""Shared CLI pieces: consoles, the --store option, error printing, JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from lensdb.errors import LensDBError, ParameterError, QueryError, first_line
from lensdb.strict_json import strict

console = Console()
console_err = Console(stderr=True, soft_wrap=True)

StoreOption = typer.Option(
    None, "--store", "-s", envvar="LENSDB_STORE",
    help="Store directory (env LENSDB_STORE; default ./lensdb-store).",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def store_path(store: Path | None) -> str | None:
    return str(store) if store else None


def print_error(message: str, label: str = "error", style: str = "red") -> None:
    """One line on stderr; the message is plain text, never read as rich markup."""
    line = Text(f"{label}:", style=style)
    line.append(" " + message.replace("\n", " "))
    console_err.print(line, soft_wrap=True, highlight=False)


def report_error(exc: BaseException) -> int:
    """Print a one-line error (plus a caret for query errors); the exit code to use."""
    if isinstance(exc, QueryError):
        print_error(str(exc))
        caret = exc.caret()
        if caret:
            console_err.print(Text(caret), soft_wrap=True, highlight=False)
        return exc.exit_code
    if isinstance(exc, ParameterError):
        print_error(exc.cli_message())  # the library names the parameter, the CLI its flag
        return exc.exit_code
    if isinstance(exc, LensDBError):
        print_error(str(exc))
        return exc.exit_code
    if os.environ.get("LENSDB_DEBUG"):
        raise exc
    print_error(f"{type(exc).__name__}: {first_line(exc)} (set LENSDB_DEBUG=1 for a traceback)")
    return 1


def print_json(obj: Any) -> None:
    """Strict JSON to stdout (see lensdb.strict_json), unstyled, so scripts can parse it."""
    typer.echo(json.dumps(strict(obj), indent=2, allow_nan=False))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"

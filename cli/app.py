"""The typer application. Each command lives in its own module with a `register(app)`."""

from __future__ import annotations

import sys
from typing import Any

import typer

from lensdb.cli import common
from lensdb.cli.help_text import reflow_commands

app = typer.Typer(
    name="lensdb",
    help=(
        "LensDB: ask counting questions of hours of video.\n\n"
        "Ingest videos (detect a sample, embed every sampled frame), train count "
        "predictors on the embeddings, then query counts for every frame without "
        "running the detector again."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMAND_MODULES = [
    "ingest_cmd",
    "info_cmd",
    "models_cmd",
    "train_cmd",
    "label_cmd",
    "query_cmd",
    "search_cmd",
    "export_cmd",
    "export_catalog_cmd",
    "serve_cmd",
    "bench_cmd",
    "pairs_cmd",
    "finetune_cmd",
    "match_cmd",
    "conditions_cmd",
    "classify_cmd",
    "detector_cmd",
]


def _register_all() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"lensdb.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lensdb.cli.{name}":
                continue  # command not built yet
            raise
        module.register(app)
    reflow_commands(app)


_register_all()


# flags that name a path: typer reads an empty value as Path("") == ".", the current folder
PATH_FLAGS = ("--store", "-s", "--out", "-o", "--parquet", "--plot", "--image", "--data")


def empty_path_flag(argv: list[str]) -> str | None:
    """The first path flag given an empty value (`--store ""`, `--out=`), or None."""
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag not in PATH_FLAGS:
            continue
        given = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        if given is not None and not given.strip():
            return flag
    return None


def main() -> None:
    """Console entry point: user errors become one red line and exit code 2."""
    empty = empty_path_flag(sys.argv[1:])
    if empty:
        common.print_error(f"{empty} is empty; give a path (for the current folder, '.')")
        sys.exit(2)
    # typer carries its own click; its UsageError is the base of the BadParameter it exports
    usage_error: type[Exception] = next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:  # a bad option or argument, from the parser
        err: Any = exc  # click's UsageError: ctx, show(), format_message(), exit_code
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()  # the help, as without arguments before
            sys.exit(err.exit_code)
        where = err.ctx.command_path if err.ctx is not None else "lensdb"
        common.print_error(f"{err.format_message()} (see `{where} --help`)")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        common.console_err.print("[yellow]interrupted; what was committed stays[/]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001
        sys.exit(common.report_error(exc))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""`lensdb conditions`: named condition sets of a detected class (add, list)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lensdb.cli import common
from lensdb.errors import LensDBError

ADD_HELP = """Add a condition set: named values of one detected class.

Prompts are templates with {object}, {condition} and optionally {position}, one a line
in --prompts FILE; each value's prompts are embedded, normalised and averaged (a prompt
ensemble). Queries then count by condition: count(car\\[parked]) >= 3.

Examples:
  lensdb conditions add parking --object car --values parked,moving
  lensdb conditions add drains --object drain --values clear,blocked --prompts prompts.txt
"""


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Condition sets of detected objects (add, list).",
                        invoke_without_command=True, no_args_is_help=False)

    @group.callback(invoke_without_command=True)
    def conditions_list(ctx: typer.Context, store: Path | None = common.StoreOption,
                        as_json: bool = common.JsonOption) -> None:
        """List the store's condition sets."""
        if ctx.invoked_subcommand:
            return
        try:
            _list(store, as_json)
        except LensDBError as exc:
            raise typer.Exit(common.report_error(exc)) from None

    group.command("add", help=ADD_HELP)(add_command)
    app.add_typer(group, name="conditions")


def add_command(
    name: str = typer.Argument(..., help="Name of the condition set."),
    obj: str = typer.Option(..., "--object", help="The detected class it applies to."),
    values: str = typer.Option(..., "--values", help="Comma-separated values, e.g. "
                               "parked,moving."),
    prompts: Path | None = typer.Option(None, "--prompts", help="File of prompt templates, "
                                        "one a line."),
    store: Path | None = common.StoreOption,
    as_json: bool = common.JsonOption,
) -> None:
    from lensdb.classify.conditions import add_condition_set, read_templates
    from lensdb.storage.store import Store

    try:
        templates = read_templates(prompts) if prompts else None
        cs = add_condition_set(Store.open(common.store_path(store)), name, obj,
                               values.split(","), templates)
    except LensDBError as exc:
        raise typer.Exit(common.report_error(exc)) from None
    if as_json:
        common.print_json(cs.to_dict())
        return
    common.console.print(Text(
        f"condition set {cs.name}: {cs.object} {', '.join(cs.values)} ({len(cs.templates)} "
        f"prompt templates); query e.g. count({cs.class_name(cs.values[0])}) > 0"))


def _list(store, as_json: bool) -> None:
    from lensdb.classify.conditions import list_condition_sets
    from lensdb.storage.store import Store

    sets = list_condition_sets(Store.open(common.store_path(store)))
    if as_json:
        common.print_json([cs.to_dict() for cs in sets])
        return
    table = Table(title="Condition sets")
    for col in ("name", "object", "values", "prompts"):
        table.add_column(col)
    for cs in sets:
        table.add_row(escape(cs.name), escape(cs.object), escape(", ".join(cs.values)),
                      str(len(cs.templates)))
    common.console.print(table)

"""Help texts that wrap at the terminal's width: paragraphs are reflowed, indented lines
(examples, tables) are kept as written. Applied to every command once, at registration."""

from __future__ import annotations

import inspect

import typer


def reflow(text: str) -> str:
    """Join the lines of each plain paragraph; keep blank and indented lines as they are."""
    out: list[str] = []
    for line in text.strip("\n").splitlines():
        plain = line.strip() and not line[:1].isspace()
        if plain and out and out[-1].strip() and not out[-1][:1].isspace() \
                and not out[-1].rstrip().endswith(":"):
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line.rstrip())
    return "\n".join(out)


def reflow_commands(app: typer.Typer) -> None:
    """Reflow the help of every command and group of `app`, recursively."""
    for info in app.registered_commands:
        doc = info.help or (inspect.getdoc(info.callback) if info.callback else None)
        if doc:
            info.help = reflow(doc)
    for group in app.registered_groups:
        if group.help:
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            reflow_commands(group.typer_instance)

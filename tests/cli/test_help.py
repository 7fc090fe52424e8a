"""--help wraps at the terminal's width: no hard newline inside a paragraph."""

from __future__ import annotations

import os
import subprocess
import sys

from lensdb.cli.help_text import reflow


def test_reflow_joins_paragraph_lines_and_keeps_examples():
    text = "First line of a\nparagraph goes on.\n\nExamples:\n  lensdb a\n  lensdb b\nEnd\nhere."
    assert reflow(text) == ("First line of a paragraph goes on.\n\nExamples:\n  lensdb a\n"
                            "  lensdb b\nEnd here.")


def test_every_command_help_is_reflowed():
    from lensdb.cli.app import app

    for info in app.registered_commands:
        lines = (info.help or "").splitlines()
        for above, line in zip(lines, lines[1:]):
            plain = [x.strip() and not x[:1].isspace() for x in (above, line)]
            assert not (all(plain) and not above.rstrip().endswith(":")), (info.name, above)


def test_help_at_a_narrow_width_breaks_lines_only_at_the_width():
    """Greedy wrapping: a line inside a paragraph ends only where the next word would not
    have fitted. A hard newline in the source breaks that."""
    width = 60
    env = {**os.environ, "COLUMNS": str(width), "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "lensdb.cli.app", "ingest", "--help"],
                         capture_output=True, text=True, env=env, timeout=120).stdout
    lines = [ln.rstrip() for ln in out.split("Arguments")[0].splitlines()]
    for line, nxt in zip(lines, lines[1:]):
        if line.startswith(" ") and not line.startswith("  ") and nxt.strip() \
                and not nxt.startswith("  "):
            assert len(line) + 1 + len(nxt.split()[0]) > width - 3, (line, nxt)


def test_every_command_takes_json():
    """The README's promise: every command, group members included, has --json."""
    import typer.main

    from lensdb.cli.app import app

    def leaves(cmd, path: tuple[str, ...] = ()):  # typer's own click: a group has commands
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from leaves(sub, path + (name,))
        else:
            yield path, cmd

    found = list(leaves(typer.main.get_command(app)))
    assert len(found) > 20
    missing = [" ".join(path) for path, cmd in found
               if not any("--json" in p.opts for p in cmd.params)]
    assert missing == []

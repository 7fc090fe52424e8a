"""The real CLI in a subprocess with the fake detector and embedder (tests/ingest_fakes.py),
and the one-error-line check the CLI tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNNER = [sys.executable, str(Path(__file__).parents[1] / "ingest_fakes.py")]
FAKE = ["--detector", "fake-detector", "--embedder", "fake-embedder"]


def run(*args: str, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNNER, *args], capture_output=True, text=True, timeout=120,
                          stdin=stdin)


def only_error_line(proc: subprocess.CompletedProcess) -> str:
    """The failure's stderr: exactly one non-empty line, the `error:` one."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]

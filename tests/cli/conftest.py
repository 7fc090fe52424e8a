"""Fixtures of the CLI tests: a small store ingested with the fakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_cli import FAKE, run


@pytest.fixture
def store(tmp_path, make_video) -> Path:
    root = tmp_path / "store"
    proc = run("ingest", str(make_video("good.mkv", n_frames=12)), "--store", str(root),
               *FAKE, "--json")
    assert proc.returncode == 0, proc.stderr
    return root

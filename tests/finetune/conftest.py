"""Image-caption data made in code (coloured shapes, 1-3 of them) for the fine-tuning tests,
and one torch thread: on a shared 2-core machine more threads only fight each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensdb.finetune.synthetic import make_shapes_dataset


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """train (216 images), val (72) and test (36) captions files in separate folders."""
    root = tmp_path_factory.mktemp("shapes")
    out = {}
    for name, n, seed in (("train", 216, 1), ("val", 72, 2), ("test", 36, 3)):
        make_shapes_dataset(root / name, n, seed=seed, prefix=f"{name}-")
        out[name] = root / name / "captions.csv"
    return out


@pytest.fixture(scope="session")
def tiny_small(tmp_path_factory) -> dict[str, Path]:
    """A very small split for smoke tests: 48 train images, 24 val."""
    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for name, n, seed in (("train", 48, 4), ("val", 24, 5)):
        make_shapes_dataset(root / name, n, seed=seed, prefix=f"{name}-")
        out[name] = root / name / "captions.csv"
    return out

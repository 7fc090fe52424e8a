"""Fixtures: a store of squares (classify_data.py) and a random-weight tiny CLIP saved to a
checkpoint (so its vector space has a stable id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from classify_data import make_square_store

from lensdb.storage import Store


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """`clip:lensdb-tiny:<checkpoint>`: random weights, saved, so every load is one space."""
    import open_clip
    import torch

    import lensdb.finetune.tiny  # noqa: F401  registers the architecture

    torch.manual_seed(0)
    model = open_clip.create_model("lensdb-tiny", pretrained=None)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return f"clip:lensdb-tiny:{path}"


@pytest.fixture(scope="session")
def other_tiny_clip(tmp_path_factory) -> str:
    import open_clip
    import torch

    import lensdb.finetune.tiny  # noqa: F401

    torch.manual_seed(1)
    model = open_clip.create_model("lensdb-tiny", pretrained=None)
    path = tmp_path_factory.mktemp("tiny2") / "tiny2.pt"
    torch.save(model.state_dict(), path)
    return f"clip:lensdb-tiny:{path}"


@pytest.fixture
def square_store(tmp_path: Path) -> Store:
    return make_square_store(tmp_path / "store")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models on a shared, loaded machine run faster on one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_clip_calibrated(tmp_path_factory) -> str:
    """The random-weight tiny CLIP with its (ResNet) tower's batch-norm statistics measured
    on shape images, as a pretrained tower's match its data (random ones collapse every
    image onto nearly one embedding, which fine-tuning from scratch must first escape)."""
    import numpy as np
    import open_clip
    import torch
    from classify_data import shape_image
    from PIL import Image

    import lensdb.finetune.tiny  # noqa: F401

    torch.manual_seed(0)
    model, _, pre = open_clip.create_model_and_transforms("lensdb-tiny", pretrained=None)
    rng = np.random.default_rng(9)
    x = torch.stack([pre(Image.fromarray(shape_image(rng, bool(i % 2))[0]))
                     for i in range(128)])
    for m in model.visual.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a plain average over the calibration batch
            m.reset_running_stats()
    model.visual.train()
    with torch.no_grad():
        model.encode_image(x)
    model.eval()
    path = tmp_path_factory.mktemp("tiny3") / "tiny-calibrated.pt"
    torch.save(model.state_dict(), path)
    return f"clip:lensdb-tiny:{path}"

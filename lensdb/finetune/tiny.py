"""The `lensdb-tiny` open_clip architecture: a few-layer ViT and text transformer (64-d
embeddings, 32 px images) that trains from random init on a CPU in seconds. Tests and
offline demos use it; `--embedder clip:lensdb-tiny` names it everywhere.

Importing this module registers the config with open_clip (once); it is imported only
where open_clip models are built, so `import lensdb` stays free of open_clip.
"""

from __future__ import annotations

from pathlib import Path

import open_clip

TINY_ARCH = "lensdb-tiny"
CONFIG_DIR = Path(__file__).with_name("model_configs")


def register() -> None:
    """Add LensDB's shipped model configs to open_clip's registry (idempotent)."""
    if TINY_ARCH not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR / f"{TINY_ARCH}.json")


register()

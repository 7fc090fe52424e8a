"""What an adapter declares about each model it brings: a `ModelSpec` per name.

Adapters list theirs in a module-level `SPECS` tuple; `registry` reads those tables (the
modules named in `registry.BUILTIN_ADAPTERS`) the first time it is asked, so nothing
registers by the side effect of an import, and no adapter imports the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensdb.errors import ModelUnavailableError

OFFLINE_HINT = (
    "offline alternatives: detector 'ssd-mobilenet-v2' and embedder 'mobilenet-v2' "
    "(run `lensdb models fetch ssd-mobilenet-v2`), or a local .pt/.onnx file"
)


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str  # registry key, what users type
    kind: str  # "detector" or "embedder"
    description: str  # one line for `lensdb models`
    source: str  # where the weights come from
    size_mb: float  # approximate size of the weights
    load: Callable[..., Any]  # (**options) -> Detector | Embedder
    fetch: Callable[[], Path]  # downloads the weights into the cache, returns the path
    is_present: Callable[[], bool]  # weights already on this machine?
    default_conf: float = 0.25  # detectors: confidence threshold used when none is given,
    # chosen by measuring counts against what is there (see each adapter's spec)
    devices: tuple[str, ...] = ("cpu",)  # device types `load(device=...)` accepts (torch
    # adapters: cpu, cuda, mps; LiteRT runs on the CPU only)
    quantize: tuple[str, ...] = ()  # embedders: `load(quantize=...)` values a `+NAME` spec
    # suffix may ask for (CLIP: "int8", on the CPU)


def unavailable(what: str, reason: str) -> ModelUnavailableError:
    """The one-line error for weights that cannot be had."""
    return ModelUnavailableError(
        f"{what}: weights cannot be had ({reason}); run `lensdb models fetch {what}` "
        f"where the hub is reachable; {OFFLINE_HINT}"
    )

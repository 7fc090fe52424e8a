"""Registries of detectors and embedders, keyed by name.

Each entry knows where its weights come from, whether they are here, how to fetch them
and how to load them. Model libraries are imported only inside `load`/`fetch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError, ModelUnavailableError
from lensdb.models.base import Detector, Embedder

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


_DETECTORS: dict[str, ModelSpec] = {}
_EMBEDDERS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    table = _DETECTORS if spec.kind == "detector" else _EMBEDDERS
    table[spec.name] = spec
    return spec


def _ensure_builtins() -> None:
    # Importing these modules only registers specs; their model libraries load lazily.
    from lensdb.models import clip, ssd_mobilenet, yolo  # noqa: F401


def list_detectors() -> dict[str, ModelSpec]:
    _ensure_builtins()
    return dict(_DETECTORS)


def list_embedders() -> dict[str, ModelSpec]:
    _ensure_builtins()
    return dict(_EMBEDDERS)


def find_spec(name: str) -> ModelSpec:
    _ensure_builtins()
    spec = _DETECTORS.get(name) or _EMBEDDERS.get(name)
    if spec is None:
        known = ", ".join(sorted(list(_DETECTORS) + list(_EMBEDDERS)))
        raise LensDBError(f"unknown model '{name}'; known models: {known}")
    return spec


def get_detector(name: str, conf: float = 0.25) -> Detector:
    """A detector by registry name, ultralytics model name, or local .pt/.onnx path."""
    _ensure_builtins()
    if name in _DETECTORS:
        return _DETECTORS[name].load(conf=conf)
    from lensdb.models import yolo

    if yolo.looks_like_yolo(name):
        return yolo.load_yolo(name, conf=conf)
    known = ", ".join(sorted(_DETECTORS))
    raise LensDBError(
        f"unknown detector '{name}'; known detectors: {known}, or a local .pt/.onnx path"
    )


def get_embedder(name: str) -> Embedder:
    """An embedder by registry name, or `clip:ARCH[:PRETRAINED_TAG_OR_CHECKPOINT]`."""
    _ensure_builtins()
    if name in _EMBEDDERS:
        return _EMBEDDERS[name].load()
    from lensdb.models import clip

    if name.startswith("clip:"):
        return clip.load_open_clip_spec(name)
    known = ", ".join(sorted(_EMBEDDERS))
    raise LensDBError(
        f"unknown embedder '{name}'; known embedders: {known}, or clip:ARCH:CHECKPOINT"
    )


def unavailable(what: str, reason: str) -> ModelUnavailableError:
    """The one-line error for weights that cannot be had."""
    return ModelUnavailableError(
        f"{what}: weights cannot be had ({reason}); run `lensdb models fetch {what}` "
        f"where the hub is reachable; {OFFLINE_HINT}"
    )

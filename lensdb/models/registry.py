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
    default_conf: float = 0.25  # detectors: confidence threshold used when none is given,
    # chosen by measuring counts against what is there (see each adapter's spec)


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


YOLO_DEFAULT_CONF = 0.25  # ultralytics' own default, for hub names and local .pt/.onnx files


def default_conf(name: str) -> float:
    """The confidence threshold a detector uses when none is given: its spec's, else YOLO's."""
    _ensure_builtins()
    spec = _DETECTORS.get(name)
    return spec.default_conf if spec is not None else YOLO_DEFAULT_CONF


def get_detector(name: str, conf: float | None = None) -> Detector:
    """A detector by registry name, ultralytics model name, or local .pt/.onnx path
    (resolved by `lensdb.models.resolve`, the same rules the HTTP API checks). `conf`
    None: the detector's own default (`default_conf`); the adapter keeps it as `.conf`."""
    from lensdb.models.resolve import resolve_detector

    resolved = resolve_detector(name)
    if conf is None:
        conf = default_conf(resolved.spec if resolved.source == "registry" else name)
    if resolved.source == "registry":
        return _DETECTORS[resolved.spec].load(conf=conf)
    from lensdb.models import yolo

    return yolo.load_yolo(name, conf=conf)


def get_embedder(name: str) -> Embedder:
    """An embedder by registry name, or `clip:ARCH[:PRETRAINED_TAG_OR_CHECKPOINT]`."""
    from lensdb.models.resolve import resolve_embedder

    resolved = resolve_embedder(name)
    if resolved.source == "registry":
        return _EMBEDDERS[resolved.spec].load()
    from lensdb.models import clip

    return clip.load_open_clip(resolved)


def unavailable(what: str, reason: str) -> ModelUnavailableError:
    """The one-line error for weights that cannot be had."""
    return ModelUnavailableError(
        f"{what}: weights cannot be had ({reason}); run `lensdb models fetch {what}` "
        f"where the hub is reachable; {OFFLINE_HINT}"
    )

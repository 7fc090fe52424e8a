"""Registries of detectors and embedders, keyed by name.

Each entry knows where its weights come from, whether they are here, how to fetch them
and how to load them. Model libraries are imported only inside `load`/`fetch`. The
built-in entries are the `SPECS` tables of the adapter modules in `BUILTIN_ADAPTERS`,
read here on first use; `register` adds more (plugins, tests).
"""

from __future__ import annotations

import importlib

from lensdb.errors import LensDBError
from lensdb.models.base import Detector, Embedder
from lensdb.models.spec import OFFLINE_HINT, ModelSpec, unavailable

# adapter modules whose `SPECS` tables are the built-in models (imported on first use)
BUILTIN_ADAPTERS = ("lensdb.models.yolo", "lensdb.models.clip", "lensdb.models.ssd_mobilenet")

_DETECTORS: dict[str, ModelSpec] = {}
_EMBEDDERS: dict[str, ModelSpec] = {}
_LOADED: list[bool] = []  # the built-in tables have been read


def register(spec: ModelSpec) -> ModelSpec:
    table = _DETECTORS if spec.kind == "detector" else _EMBEDDERS
    table[spec.name] = spec
    return spec


def _ensure_builtins() -> None:
    # The adapters' modules are cheap to import: their model libraries load in `load`.
    if _LOADED:
        return
    for module in BUILTIN_ADAPTERS:
        for spec in importlib.import_module(module).SPECS:
            table = _DETECTORS if spec.kind == "detector" else _EMBEDDERS
            table.setdefault(spec.name, spec)  # one registered before keeps its place
    _LOADED.append(True)


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


TORCH_DEVICES = ("cpu", "cuda", "mps")  # ultralytics and open_clip models named by file/tag


def _on(spec: ModelSpec | None, name: str, device: str | None,
        devices: tuple[str, ...] | None = None) -> dict[str, str]:
    """`device=` for a loader: only for adapters that run anywhere but the CPU."""
    from lensdb.device import model_device

    chosen = model_device(device, devices or (spec.devices if spec else TORCH_DEVICES), name)
    return {} if chosen == "cpu" else {"device": chosen}


def get_detector(name: str, conf: float | None = None, device: str | None = "cpu") -> Detector:
    """A detector by registry name, ultralytics model name, or local .pt/.onnx path
    (resolved by `lensdb.models.resolve`, the same rules the HTTP API checks). `conf`
    None: the detector's own default (`default_conf`); the adapter keeps it as `.conf`.
    `device`: auto | cpu | cuda[:N] | mps (a CPU-only model takes the CPU under auto)."""
    from lensdb.models.resolve import resolve_detector

    resolved = resolve_detector(name)
    if conf is None:
        conf = default_conf(resolved.spec if resolved.source == "registry" else name)
    if resolved.source == "registry":
        spec = _DETECTORS[resolved.spec]
        return spec.load(conf=conf, **_on(spec, name, device))
    if resolved.source == "file" and resolved.spec.lower().endswith(".pt"):
        from lensdb.detector.light_ckpt import LightDetrDetector, read_light_detr

        if read_light_detr(resolved.spec) is not None:  # trained by `lensdb detector train`
            return LightDetrDetector(resolved.spec, conf=conf)
    from lensdb.models import yolo

    return yolo.load_yolo(name, conf=conf, **_on(None, name, device))


def get_embedder(name: str, device: str | None = "cpu") -> Embedder:
    """An embedder by registry name, or `clip:ARCH[:PRETRAINED_TAG_OR_CHECKPOINT]`; a `+int8`
    suffix quantises it for the CPU (`lensdb.models.clip_int8`)."""
    from lensdb.models.resolve import resolve_embedder

    resolved = resolve_embedder(name)
    cpu_only = ("cpu",) if resolved.quantize else None  # quantised kernels: the CPU's
    if resolved.source == "registry":
        spec = _EMBEDDERS[resolved.name]
        if resolved.quantize is None:
            return spec.load(**_on(spec, name, device))
        if resolved.quantize not in spec.quantize:
            raise LensDBError(f"embedder '{resolved.name}' has no +{resolved.quantize} path; "
                              "quantisation is for CLIP embedders (clip-vit-b-32, clip:ARCH)")
        return spec.load(quantize=resolved.quantize, **_on(spec, name, device, cpu_only))
    from lensdb.models import clip

    return clip.load_open_clip(resolved, **_on(None, name, device, cpu_only))


__all__ = ["OFFLINE_HINT", "ModelSpec", "register", "unavailable", "get_detector",
           "get_embedder", "list_detectors", "list_embedders", "find_spec", "default_conf"]

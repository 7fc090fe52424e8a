"""What a model spec names, decided once: a registry entry, a hub name, or one local file.

The loaders (`get_detector`, `get_embedder`) and the HTTP API's check use this same
function, so the file the API allowed is the file the loader opens:

    r = resolve_model("detector", "w.PT")     # ResolvedModel(source="file", files=(/cwd/w.PT,))
    r.spec                                    # canonical: the absolute real path

Rules (syntax decides, never the disk alone, so nothing can be planted to change a meaning):
- a detector spec is a file when it has a `.pt`/`.onnx` suffix (any case), a `/`, or starts
  with `.`; a name like `yolo11n.pt` that is also an ultralytics model name is the local
  file when one exists (ambiguous: the API refuses it) and the hub model otherwise;
- `clip:ARCH:P`: P is a file when it has a `/`, starts with `.`, or ends in a checkpoint
  suffix (any case); any other P is a pretrained tag that open_clip downloads, never a file;
- an embedder spec ending in `+int8` is the spec before it, quantised (`clip_int8`); the
  suffix is always that, so a file whose name ends in `+int8` cannot be named.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lensdb.errors import LensDBError, ModelUnavailableError

DETECTOR_FILE_SUFFIXES = (".pt", ".onnx")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
ULTRALYTICS_NAME = re.compile(r"^(yolo(v?\d+)[nsmlx]?|rtdetr-[lx])(\.pt)?$", re.IGNORECASE)
MAX_SPEC_CHARS = 1024


@dataclass(frozen=True)
class ResolvedModel:
    """One model spec, resolved."""

    kind: str  # "detector" or "embedder"
    spec: str  # canonical spec: what the loader is given (a file as its absolute real path)
    source: str  # "registry" | "hub" (downloaded into the cache) | "file" | "random"
    files: tuple[Path, ...] = ()  # local files the loader opens (real paths)
    ambiguous: str | None = None  # why the spec could mean two things (the API refuses it)
    name: str = ""  # registry/hub name or architecture; "" for a bare file
    pretrained: str | None = None  # CLIP: the hub tag or checkpoint path
    quantize: str | None = None  # embedders: "int8" for a `+int8` spec (the CPU fast path)


def _looks_like_path(text: str, suffixes: tuple[str, ...]) -> bool:
    return "/" in text or text.startswith(".") or text.lower().endswith(suffixes)


def _real_file(text: str, what: str) -> Path:
    path = Path(os.path.realpath(os.path.expanduser(text)))
    if not path.exists():
        raise ModelUnavailableError(f"no such {what} file: {shorten(text)}")
    if not path.is_file():
        raise ModelUnavailableError(f"the {what} {shorten(text)} is not a file")
    return path


def shorten(text: str, limit: int = 120) -> str:
    """A value safe to echo back in a message: at most `limit` characters."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} chars)"


def _check_text(spec: str, kind: str) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise LensDBError(f"the {kind} is empty")
    if len(spec) > MAX_SPEC_CHARS or any(ord(c) < 32 for c in spec):
        raise LensDBError(f"the {kind} '{shorten(spec)}' is not a valid model name or path")
    return spec.strip()


def resolve_detector(spec: str) -> ResolvedModel:
    """A detector spec: registry name, ultralytics model name, or local .pt/.onnx file."""
    from lensdb.models.registry import list_detectors

    spec = _check_text(spec, "detector")
    if spec in list_detectors():
        return ResolvedModel("detector", spec, "registry", name=spec)
    hub = ULTRALYTICS_NAME.match(spec)
    hub_name = re.sub(r"\.pt$", "", spec, flags=re.IGNORECASE).lower() if hub else None
    if _looks_like_path(spec, DETECTOR_FILE_SUFFIXES):
        if not spec.lower().endswith(DETECTOR_FILE_SUFFIXES):
            raise LensDBError(f"detector file {shorten(spec)} must be a .pt or .onnx file")
        if hub_name is not None and not os.path.lexists(spec):
            return ResolvedModel("detector", hub_name, "hub", name=hub_name)
        path = _real_file(spec, "detector")
        why = (f"'{spec}' is both the ultralytics model {hub_name} and the local file {path}"
               if hub_name is not None else None)
        return ResolvedModel("detector", str(path), "file", (path,), why, name=path.stem)
    if hub_name is not None:
        return ResolvedModel("detector", hub_name, "hub", name=hub_name)
    known = ", ".join(sorted(list_detectors()))
    raise LensDBError(f"unknown detector '{shorten(spec)}'; known detectors: {known}, "
                      "an ultralytics model name (yolo11x, rtdetr-l), or a local .pt/.onnx path")


def split_quantize(spec: str) -> tuple[str, str | None]:
    """(the spec without a `+int8` suffix, "int8" or None)."""
    from lensdb.models.clip_int8 import QUANTIZE

    for q in QUANTIZE:
        if spec.endswith(f"+{q}") and len(spec) > len(q) + 1:
            return spec[: -len(q) - 1], q
    return spec, None


def resolve_embedder(spec: str) -> ResolvedModel:
    """An embedder spec: registry name, or `clip:ARCH[:TAG_OR_CHECKPOINT]`, either with an
    optional `+int8` suffix (the spec's `quantize`; canonical spec keeps the suffix)."""
    from dataclasses import replace

    spec, quantize = split_quantize(_check_text(spec, "embedder"))
    resolved = _resolve_embedder(spec)
    if quantize is None:
        return resolved
    return replace(resolved, spec=f"{resolved.spec}+{quantize}", quantize=quantize)


def _resolve_embedder(spec: str) -> ResolvedModel:
    from lensdb.models.registry import list_embedders

    if spec in list_embedders():
        return ResolvedModel("embedder", spec, "registry", name=spec)
    if not spec.startswith("clip:"):
        known = ", ".join(sorted(list_embedders()))
        looks_like_file = spec.endswith((".pt", ".pth", ".bin", ".safetensors")) or "/" in spec
        if looks_like_file and not Path(spec).exists():
            raise LensDBError(f"no such checkpoint file: {shorten(spec)} (an embedder is one "
                              f"of {known}, clip:ARCH:CHECKPOINT, or a fine-tuning run's "
                              "best.pt)")
        raise LensDBError(f"unknown embedder '{shorten(spec)}'; known embedders: {known}, "
                          "or clip:ARCH:CHECKPOINT")
    parts = spec.split(":", 2)
    arch = parts[1] or "ViT-B-32"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", arch) or arch.startswith("."):
        raise LensDBError(f"'{shorten(arch)}' is not an open_clip architecture name")
    pretrained = parts[2] if len(parts) > 2 and parts[2] else None
    if pretrained is None:
        return ResolvedModel("embedder", f"clip:{arch}", "random", name=arch)
    if _looks_like_path(pretrained, CHECKPOINT_SUFFIXES):
        path = _real_file(pretrained, "checkpoint")
        return ResolvedModel("embedder", f"clip:{arch}:{path}", "file", (path,), name=arch,
                             pretrained=str(path))
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", pretrained):
        raise LensDBError(f"'{shorten(pretrained)}' is neither a pretrained tag nor a file path")
    return ResolvedModel("embedder", f"clip:{arch}:{pretrained}", "hub", name=arch,
                         pretrained=pretrained)


def named_file(kind: str, spec: str) -> Path | None:
    """The real path of the file a spec names by its syntax alone (whether or not it
    exists), or None for names; a spec that may be a hub name as well gives None."""
    spec = spec.strip()
    if kind == "detector":
        if ULTRALYTICS_NAME.match(spec) or not _looks_like_path(spec, DETECTOR_FILE_SUFFIXES):
            return None
        text = spec
    else:
        base = split_quantize(spec)[0]
        parts = base.split(":", 2)
        if spec.startswith("clip:") and len(parts) == 3 and _looks_like_path(
                parts[2], CHECKPOINT_SUFFIXES):
            text = parts[2]
        elif not spec.startswith("clip:") and (_looks_like_path(base, CHECKPOINT_SUFFIXES)
                                               or base.startswith("~")):
            text = base  # a bare checkpoint path (or what only a path could be)
        else:
            return None
    return Path(os.path.realpath(os.path.expanduser(text)))


def resolve_model(kind: str, spec: str) -> ResolvedModel:
    """`resolve_detector` or `resolve_embedder` by kind."""
    if kind == "detector":
        return resolve_detector(spec)
    if kind == "embedder":
        return resolve_embedder(spec)
    raise ValueError(f"unknown model kind {kind!r}")

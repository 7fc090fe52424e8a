"""The open_clip model being fine-tuned: built from an embedder spec, saved as checkpoints
that load back as `clip:ARCH:DIR/best.pt` wherever an embedder is named.

A checkpoint is `{"state_dict": ..., "lensdb": {...}}` (open_clip reads the state dict;
the `lensdb` part records the architecture, the match head and the match threshold), so
`load_trainable("clip:ARCH:CKPT")` can refuse a checkpoint of another architecture with a
one-line error before open_clip tries to load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError, ModelUnavailableError
from lensdb.runs import atomic_torch_save

FREEZE = ("none", "text", "vision")
CLIP_REGISTRY = {"clip-vit-b-32": "ViT-B-32"}  # registry names that are open_clip models


@dataclass
class ClipModel:
    """An open_clip model with what training and evaluation need around it."""

    model: Any  # open_clip CLIP (torch nn.Module)
    preprocess: Any  # PIL image -> tensor (the model's eval transform)
    tokenizer: Any  # list[str] -> LongTensor
    arch: str  # open_clip architecture name
    spec: str  # the embedder spec it was built from
    head: Any = None  # losses.MatchHead, learnt by bce or fitted on validation
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's `lensdb` record

    @property
    def threshold(self) -> float | None:
        """The cosine threshold picked on validation (None: never calibrated)."""
        value = self.meta.get("threshold")
        return float(value) if value is not None else None


def checkpoint_meta(path: str | Path) -> dict[str, Any] | None:
    """The `lensdb` record of a checkpoint file, None for a checkpoint of another origin."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a torch file we can read: let open_clip say so
        return None
    return obj.get("lensdb") if isinstance(obj, dict) else None


def spec_for(ckpt_or_spec: str) -> str:
    """`clip:ARCH:PATH` for a bare checkpoint path (its architecture read from it)."""
    if ckpt_or_spec.startswith("clip:") or not Path(ckpt_or_spec).exists():
        return ckpt_or_spec
    meta = checkpoint_meta(ckpt_or_spec)
    if not meta or "arch" not in meta:
        raise LensDBError(f"{ckpt_or_spec} is not a LensDB checkpoint; name its architecture: "
                          f"clip:ARCH:{ckpt_or_spec}")
    return f"clip:{meta['arch']}:{Path(ckpt_or_spec).resolve()}"


def load_trainable(spec: str, why: str = "fine-tuning") -> ClipModel:
    """Build the model an embedder spec names, ready to train. Embedders without a text
    side (mobilenet-v2) are refused: every objective here pairs images with text."""
    from lensdb.models.resolve import resolve_embedder

    spec = spec_for(spec)
    resolved = resolve_embedder(spec)
    if resolved.quantize:  # int8 is for inference on the CPU; training needs the fp32 model
        raise LensDBError(f"{why} needs the fp32 model: drop +{resolved.quantize} from the spec")
    if resolved.source == "registry" and resolved.spec not in CLIP_REGISTRY:
        raise LensDBError(f"embedder '{resolved.spec}' has no text side: {why} needs an image "
                          "and a text tower (clip-vit-b-32, clip:ARCH[:CKPT], e.g. "
                          "clip:lensdb-tiny)")
    arch = CLIP_REGISTRY.get(resolved.spec, resolved.name)
    meta: dict[str, Any] = {}
    if resolved.source == "file":
        meta = checkpoint_meta(resolved.files[0]) or {}
        if meta.get("arch") and meta["arch"] != arch:
            raise LensDBError(f"checkpoint {resolved.files[0].name} is of architecture "
                              f"{meta['arch']}, not {arch}: name it as "
                              f"clip:{meta['arch']}:{resolved.files[0]}")
    from lensdb.models.registry import get_embedder

    try:
        emb: Any = get_embedder(spec)  # an OpenClipEmbedder: resolved as clip above
    except ModelUnavailableError as exc:
        first = str(exc).split("; run `lensdb models fetch")[0]
        raise ModelUnavailableError(f"{first}; {why} needs a CLIP with a text side: fetch it "
                                    "where the hub is reachable, or start from "
                                    "clip:lensdb-tiny or a local clip:ARCH:CKPT") from None
    cm = ClipModel(emb.model, emb.preprocess, emb.tokenizer, arch, resolved.spec, meta=meta)
    if meta.get("match_head"):
        from lensdb.finetune.losses import MatchHead

        cm.head = MatchHead()
        cm.head.load_state_dict(_tensors(meta["match_head"]))
    return cm


def _tensors(d: dict[str, float]) -> dict[str, Any]:
    import torch

    return {k: torch.tensor(float(v)) for k, v in d.items()}


def freeze(cm: ClipModel, which: str) -> int:
    """Freeze the text or the vision tower (or none); returns the trainable parameters."""
    if which not in FREEZE:
        from lensdb.errors import ParameterError

        raise ParameterError("freeze", f"must be one of {', '.join(FREEZE)}, not '{which}'")
    trainable = 0
    for name, p in cm.model.named_parameters():
        vision = name.startswith("visual.")
        scale = name in ("logit_scale", "logit_bias")
        p.requires_grad_(not ((which == "vision" and vision) or
                              (which == "text" and not vision and not scale)))
        trainable += p.numel() if p.requires_grad else 0
    return trainable


def save_checkpoint(cm: ClipModel, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Model weights plus the `lensdb` record, written atomically."""
    meta = {**cm.meta, **(extra or {}), "arch": cm.arch, "base": cm.meta.get("base", cm.spec)}
    if cm.head is not None:
        meta["match_head"] = {k: float(v) for k, v in cm.head.state_dict().items()}
    state = {k: v.detach().cpu() for k, v in cm.model.state_dict().items()}
    atomic_torch_save({"state_dict": state, "lensdb": meta}, Path(path))
    return Path(path)

"""open_clip adapter: `clip-vit-b-32` by default, any architecture with a local checkpoint.

Images are preprocessed in batches on the embedder's device (`clip_preprocess`), and a
`+int8` spec quantises the vision tower for the CPU (`clip_int8`, checked against fp32).
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from pathlib import Path

import numpy as np

from lensdb.device import uses_half
from lensdb.errors import LensDBError, first_line
from lensdb.models.base import cache_dir, file_digest, l2_normalise
from lensdb.models.clip_preprocess import ArrayPreprocess
from lensdb.models.resolve import ResolvedModel, shorten
from lensdb.models.spec import ModelSpec, unavailable

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_TAG = "laion2b_s34b_b79k"
DEFAULT_HUB_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"  # where open_clip gets DEFAULT_TAG


def _hub_cache() -> Path:
    return cache_dir() / "open_clip"


def _hub_repo_cached(repo: str) -> bool:
    """Weights of one Hugging Face hub repo are in the cache (hub layout models--ORG--NAME)."""
    folder = _hub_cache() / ("models--" + repo.strip("/").replace("/", "--"))
    return folder.is_dir() and any(
        p.suffix in (".bin", ".safetensors") for p in folder.rglob("*"))


def _tag_cached(arch: str, tag: str | None) -> bool:
    """open_clip's weights for (arch, tag) are in the cache (open_clip must be importable)."""
    import open_clip

    if not tag:
        return False
    repo = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "")
    return bool(repo) and _hub_repo_cached(repo)


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an offline machine gets its answer in seconds, not minutes."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


class OpenClipEmbedder:
    """Image and text towers of an open_clip model; unit-length float32 vectors."""

    has_text = True

    def __init__(self, name: str, arch: str, pretrained: str | None, batch_size: int = 32,
                 checkpoint: bool = False, device: str = "cpu", quantize: str | None = None):
        """`pretrained`: a hub tag, or (with `checkpoint`) a checkpoint file's path. A tag is
        never looked up on disk: open_clip reads a file for an unknown tag. `quantize`
        "int8": the vision tower quantised for the CPU, checked against fp32 (`clip_int8`)."""
        import open_clip
        import torch

        hub_tag = pretrained is not None and not checkpoint
        if hub_tag and pretrained is not None and pretrained not in \
                open_clip.list_pretrained_tags_by_model(arch):
            known = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
            raise LensDBError(f"'{shorten(pretrained)}' is not a pretrained tag of {arch} "
                              f"(known: {known}); name a checkpoint file by a path, like "
                              f"./{shorten(pretrained)}")
        if hub_tag and not _tag_cached(arch, pretrained) and not hub_reachable():
            raise unavailable(name, "huggingface.co is not reachable from this machine")
        import lensdb.finetune.tiny  # noqa: F401  (registers the lensdb-tiny architecture)
        root_logger = logging.getLogger()
        level = root_logger.level
        root_logger.setLevel(logging.CRITICAL)  # open_clip logs download failures at root
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, cache_dir=str(_hub_cache())
            )
        except Exception as exc:
            text = first_line(exc, limit=100) if str(exc).strip() else ""
            if "download" in text.lower() or not isinstance(exc, RuntimeError):
                raise unavailable(name, text or type(exc).__name__) from None
            raise LensDBError(f"open_clip cannot build '{arch}': {text}") from None
        finally:
            root_logger.setLevel(level)
        model.eval()
        if quantize is not None and device != "cpu":
            raise LensDBError(f"{name}+{quantize} runs on the CPU only, not {device}")
        self.device = device  # torch device; fp16 on CUDA
        self._dtype = torch.float16 if uses_half(device) else torch.float32
        self.model = model.to(device=device, dtype=self._dtype)
        self.preprocess = preprocess  # open_clip's per-PIL-image transform (the fallback)
        self.batch_preprocess = ArrayPreprocess.for_model(model)  # None: use `preprocess`
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.name = name
        digest = file_digest(pretrained) if checkpoint and pretrained else pretrained
        # Random weights differ at every load: each load is a vector space of its own.
        self.model_id = f"{name}@{digest or 'random-' + uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self._torch = torch
        self._lock = threading.Lock()
        with torch.no_grad():
            self.dim = int(self.model.encode_text(self.tokenizer(["a"]).to(device)).shape[-1])
        self.quantize = quantize
        self.space_check: dict | None = None  # int8: the verdict against fp32 (clip_int8)
        if quantize == "int8":
            self._quantize(named=bool(digest))
        elif quantize is not None:
            raise LensDBError(f"unknown quantisation '{quantize}'; known: int8")

    def _quantize(self, named: bool) -> None:
        """Swap in the int8 vision tower; its id: the fp32 one when the check says so."""
        from lensdb.models import clip_int8

        fp32_id = self.model_id
        check = clip_int8.cached_check(fp32_id) if named else None
        visual, layers = clip_int8.quantize_visual(self.model.visual)
        if check is None:
            images, what = clip_int8.sample_images()
            reference = self.embed_images(images)
            fp32_visual, self.model.visual = self.model.visual, visual
            check = clip_int8.space_check(reference, self.embed_images(images), what, layers)
            del fp32_visual
            if named:
                clip_int8.remember_check(fp32_id, check)
        else:
            self.model.visual = visual
        self.space_check = check
        self.model_id = clip_int8.int8_id(fp32_id, check)

    def pixels(self, images: list[np.ndarray]):
        """The model's input for RGB arrays: (B, 3, S, S) on its device, in its dtype."""
        torch = self._torch
        if self.batch_preprocess is not None:
            return self.batch_preprocess(images, self.device, self._dtype)
        from PIL import Image

        x = torch.stack([self.preprocess(Image.fromarray(img)) for img in images])
        return x.to(device=self.device, dtype=self._dtype)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        out = []
        with self._lock, torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                x = self.pixels(images[start : start + self.batch_size])
                out.append(self.model.encode_image(x).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(out))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            feats = self.model.encode_text(tokens).float().cpu().numpy()
        return l2_normalise(feats)


def load_open_clip(resolved: ResolvedModel, device: str = "cpu") -> OpenClipEmbedder:
    """`clip:ARCH` (random weights), `clip:ARCH:TAG` (hub) or `clip:ARCH:/path/ckpt.pt`,
    as resolved by `lensdb.models.resolve.resolve_embedder`."""
    return OpenClipEmbedder(f"clip:{resolved.name}", resolved.name, resolved.pretrained,
                            checkpoint=resolved.source == "file", device=device,
                            quantize=resolved.quantize)


def fetch_default() -> Path:
    emb = OpenClipEmbedder("clip-vit-b-32", DEFAULT_ARCH, DEFAULT_TAG)
    del emb
    return _hub_cache()


SPECS = (
    ModelSpec(
        name="clip-vit-b-32",
        kind="embedder",
        description="CLIP ViT-B/32 (laion2b_s34b_b79k) through open_clip, 512-d, text search",
        source="Hugging Face hub via open_clip",
        size_mb=605.0,
        load=lambda device="cpu", quantize=None: OpenClipEmbedder(
            "clip-vit-b-32", DEFAULT_ARCH, DEFAULT_TAG, device=device, quantize=quantize),
        devices=("cpu", "cuda", "mps"),
        quantize=("int8",),
        fetch=fetch_default,
        is_present=lambda: _hub_repo_cached(DEFAULT_HUB_REPO),  # no open_clip import
    ),
)

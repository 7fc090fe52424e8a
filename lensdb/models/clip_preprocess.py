"""open_clip's image preprocessing on batches of arrays in torch, not one PIL image at a time.

open_clip's inference transform for the usual config (`resize_mode` "shortest", a square
size) is: resize the shortest side to S with antialiased bicubic (PIL), centre-crop S x S,
scale to [0, 1], normalise with the model's mean and std. `ArrayPreprocess` does the same
on a (B, H, W, 3) uint8 batch, on the embedder's device:

- on the CPU, torch's uint8 antialiased resize (built to match PIL; 14-34x open_clip's
  per-PIL-image transform on a 32-frame batch of 640x272, `lensdb bench embed_cpu` on 2
  shared cores);
- elsewhere (CUDA/MPS have no uint8 resize), float passes horizontal then vertical with
  rounding to uint8 levels in between, as PIL does.

Either way the result is within 2 uint8 levels (0.03 in normalised units) of open_clip's own
preprocess on photos and video frames (`benchmarks/embed_cpu.py` measures it). A config it
does not reproduce (another resize mode, a non-square size) gets `None` from `for_model`, and
the embedder keeps open_clip's per-image transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArrayPreprocess:
    """Resize the shortest side, centre-crop, normalise: open_clip's eval transform."""

    size: int  # output side S (square)
    mean: tuple[float, float, float]  # per channel, on [0, 1] values
    std: tuple[float, float, float]
    interpolation: str = "bicubic"  # "bicubic" or "bilinear", antialiased as PIL

    @classmethod
    def for_model(cls, model: Any) -> ArrayPreprocess | None:
        """From an open_clip model's `visual.preprocess_cfg`; None when this path would not
        reproduce open_clip's transform."""
        cfg = dict(getattr(getattr(model, "visual", None), "preprocess_cfg", None) or {})
        size = cfg.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(size) != 2 or size[0] != size[1]:
                return None
            size = size[0]
        if cfg.get("resize_mode", "shortest") != "shortest" or cfg.get("mode", "RGB") != "RGB":
            return None
        interpolation = cfg.get("interpolation", "bicubic")
        if interpolation not in ("bicubic", "bilinear"):
            return None
        mean, std = tuple(cfg.get("mean", ())), tuple(cfg.get("std", ()))
        if len(mean) != 3 or len(std) != 3:
            return None
        return cls(int(size), mean, std, interpolation)  # type: ignore[arg-type]

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's Resize(S) output size: shortest side S, the other truncated."""
        s = self.size
        if width <= height:
            return int(s * height / width), s
        return s, int(s * width / height)

    def __call__(self, images: list[np.ndarray], device: Any = "cpu",
                 dtype: Any = None, uint8_resize: bool | None = None) -> Any:
        """(B, 3, S, S) tensor on `device` (in `dtype`, default float32) for RGB uint8
        (H, W, 3) arrays; images of one shape are resized together. `uint8_resize`: torch's
        uint8 resize (None: on the CPU), else the float passes."""
        import torch

        dtype = dtype or torch.float32
        if uint8_resize is None:
            uint8_resize = torch.device(device).type == "cpu"
        rgb = [as_rgb(img) for img in images]
        out = torch.empty((len(rgb), 3, self.size, self.size), dtype=dtype, device=device)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(rgb):
            groups.setdefault(img.shape, []).append(i)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1) * 255.0
        for (height, width, _), members in groups.items():
            batch = torch.from_numpy(np.stack([rgb[i] for i in members])).to(device)
            x = self._resize(batch.permute(0, 3, 1, 2), height, width, uint8_resize)
            nh, nw = x.shape[-2:]
            top, left = int(round((nh - self.size) / 2.0)), int(round((nw - self.size) / 2.0))
            x = x[:, :, top : top + self.size, left : left + self.size].float()
            index = torch.tensor(members, device=device)
            out[index] = ((x - mean) / std).to(dtype)
        return out

    def _resize(self, x: Any, height: int, width: int, uint8: bool) -> Any:
        """(B, 3, H, W) uint8 -> resized, uint8 values (uint8 tensor, or float ones)."""
        import torch.nn.functional as F

        nh, nw = self.resized_shape(height, width)
        if (nh, nw) == (height, width):
            return x
        if nh < self.size or nw < self.size:  # torchvision pads; never after this resize
            raise ValueError(f"cannot crop {self.size} from {nh}x{nw}")
        mode = self.interpolation
        if uint8:
            return F.interpolate(x, size=(nh, nw), mode=mode, antialias=True,
                                 align_corners=False)
        x = x.float()  # PIL: horizontal pass, uint8, vertical pass, uint8
        if nw != width:
            x = F.interpolate(x, size=(height, nw), mode=mode, antialias=True,
                              align_corners=False).round_().clamp_(0, 255)
        if nh != height:
            x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True,
                              align_corners=False).round_().clamp_(0, 255)
        return x


def as_rgb(img: np.ndarray) -> np.ndarray:
    """A C-contiguous (H, W, 3) uint8 array: grey repeated, alpha dropped (as PIL's RGB)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"images must be uint8, not {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3) RGB, not shape {a.shape}")
    return np.ascontiguousarray(a)

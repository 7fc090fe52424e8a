"""The count MLPs: embedding in, one non-negative count out. torch is imported lazily."""

from __future__ import annotations

from typing import Any

import numpy as np

from lensdb.errors import LensDBError

# Hidden layer widths per size, for any embedding dimension D.
HIDDEN: dict[str, tuple[int, ...]] = {
    "tiny": (128,),  # D -> 128 -> 1
    "small": (256, 128),  # D -> 256 -> 128 -> 1
    "medium": (512, 256),  # D -> 512 -> 256 -> 1
}


def build_mlp(dim: int, size: str = "tiny", dropout: float = 0.1) -> Any:
    """A torch `nn.Sequential`: (Linear, ReLU, Dropout) per hidden layer, Linear, Softplus.

    The softplus at the end keeps every predicted count positive; it is also the Poisson
    rate when the Poisson loss is used.
    """
    import torch.nn as nn

    if size not in HIDDEN:
        raise LensDBError(f"unknown MLP size '{size}'; sizes: {', '.join(HIDDEN)}")
    layers: list[nn.Module] = []
    width = dim
    for hidden in HIDDEN[size]:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers += [nn.Linear(width, 1), nn.Softplus()]
    return nn.Sequential(*layers)


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def weights_device(model: Any) -> Any:
    """The torch device a model's weights are on."""
    return next(model.parameters()).device


def predict_mlp(model: Any, vectors: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Predicted counts (float32, >= 0) for (n, D) vectors, in eval mode, without grads,
    on the device the model is on."""
    import torch

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(x) == 0:
        return np.zeros(0, np.float32)
    model.eval()
    device = weights_device(model)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(x[start : start + batch_size]).to(device)
            out.append(model(chunk).reshape(-1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


class MlpPredictor:
    """A loaded MLP with the metadata it was saved with; `.predict(vectors)` -> counts."""

    kind = "mlp"

    def __init__(self, model: Any, meta: dict):
        self.model = model
        self.meta = meta
        self.dim = int(meta["dim"])

    @classmethod
    def from_state(cls, state: dict, meta: dict, device: str = "cpu") -> MlpPredictor:
        """`device`: a torch device string, as `lensdb.device.resolve_device` gives."""
        model = build_mlp(int(meta["dim"]), meta["size"], float(meta.get("dropout", 0.0)))
        model.load_state_dict(state)
        model.to(device).eval()
        return cls(model, meta)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise LensDBError(
                f"count model for '{self.meta.get('class')}' takes {self.dim}-d vectors, "
                f"got shape {tuple(vectors.shape)}"
            )
        return predict_mlp(self.model, vectors)

"""Training loop of one count MLP: Adam, early stopping on validation MAE, best checkpoint.

Seeded (weights, dropout and batch order come from `seed`) and silent: progress goes to
an optional callback `progress(task, done, total)` that the CLI turns into a bar. It runs
on the device `lensdb.device.resolve_device` chooses (`auto`: a GPU when torch sees one);
the batch order is drawn on the CPU, so it is the same on every device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lensdb.counting.config import StageConfig
from lensdb.counting.mlp import build_mlp, predict_mlp
from lensdb.device import resolve_device

Progress = Callable[[str, int, int], None]  # (task description, done, total)


@dataclass
class FitResult:
    """The best checkpoint of one training run and how it got there."""

    model: Any  # torch nn.Module holding the best weights, in eval mode
    best_val_mae: float  # validation MAE of the kept checkpoint
    best_epoch: int  # 1-based epoch of the kept checkpoint (0: the initial weights)
    epochs_run: int  # epochs actually run before early stopping
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, val_mae
    device: str = "cpu"  # torch device it trained on (the model stays there)


def make_loss(name: str) -> Any:
    import torch.nn as nn

    if name == "mse":
        return nn.MSELoss()
    if name == "huber":
        return nn.HuberLoss(delta=1.0)
    if name == "poisson":
        return nn.PoissonNLLLoss(log_input=False, full=False, eps=1e-6)
    raise ValueError(f"unknown loss {name!r}")


def fit_mlp(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    stage: StageConfig,
    *,
    size: str = "tiny",
    dropout: float = 0.1,
    loss: str = "mse",
    seed: int = 0,
    init_state: dict | None = None,
    progress: Progress | None = None,
    task: str = "mlp",
    device: str = "cpu",
) -> FitResult:
    """Train an MLP from scratch (or from `init_state`) and keep the best validation epoch.

    `device`: auto | cpu | cuda[:N] | mps. On the CPU it runs on one thread: these MLPs
    are small, and several threads fighting over a busy machine's cores made each step
    ~20x slower (measured on 2 shared cores)."""
    import torch

    chosen = resolve_device(device)
    if chosen != "cpu":
        return _fit(x_train, y_train, x_val, y_val, stage, size, dropout, loss, seed,
                    init_state, progress, task, chosen)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(x_train, y_train, x_val, y_val, stage, size, dropout, loss, seed,
                    init_state, progress, task, chosen)
    finally:
        torch.set_num_threads(threads)


def _fit(x_train, y_train, x_val, y_val, stage, size, dropout, loss, seed, init_state,
         progress, task, device) -> FitResult:
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # CPU: the same order on every device
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).to(device)
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.float32)).to(device)
    xv = np.ascontiguousarray(x_val, dtype=np.float32)
    yv = np.asarray(y_val, dtype=np.float32)

    n = len(xt)
    model = build_mlp(xt.shape[1], size, dropout)
    if init_state is not None:
        model.load_state_dict(init_state)
    else:
        _start_at_mean(model, float(yt.mean()) if n else 0.0)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    criterion = make_loss(loss)

    best_mae = _val_mae(model, xv, yv)
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, since_best, epoch = 0, 0, 0
    history: list[dict[str, float]] = []
    for epoch in range(1, stage.max_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        total, seen = 0.0, 0
        for start in range(0, n, stage.batch_size):
            idx = order[start : start + stage.batch_size].to(device)
            optimiser.zero_grad()
            out = model(xt[idx]).reshape(-1)
            batch_loss = criterion(out, yt[idx])
            batch_loss.backward()
            optimiser.step()
            total += batch_loss.item() * len(idx)
            seen += len(idx)
        val_mae = _val_mae(model, xv, yv)
        history.append({"epoch": epoch, "loss": total / max(seen, 1), "val_mae": val_mae})
        if val_mae < best_mae - 1e-6:
            best_mae, best_epoch, since_best = val_mae, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        if progress:
            progress(task, epoch, stage.max_epochs)
        if since_best >= stage.patience:
            break
    if progress:
        progress(task, stage.max_epochs, stage.max_epochs)
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, float(best_mae), best_epoch, epoch, history, device)


def _start_at_mean(model: Any, mean: float) -> None:
    """Set the output bias so the untrained MLP predicts about the training mean."""
    import torch

    last = [m for m in model if isinstance(m, torch.nn.Linear)][-1]
    target = max(mean, 1e-3)
    with torch.no_grad():  # inverse softplus; the output weights start small
        last.bias.fill_(target + float(np.log(-np.expm1(-target))))
        last.weight.mul_(0.1)


def _val_mae(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) == 0:
        return float("inf")
    return float(np.mean(np.abs(predict_mlp(model, x) - y)))

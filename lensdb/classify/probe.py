"""Multinomial logistic regression on frozen embeddings, in torch (no scikit-learn), with the
remedies for class imbalance: class weights n_max / n_c, oversampling of rare classes to the
size of the largest, and the focal loss -(1 - p_t)^gamma log p_t.

The objective is sklearn's (mean loss + ||W||^2 / (2 C n)) on standardised features, solved
full-batch with L-BFGS; C is picked on a stratified validation split (accuracy, or balanced
accuracy when a remedy is on: the remedies exist for the rare classes), then the model is
refitted on all the data. Weights are returned in the raw feature space (`Linear`), so they
can be blended with a zero-shot text head (WiSE-FT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensdb.errors import LensDBError

DEFAULT_CS = (0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ProbeConfig:
    """How to fit the probe."""

    cs: tuple[float, ...] = DEFAULT_CS  # candidate inverse regularisation strengths
    class_weights: bool = False  # weight each sample by n_max / n_c of its class
    oversample: bool = False  # repeat rare classes' samples up to the largest class's size
    loss: str = "ce"  # "ce" (cross-entropy) or "focal"
    gamma: float = 2.0  # focal loss exponent
    val_fraction: float = 0.2  # share of each class held out to pick C
    max_iter: int = 100  # L-BFGS iterations per fit
    seed: int = 0  # split and oversampling seed

    def validate(self) -> None:
        if self.loss not in ("ce", "focal"):
            raise LensDBError(f"unknown loss '{self.loss}'; use ce or focal")
        if not self.cs or min(self.cs) <= 0:
            raise LensDBError("the C candidates must be positive numbers")
        if not 0 < self.val_fraction < 1:
            raise LensDBError("val_fraction must be between 0 and 1")

    @property
    def remedied(self) -> bool:
        return self.class_weights or self.oversample or self.loss == "focal"


@dataclass
class Linear:
    """logits = x @ W.T + b on raw (unit-length) embeddings."""

    W: np.ndarray  # (k, d) float32
    b: np.ndarray  # (k,) float32

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32) @ self.W.T + self.b

    def proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def class_weights(y: np.ndarray, k: int) -> np.ndarray:
    """n_max / n_c per class (1 for a class with no samples)."""
    n = np.bincount(y, minlength=k).astype(np.float64)
    return np.where(n > 0, n.max() / np.maximum(n, 1), 1.0)


def oversample(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices that repeat every class's samples (at random) up to the largest class."""
    n_max = np.bincount(y, minlength=k).max()
    idx = []
    for c in range(k):
        own = np.flatnonzero(y == c)
        if len(own):
            idx.append(own)
            if len(own) < n_max:
                idx.append(rng.choice(own, n_max - len(own), replace=True))
    return np.concatenate(idx)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: `fraction` of each class held out (at least one of a
    class with two or more samples)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        own = rng.permutation(np.flatnonzero(y == c))
        n_val = int(round(fraction * len(own))) if len(own) >= 2 else 0
        n_val = max(n_val, 1) if len(own) >= 2 else 0
        val.append(own[:n_val])
        train.append(own[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def fit_linear(x: np.ndarray, y: np.ndarray, k: int, C: float, config: ProbeConfig) -> Linear:
    """One fit at one C; see the module docstring."""
    import torch

    rng = np.random.default_rng(config.seed)
    x = np.asarray(x, np.float32)
    if config.oversample:
        idx = oversample(y, k, rng)
        x, y = x[idx], y[idx]
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = torch.from_numpy((x - mu) / sd)
    yt = torch.from_numpy(y.astype(np.int64))
    w_class = torch.tensor(class_weights(y, k) if config.class_weights else np.ones(k),
                           dtype=torch.float32)
    g = torch.Generator().manual_seed(config.seed)
    W = (0.01 * torch.randn(k, x.shape[1], generator=g)).requires_grad_()
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=config.max_iter, tolerance_grad=1e-5,
                            tolerance_change=1e-7, line_search_fn="strong_wolfe")
    n = len(y)

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(xs @ W.T + b, dim=1).gather(1, yt[:, None])[:, 0]
        per = -logp if config.loss == "ce" else -((1 - logp.exp()) ** config.gamma) * logp
        sw = w_class[yt]
        loss = (sw * per).sum() / sw.sum() + (W * W).sum() / (2 * C * n)
        loss.backward()
        return loss

    opt.step(closure)
    Ws = W.detach().numpy() / sd  # back to the raw feature space
    return Linear(Ws.astype(np.float32), (b.detach().numpy() - Ws @ mu).astype(np.float32))


def score(pred: np.ndarray, y: np.ndarray, k: int, balanced: bool) -> float:
    if not balanced:
        return float((pred == y).mean())
    recalls = [float((pred[y == c] == c).mean()) for c in range(k) if (y == c).any()]
    return float(np.mean(recalls))


@dataclass
class ProbeResult:
    model: Linear  # refitted on all the data at the chosen C
    C: float  # the chosen C
    val_scores: dict[float, float]  # C -> validation score
    val_metric: str  # "accuracy" or "balanced accuracy"
    train_idx: np.ndarray  # the split used to pick C
    val_idx: np.ndarray


def fit_probe(x: np.ndarray, y: np.ndarray, k: int, config: ProbeConfig) -> ProbeResult:
    """Pick C on a validation split, refit on everything."""
    config.validate()
    if len(np.unique(y)) < 2:
        raise LensDBError("the training data has only one class; a classifier needs two")
    tr, va = stratified_split(y, config.val_fraction, config.seed)
    scores = {}
    for C in config.cs:
        model = fit_linear(x[tr], y[tr], k, C, config)
        scores[C] = score(model.logits(x[va]).argmax(1), y[va], k, config.remedied)
    best = max(config.cs, key=lambda c: (scores[c], -abs(np.log10(c))))
    return ProbeResult(fit_linear(x, y, k, best, config), best, scores,
                       "balanced accuracy" if config.remedied else "accuracy", tr, va)


def wise_ft(zero_shot: Linear, tuned: Linear, alpha: float) -> Linear:
    """WiSE-FT: (1 - alpha) * zero-shot + alpha * fine-tuned weights."""
    return Linear(((1 - alpha) * zero_shot.W + alpha * tuned.W).astype(np.float32),
                  ((1 - alpha) * zero_shot.b + alpha * tuned.b).astype(np.float32))

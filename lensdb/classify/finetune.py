"""Fine-tuning an open_clip embedder for a condition set: the vision tower (`vision`), or
both towers (`full`).

`vision`: the head starts as the zero-shot classifier (100 x the values' prompt-ensemble text
embeddings) and is a free parameter from then on; logits = 100-scaled cosine of the tuned
image embedding with the head rows plus a bias. `full` (the values' prompts given): the head
is not a parameter but the prompt ensemble recomputed from the text tower at every step
(normalise each prompt's embedding, average, normalise; x 100), so the text tower learns
with the image tower; only the bias is a head parameter. One loop does both.

AdamW (decoupled weight decay), a linear warm-up then cosine schedule per step, early
stopping on the validation score (accuracy, or balanced accuracy with a remedy), the best
epoch's weights kept. The imbalance remedies are the probe's: class weights n_max/n_c,
oversampling (per epoch, with replacement), focal loss. Batch norm layers (a ResNet tower)
keep their statistics. WiSE-FT: the tuned weights (tower and head; `full`: both towers, the
head then recomputed from the blended text tower) are blended with their zero-shot starting
point, (1 - alpha) * zero-shot + alpha * tuned, alpha given or picked on validation.

What is stored: the head (a `Linear` on unit-length image embeddings) and the tuned vision
tower's state dict; `apply_tower` puts the tower into a freshly loaded embedder of the same
id. With `full` the head rows are the tuned text tower's prompt ensembles, so classifying
needs no text tower (it is not stored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lensdb.classify.probe import Linear, ProbeConfig, class_weights, oversample, score
from lensdb.classify.zeroshot import LOGIT_SCALE
from lensdb.errors import LensDBError


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimisation of the tuned tower(s)."""

    epochs: int = 10  # at most this many passes over the training crops
    lr: float = 1e-5  # peak learning rate of the tower(s) (pretrained CLIP; a model trained from
    # scratch, like the random-weight tiny one of the tests, needs ~3e-3)
    head_lr: float = 1e-3  # peak learning rate of the head (full: its bias only)
    weight_decay: float = 0.1  # AdamW decoupled weight decay
    batch_size: int = 32  # crops per step
    warmup: float = 0.1  # share of the steps spent warming the learning rate up
    patience: int = 5  # stop after this many epochs without a better validation score


def tunable(embedder, what: str = "the vision tower"):
    model = getattr(embedder, "model", None)
    if model is None or not hasattr(model, "visual") or not embedder.has_text:
        raise LensDBError(f"fine-tuning {what} needs an open_clip embedder; "
                          f"'{embedder.name}' gets a linear probe only (--method linear-probe)")
    return model


def preprocess(embedder, images: list[np.ndarray]):
    import torch
    from PIL import Image

    return torch.stack([embedder.preprocess(Image.fromarray(img)) for img in images])


def _blend(zs: dict, ft: dict, alpha: float) -> dict:
    return {k: (1 - alpha) * zs[k] + alpha * ft[k] if ft[k].is_floating_point() else ft[k]
            for k in ft}


def finetune_tower(embedder, head: np.ndarray, x_train, y_train: np.ndarray, x_val,
                   y_val: np.ndarray, probe: ProbeConfig, config: FinetuneConfig,
                   wise_ft: float | str | None = None,
                   prompts: list[list[str]] | None = None) -> tuple[Linear, dict, dict]:
    """(head, vision tower state dict, history) after fine-tuning; x_* are preprocessed
    tensors. `prompts` (each value's prompt ensemble) is the flag for both towers: given,
    the text tower trains too and the head is recomputed from it (`full`); else the vision
    tower trains under a free head starting at `head` (`vision`)."""
    import torch
    import torch.nn.functional as F

    model = tunable(embedder, "both towers" if prompts else "the vision tower")
    visual = model.visual
    tuned = model if prompts else visual  # the module whose weights train (and are blended)
    k = head.shape[0]
    torch.manual_seed(probe.seed)
    rng = np.random.default_rng(probe.seed)
    zs_state = {n: t.detach().clone() for n, t in tuned.state_dict().items()}
    zs_head = torch.tensor(LOGIT_SCALE * head, dtype=torch.float32)
    b = torch.nn.Parameter(torch.zeros(k))
    if prompts:
        tokens = embedder.tokenizer([p for ps in prompts for p in ps])
        sizes = [len(ps) for ps in prompts]
        params = [p for n, p in model.named_parameters() if n not in _SCALES]
        head_params = [b]

        def head_w():  # the prompt ensembles of the text tower as it is now
            emb = F.normalize(model.encode_text(tokens), dim=-1)
            return LOGIT_SCALE * torch.stack([F.normalize(e.mean(0), dim=0)
                                              for e in emb.split(sizes)])
    else:
        W = torch.nn.Parameter(zs_head.clone())
        params, head_params = list(visual.parameters()), [W, b]

        def head_w():
            return W
    w_class = torch.tensor(class_weights(y_train, k) if probe.class_weights else np.ones(k),
                           dtype=torch.float32)
    opt = torch.optim.AdamW([{"params": params, "lr": config.lr},
                             {"params": head_params, "lr": config.head_lr,
                              "weight_decay": 0.0}],
                            weight_decay=config.weight_decay)
    per_epoch = math.ceil((len(y_train) if not probe.oversample else
                           k * np.bincount(y_train, minlength=k).max()) / config.batch_size)
    total, warm = config.epochs * per_epoch, max(1, int(config.warmup * config.epochs
                                                        * per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) /
                                                                  max(1, total - warm))))

    def logits(x, w, bias):
        feats = F.normalize(model.encode_image(x), dim=-1)
        return feats @ w.T + bias

    def evaluate(w, bias) -> float:
        visual.eval()
        with torch.no_grad():
            pred = torch.cat([logits(x_val[i:i + 128], w, bias).argmax(1)
                              for i in range(0, len(x_val), 128)]).numpy()
        return score(pred, y_val, k, probe.remedied)

    def current_head():
        tuned.eval()
        with torch.no_grad():
            return head_w().detach().clone()

    best = (evaluate(zs_head, b.detach()), -1, zs_state, zs_head.clone(),
            b.detach().clone())
    history: dict[str, Any] = {"val": [best[0]], "loss": []}  # + best_epoch, wise_ft_alpha
    yt = torch.from_numpy(y_train.astype(np.int64))
    for epoch in range(config.epochs):
        _train_mode(tuned)
        order = oversample(y_train, k, rng) if probe.oversample else np.arange(len(y_train))
        order = rng.permutation(order)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = torch.from_numpy(order[i:i + config.batch_size])
            logp = torch.log_softmax(logits(x_train[idx], head_w(), b), 1).gather(
                1, yt[idx][:, None])[:, 0]
            per = -logp if probe.loss == "ce" else -((1 - logp.exp()) ** probe.gamma) * logp
            sw = w_class[yt[idx]]
            loss = (sw * per).sum() / sw.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params + head_params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        w_now = current_head()
        val = evaluate(w_now, b.detach())
        history["val"].append(val)
        history["loss"].append(float(np.mean(losses)))
        if val > best[0]:
            best = (val, epoch, {n: t.detach().clone() for n, t in tuned.state_dict().items()},
                    w_now, b.detach().clone())
        elif epoch - best[1] >= config.patience:
            break
    _, history["best_epoch"], state, W_ft, b_ft = best

    def blended(a: float):
        """(head, bias) at WiSE-FT alpha `a`, the blended weights loaded."""
        tuned.load_state_dict(_blend(zs_state, state, a))
        return (current_head() if prompts else (1 - a) * zs_head + a * W_ft), a * b_ft

    alpha = None
    if wise_ft is not None:
        alpha = float(wise_ft) if wise_ft != "auto" else max(
            (0.0, 0.25, 0.5, 0.75, 1.0), key=lambda a: (evaluate(*blended(a)), a))
        W_ft, b_ft = blended(alpha)
    else:
        tuned.load_state_dict(state)
    history["wise_ft_alpha"] = alpha
    tuned.eval()
    tower = {n: t.detach().clone() for n, t in visual.state_dict().items()}
    return Linear(W_ft.numpy().astype(np.float32), b_ft.numpy().astype(np.float32)), \
        tower, history


_SCALES = ("logit_scale", "logit_bias")  # CLIP's temperature: the head uses LOGIT_SCALE


def _train_mode(module) -> None:
    """Train mode with batch norm frozen: its statistics stay those the tower came with (a
    small batch's own would leak across the batch and differ from inference)."""
    import torch

    module.train()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def apply_tower(embedder, tower: dict) -> None:
    """Put a tuned vision tower into an embedder (of the id the classifier was trained on)."""
    model = tunable(embedder)
    model.visual.load_state_dict(tower)
    model.visual.eval()

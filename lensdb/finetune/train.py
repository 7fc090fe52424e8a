"""The fine-tuning loop: `finetune(config)` trains, evaluates, and leaves a run folder.

AdamW, linear warmup then cosine decay, gradient clipping (unscaled first under AMP),
logit scale clamped at ln 100 after every step (open_clip's recipe), early stopping on the
validation score, seeded. The run folder (`lensdb.runs.RunFolder`) holds config.json,
steps.csv, epochs.csv, summary.json, `best.pt` and `final.pt` (each loadable as
`clip:ARCH:RUN/best.pt`) and `state.pt` (for `--resume`); every file is written atomically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.device import resolve_device
from lensdb.errors import LensDBError
from lensdb.finetune.config import FinetuneConfig, check_config
from lensdb.finetune.data import ImageBank, contrastive_epoch, kmeans, pair_epoch
from lensdb.finetune.evaluate import embed, evaluate_model, load_data
from lensdb.finetune.metrics import fit_platt, pick_threshold, retrieval_score
from lensdb.finetune.model import ClipModel, freeze, load_trainable, save_checkpoint
from lensdb.finetune.pairs import check_disjoint
from lensdb.runs import RunFolder, atomic_torch_save

Progress = Callable[[dict[str, Any]], None]
STEP_FIELDS = ("epoch", "step", "loss", "lr", "logit_scale", "temperature", "w_mean",
               "w_below_half", "wn_below_half")


def _param_groups(cm: ClipModel, head, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[Any] = []
    no_decay: list[Any] = []
    named = list(cm.model.named_parameters()) + (list(head.named_parameters()) if head else [])
    for name, p in named:
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "scale" in name
        (no_decay if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate: linear warmup, then cosine down to 0."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _score(c: FinetuneConfig, metrics: dict[str, float]) -> float:
    if c.objective.name == "bce" and not math.isnan(metrics.get("match_roc_auc", math.nan)):
        return metrics["match_roc_auc"]
    return retrieval_score(metrics)


class _Run:
    """The pieces of one run, shared by the steps below."""

    def __init__(self, c: FinetuneConfig, run: RunFolder, progress: Progress | None):
        import torch

        self.c, self.run, self.progress = c, run, progress or (lambda e: None)
        self.dev = resolve_device(c.device)
        self.train = load_data(c.train, c.image_root, c.strict,
                               ensure_mismatches=c.objective.name == "bce", seed=c.seed)
        self.val = load_data(c.val, c.image_root, c.strict, ensure_mismatches=True,
                             seed=c.seed)
        self.test = (load_data(c.test, c.image_root, c.strict, ensure_mismatches=True,
                               seed=c.seed) if c.test else None)
        named = [("train", self.train), ("val", self.val)] + (
            [("test", self.test)] if self.test else [])
        for i, (a, da) in enumerate(named):
            for b, db in named[i + 1:]:
                check_disjoint(Path(getattr(c, a)).name, da.images, Path(getattr(c, b)).name,
                               db.images)
        torch.manual_seed(c.seed)
        self.cm = load_trainable(c.embedder, f"objective '{c.objective.name}'")
        self.cm.meta = {**self.cm.meta, "base": self.cm.meta.get("base", self.cm.spec)}
        self.cm.model.to(self.dev)
        if c.objective.name == "bce" and self.cm.head is None:
            from lensdb.finetune.losses import MatchHead

            self.cm.head = MatchHead()
        if self.cm.head is not None:
            self.cm.head.to(self.dev)
        self.trainable = freeze(self.cm, c.freeze)
        self.banks = {name: ImageBank(d.images, self.cm.preprocess) for name, d in named}
        self.rng = np.random.default_rng(c.seed)
        self.amp = c.amp and self.dev == "cuda"

    def evaluate(self, which: str, threshold: float | None = None):
        data = {"val": self.val, "test": self.test}[which]
        assert data is not None
        return evaluate_model(self.cm, data, self.banks[which], self.dev, threshold)

    def clusters(self) -> np.ndarray | None:
        if not self.c.topical_batches:
            return None
        img, _ = embed(self.cm, self.train, self.banks["train"], self.dev)
        return kmeans(img, self.c.topical_batches, self.c.seed)


def _checkpoint_meta(r: _Run, val_scores) -> dict[str, Any]:
    cos, labels = val_scores.cos, val_scores.labels
    meta: dict[str, Any] = {"objective": r.c.objective.name}
    if (labels == 0).any() and (labels == 1).any():
        meta["threshold"] = pick_threshold(cos, labels)
        meta["calibration"] = dict(zip(("a", "b"), fit_platt(cos, labels)))
    return meta


def finetune(config: FinetuneConfig, progress: Progress | None = None,
             resume: str | Path | None = None) -> dict[str, Any]:
    """Train, keep the best epoch by the validation score, evaluate pretrained vs
    fine-tuned (on val, and on test with val's threshold), return the summary."""
    import torch

    if resume is not None:
        run = RunFolder.open(Path(resume))
        config = FinetuneConfig.from_dict(run.config())
        if not (run.root / "state.pt").exists():
            raise LensDBError(f"{run.root} has no state.pt to resume from")
    check_config(config)
    c = config
    out = Path(resume) if resume is not None else Path(
        c.out or f"finetune-runs/{time.strftime('%Y%m%d-%H%M%S')}-{c.objective.name}")
    if resume is None:
        if (out / "config.json").exists():
            raise LensDBError(f"{out} already holds a run; pick another --out, or --resume it")
        def absolute(p: str | None) -> str | None:
            return str(Path(p).resolve()) if p else None

        c = replace(c, out=str(out), train=str(absolute(c.train)), val=str(absolute(c.val)),
                    test=absolute(c.test), image_root=absolute(c.image_root))  # resumable
    r = _Run(c, RunFolder(out), progress)  # everything checked before anything is written
    run = RunFolder.create(out, c.to_dict()) if resume is None else RunFolder.open(out)
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=False) \
        if resume is not None else None
    if state is not None and state.get("done") and (out / "summary.json").exists():
        raise LensDBError(f"the run in {out} finished already; see its summary.json")

    opt = torch.optim.AdamW(_param_groups(r.cm, r.cm.head, c.weight_decay), lr=c.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=r.amp)
    n_batches = max(1, len(pair_epoch(r.train, c.batch_size, np.random.default_rng(0)))
                    if c.objective.name == "bce" else
                    len(contrastive_epoch(r.train, c.batch_size, np.random.default_rng(0))))
    total, warmup = n_batches * c.epochs, int(round(c.warmup_epochs * n_batches))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, warmup))

    if state is None:
        base_val, base_scores = r.evaluate("val")
        base_test = (r.evaluate("test", base_val.get("match_threshold"))[0]
                     if r.test else None)
        best_score, best_epoch, bad, start, step = _score(c, base_val), 0, 0, 1, 0
        save_checkpoint(r.cm, out / "best.pt", _checkpoint_meta(r, base_scores))
    else:
        r.cm.model.load_state_dict(state["model"])
        if r.cm.head is not None and state.get("head"):
            r.cm.head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        r.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        base_val, base_test = state["base_val"], state["base_test"]
        best_score, best_epoch, bad = state["best_score"], state["best_epoch"], state["bad"]
        start, step = state["epoch"] + 1, state["step"]
        run.truncate_logs(state["epoch"])
    clusters = r.clusters()
    r.progress({"kind": "start", "epochs": c.epochs, "steps_per_epoch": n_batches,
                "device": r.dev, "out": str(out), "start_epoch": start})
    seconds, images_seen = 0.0, 0
    stopped_early, epoch = bool(state and state.get("stopped_early")), start - 1
    if state is not None and state.get("done"):
        start = c.epochs + 1  # killed after the last epoch: only the summary is missing
    for epoch in range(start, c.epochs + 1):
        t0 = time.perf_counter()
        losses, wstats = _train_epoch(r, opt, sched, scaler, clusters, epoch, step)
        step += len(losses)
        seconds += time.perf_counter() - t0
        images_seen += sum(n for _, n in losses)
        val, scores = r.evaluate("val")
        score = _score(c, val)
        improved = score > best_score
        if improved:
            best_score, best_epoch, bad = score, epoch, 0
            save_checkpoint(r.cm, out / "best.pt", _checkpoint_meta(r, scores))
        else:
            bad += 1
        row = {"epoch": epoch, "train_loss": float(np.mean([loss for loss, _ in losses]))
               if losses else math.nan, "lr": sched.get_last_lr()[0],
               "logit_scale": float(r.cm.model.logit_scale.detach().exp()), "val_score": score,
               **{f"val_{k}": val.get(k, math.nan) for k in
                  ("text_to_image_R@1", "image_to_text_R@1", "match_roc_auc")},
               **{k: float(np.mean(v)) if v else "" for k, v in wstats.items()},
               "best": improved, "seconds": time.perf_counter() - t0}
        run.log_epoch(row)
        stopped_early = bool(c.patience and bad >= c.patience and epoch < c.epochs)
        atomic_torch_save({
            "model": r.cm.model.state_dict(), "head": r.cm.head.state_dict() if r.cm.head
            else None, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "rng": r.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "base_val": base_val, "base_test": base_test,
            "best_score": best_score, "best_epoch": best_epoch, "bad": bad, "epoch": epoch,
            "step": step, "done": stopped_early or epoch == c.epochs,
            "stopped_early": stopped_early}, out / "state.pt")
        r.progress({"kind": "epoch", **row})
        if stopped_early:
            break
    save_checkpoint(r.cm, out / "final.pt", _checkpoint_meta(r, r.evaluate("val")[1]))
    return _finish(r, run, base_val, base_test, best_epoch, epoch, stopped_early,
                   images_seen / seconds if seconds else None)


def _train_epoch(r: _Run, opt, sched, scaler, clusters, epoch: int, step: int):
    import torch
    import torch.nn.functional as F

    from lensdb.finetune.losses import batch_loss

    c, model = r.c, r.cm.model
    bce = c.objective.name == "bce"
    batches = (pair_epoch(r.train, c.batch_size, r.rng) if bce else
               contrastive_epoch(r.train, c.batch_size, r.rng, clusters))
    model.train()
    if c.freeze == "vision":
        model.visual.eval()  # a frozen tower keeps its batch-norm statistics too
    losses: list[tuple[float, int]] = []
    wstats: dict[str, list[float]] = {"w_mean": [], "w_below_half": [], "wn_below_half": []}
    params = [p for g in opt.param_groups for p in g["params"]]
    for imgs, rows in batches:
        x = r.banks["train"].get(imgs).to(r.dev)
        tok = r.cm.tokenizer([r.train.texts[i] for i in rows]).to(r.dev)
        labels = torch.as_tensor(r.train.labels[rows], device=r.dev)
        with torch.autocast("cuda", dtype=torch.float16, enabled=r.amp):
            img = F.normalize(model.encode_image(x).float(), dim=-1)
            txt = F.normalize(model.encode_text(tok).float(), dim=-1)
            loss, stats = batch_loss(c.objective, img, txt, model.logit_scale.exp(), labels,
                                     r.cm.head)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, c.clip_grad)
        scaler.step(opt)
        scaler.update()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise LensDBError(f"the loss became {value} at step {step}: lower --lr")
        losses.append((value, len(rows)))
        for k, v in stats.items():
            wstats[k].append(v)
        scale = float(model.logit_scale.detach().exp())
        row = {"epoch": epoch, "step": step, "loss": value, "lr": sched.get_last_lr()[0],
               "logit_scale": scale, "temperature": 1 / scale,
               **{k: stats.get(k, "") for k in STEP_FIELDS[6:]}}
        r.run.log_step(row)
        r.progress({"kind": "step", **row})
    return losses, {k: v for k, v in wstats.items()}


def _finish(r: _Run, run: RunFolder, base_val, base_test, best_epoch: int, last_epoch: int,
            stopped_early: bool, images_per_s: float | None) -> dict[str, Any]:
    """Load the best weights back, evaluate them, write summary.json and the registry."""
    import torch

    from lensdb.finetune.model import checkpoint_meta

    out = run.root
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    r.cm.model.load_state_dict(best["state_dict"])
    r.cm.meta = checkpoint_meta(out / "best.pt") or {}
    val, _ = r.evaluate("val", r.cm.threshold)
    test = r.evaluate("test", r.cm.threshold)[0] if r.test else None
    arch = r.cm.arch
    summary: dict[str, Any] = {
        "objective": r.c.objective.name, "embedder": r.c.embedder, "device": r.dev,
        "best_epoch": best_epoch, "epochs_run": last_epoch, "stopped_early": stopped_early,
        "train_images": len(r.train.images), "val_images": len(r.val.images),
        "skipped_images": {"train": r.train.skipped, "val": r.val.skipped},
        "generated_mismatches": {"train": r.train.generated_mismatches,
                                 "val": r.val.generated_mismatches},
        "trainable_parameters": r.trainable, "train_images_per_s": images_per_s,
        "best": f"clip:{arch}:{(out / 'best.pt').resolve()}",
        "final": f"clip:{arch}:{(out / 'final.pt').resolve()}",
        "val": {"pretrained": base_val, "finetuned": val},
        "test": {"pretrained": base_test, "finetuned": test} if test is not None else None,
    }
    run.write_json("summary.json", summary)
    registry = Path(r.c.registry) if r.c.registry else out.parent / "runs.csv"
    head = summary["test"] or summary["val"]
    run.register(registry, {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "objective": r.c.objective.name,
        "embedder": r.c.embedder, "epochs": last_epoch, "best_epoch": best_epoch,
        "split": "test" if summary["test"] else "val",
        **{f"{w}_{k}": head[w].get(k, "") for w in ("pretrained", "finetuned")
           for k in ("text_to_image_R@1", "image_to_text_R@1", "match_roc_auc")},
        "best": summary["best"]})
    return summary

"""The fine-tuning loop on the tiny open_clip model from random init: it learns on held-out
images, leaves a complete run folder, resumes, and refuses bad input without writing."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from lensdb.errors import LensDBError
from lensdb.finetune.config import FinetuneConfig
from lensdb.finetune.losses import Objective
from lensdb.finetune.train import finetune

FAST = dict(embedder="clip:lensdb-tiny", lr=2e-3, batch_size=16, warmup_epochs=0.5,
            device="cpu", patience=0)


def config(data, out, **kw) -> FinetuneConfig:
    return FinetuneConfig(train=str(data["train"]), val=str(data["val"]), out=str(out),
                          **{**FAST, **kw})


@pytest.mark.slow
def test_training_beats_untrained_on_held_out_images(shapes, tmp_path):
    c = config(shapes, tmp_path / "run", test=str(shapes["test"]), epochs=8, batch_size=24)
    s = finetune(c)
    before, after = s["test"]["pretrained"], s["test"]["finetuned"]
    # 36 held-out images, one per (colour, shape, count): chance R@1 is 1/36
    assert before["text_to_image_R@1"] < 0.1
    assert after["text_to_image_R@1"] >= before["text_to_image_R@1"] + 0.15
    assert after["text_to_image_R@5"] >= before["text_to_image_R@5"] + 0.3
    assert after["image_to_text_mAP@10"] > before["image_to_text_mAP@10"]
    assert after["match_roc_auc"] > 0.75
    assert s["best_epoch"] > 0


def test_run_folder_checkpoints_and_registry(tiny_small, tmp_path):
    c = config(tiny_small, tmp_path / "runs" / "a", epochs=2, topical_batches=2,
               objective=Objective("sanw-debias", alpha=0.2, delta=0.3, lam=1.0))
    s = finetune(c)
    out = tmp_path / "runs" / "a"
    for name in ("config.json", "steps.csv", "epochs.csv", "summary.json", "best.pt",
                 "final.pt", "state.pt"):
        assert (out / name).exists(), name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["objective"]["name"] == "sanw-debias" and cfg["topical_batches"] == 2
    steps = list(csv.DictReader(open(out / "steps.csv")))
    assert len(steps) == 2 * 3 and all(0 < float(r["w_mean"]) < 1 for r in steps)
    assert all(float(r["temperature"]) > 0.01 for r in steps)
    epochs = list(csv.DictReader(open(out / "epochs.csv")))
    assert [r["epoch"] for r in epochs] == ["1", "2"]
    assert set(s["val"]["pretrained"]) == set(s["val"]["finetuned"])
    assert "text_to_image_R@1" in s["val"]["finetuned"] and "match_f1" in s["val"]["finetuned"]
    registry = list(csv.DictReader(open(tmp_path / "runs" / "runs.csv")))
    assert registry[-1]["objective"] == "sanw-debias" and registry[-1]["run"] == str(out)
    # best.pt serves as an embedder wherever one is named
    from lensdb.models.registry import get_embedder

    emb = get_embedder(s["best"])
    v = emb.embed_text(["two red circles"])
    assert v.shape == (1, 64) and np.isclose(np.linalg.norm(v), 1.0)
    with pytest.raises(LensDBError, match="already holds a run"):
        finetune(c)
    with pytest.raises(LensDBError, match="finished already"):
        finetune(c, resume=out)


def test_resume_after_a_crash(tiny_small, tmp_path):
    out = tmp_path / "run"
    c = config(tiny_small, out, epochs=3)

    def crash(event):
        if event["kind"] == "epoch" and event["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(c, progress=crash)
    assert (out / "state.pt").exists() and not (out / "summary.json").exists()
    s = finetune(c, resume=out)
    epochs = [r["epoch"] for r in csv.DictReader(open(out / "epochs.csv"))]
    assert epochs == ["1", "2", "3"] and s["epochs_run"] == 3
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "steps.csv"))]
    assert steps == list(range(1, 10))


def test_bce_learns_a_match_head(tiny_small, tmp_path):
    s = finetune(config(tiny_small, tmp_path / "bce", epochs=1, objective=Objective("bce")))
    assert s["generated_mismatches"]["train"] == 96  # the file had matches only
    from lensdb.finetune.match import match
    from lensdb.finetune.model import checkpoint_meta

    meta = checkpoint_meta(tmp_path / "bce" / "best.pt")
    assert meta["arch"] == "lensdb-tiny" and "threshold" in meta
    img = next((tiny_small["val"].parent).glob("*.png"))
    results = match(img, ["one red circle", "three blue squares"], embedder=s["best"])
    assert all(0 <= r.probability <= 1 and r.match is not None for r in results)


def _nothing_written(tmp_path):
    assert not (tmp_path / "out").exists()


def test_bad_input_is_refused_before_writing(tiny_small, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(LensDBError, match="'mobilenet-v2' has no text side.*infonce"):
        finetune(config(tiny_small, out, embedder="mobilenet-v2"))
    with pytest.raises(LensDBError, match="has no text side.*sanw-bandpass"):
        finetune(config(tiny_small, out, embedder="mobilenet-v2",
                        objective=Objective("sanw-bandpass")))
    same = replace(config(tiny_small, out), val=str(tiny_small["train"]))
    with pytest.raises(LensDBError, match="in both captions.csv and captions.csv"):
        finetune(same)
    with pytest.raises(LensDBError, match="--batch-size|batch_size"):
        finetune(config(tiny_small, out, batch_size=1))
    with pytest.raises(LensDBError, match="objective must be one of"):
        finetune(config(tiny_small, out, objective=Objective("triplet")))
    _nothing_written(tmp_path)


def test_unreadable_images_skipped_or_refused(tiny_small, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(tiny_small["train"].parent, data)
    (data / "train-0000.png").write_bytes(b"garbage")
    train = {"train": data / "captions.csv", "val": tiny_small["val"]}
    with pytest.raises(LensDBError, match="1 unreadable image.*--strict"):
        finetune(config(train, tmp_path / "out", strict=True))
    _nothing_written(tmp_path)
    s = finetune(config(train, tmp_path / "ok", epochs=1))
    assert s["skipped_images"]["train"] == 1 and s["train_images"] == 47


def test_checkpoint_of_another_architecture(tiny_small, tmp_path):
    s = finetune(config(tiny_small, tmp_path / "r", epochs=1))
    best = tmp_path / "r" / "best.pt"
    from lensdb.finetune.evaluate import evaluate_checkpoint

    with pytest.raises(LensDBError, match="architecture lensdb-tiny, not ViT-B-16"):
        evaluate_checkpoint(f"clip:ViT-B-16:{best}", tiny_small["val"])
    with pytest.raises(LensDBError, match="architecture lensdb-tiny, not RN50"):
        finetune(config(tiny_small, tmp_path / "out", embedder=f"clip:RN50:{best}"))
    _nothing_written(tmp_path)
    report = evaluate_checkpoint(str(best), tiny_small["val"], baseline="clip:lensdb-tiny")
    assert report.threshold_source.startswith("checkpoint")
    assert report.metrics["text_to_image_R@1"] == pytest.approx(
        s["val"]["finetuned"]["text_to_image_R@1"])
    assert set(report.to_dict()) >= {"finetuned", "pretrained"}


def test_freeze_keeps_a_tower_fixed(tiny_small, tmp_path):
    import open_clip
    import torch

    import lensdb.finetune.tiny  # noqa: F401

    finetune(config(tiny_small, tmp_path / "f", epochs=1, freeze="vision", seed=7))
    torch.manual_seed(7)
    start = open_clip.create_model("lensdb-tiny").state_dict()
    final = torch.load(tmp_path / "f" / "final.pt", weights_only=True)["state_dict"]
    vision = [k for k in start if k.startswith("visual.") and start[k].is_floating_point()]
    text = [k for k in start if k.startswith("transformer.")]
    assert all(torch.equal(start[k], final[k]) for k in vision)
    assert any(not torch.equal(start[k], final[k]) for k in text)


@pytest.mark.slow
def test_real_photo_demo(tmp_path):
    pytest.importorskip("skimage")
    from lensdb.finetune.synthetic import make_photo_dataset

    data = {}
    for name, crops, seed in (("train", 12, 1), ("val", 1, 2)):
        make_photo_dataset(tmp_path / name, crops, seed=seed, prefix=name)
        data[name] = tmp_path / name / "captions.csv"
    s = finetune(config(data, tmp_path / "run", epochs=10, batch_size=24))
    before, after = s["val"]["pretrained"], s["val"]["finetuned"]
    assert after["text_to_image_R@1"] >= before["text_to_image_R@1"] + 0.4


def test_resume_when_only_the_summary_is_missing(tiny_small, tmp_path):
    out = tmp_path / "run"

    def crash(event):
        if event["kind"] == "epoch":
            raise KeyboardInterrupt  # after the last epoch's state.pt, before summary.json

    with pytest.raises(KeyboardInterrupt):
        finetune(config(tiny_small, out, epochs=1), progress=crash)
    s = finetune(config(tiny_small, out, epochs=1), resume=out)
    assert (out / "summary.json").exists() and s["epochs_run"] == 1
    assert [r["epoch"] for r in csv.DictReader(open(out / "epochs.csv"))] == ["1"]

"""The linear probe learns pixel-decided conditions on held-out data; the imbalance remedies
raise the rare class's recall (same data, same seed); the classifier is stored, used by
`classify`, and its counts answer `count(square[filled])` queries."""

from __future__ import annotations

import numpy as np
import pytest
from classify_data import frame_fills, write_csv

from lensdb.classify.conditions import ConditionSet, add_condition_set
from lensdb.classify.data import embed_samples, labels, read_dataset
from lensdb.classify.evaluate import EvalConfig, classification_metrics, evaluate_classifiers
from lensdb.classify.probe import ProbeConfig, fit_probe
from lensdb.classify.registry import list_classifiers
from lensdb.classify.run import ClassifyConfig, classify_store
from lensdb.classify.train import TrainConfig, train_classifier
from lensdb.models.registry import get_embedder

CS = ConditionSet("fill", "square", ("filled", "hollow"), ("a {condition} {object}",))


def test_probe_beats_chance_on_held_out_crops_and_classify_uses_it(tiny_clip, square_store,
                                                                   tmp_path):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    train = write_csv(tmp_path / "train", 160, seed=1)
    test = write_csv(tmp_path / "test", 100, seed=2)
    report = train_classifier(square_store, TrainConfig("fill", str(train), embedder=tiny_clip,
                                                        cs=(0.1, 1.0, 10.0)))
    assert report.classifier_id == 1 and report.samples == 160
    assert set(report.val_scores) == {"0.1", "1.0", "10.0"}
    assert (square_store.models_dir / report.file).exists()
    ev = evaluate_classifiers(square_store, EvalConfig("fill", str(test), embedder=tiny_clip,
                                                       png=str(tmp_path / "cm.png")))
    by_name = {r["name"]: r for r in ev.rows}
    probe = by_name["classifier 1"]
    assert probe["accuracy"] >= 0.9  # chance: 0.5
    assert {"zero-shot", "zero-shot spatial"} <= set(by_name)
    assert sum(map(sum, probe["confusion"])) == 100
    assert (tmp_path / "cm.png").stat().st_size > 1000

    done = classify_store(square_store, ClassifyConfig("fill"))  # the active classifier
    assert (done.method, done.classifier_id, done.classified) == ("linear-probe", 1, 36)
    truth = sum(sum(frame_fills(i)) for i in range(12))
    assert abs(done.values["filled"] - truth) <= 2, done.values

    from lensdb.query.execute import run_query

    result = run_query(square_store, "count(square[filled]) >= 2", source="detected",
                       frames=True)
    want = {i for i in range(12) if sum(frame_fills(i)) >= 2}
    got = {r["frame_index"] for r in result.rows}
    assert len(got ^ want) <= 1, (got, want)
    from lensdb.query.execute import matching_frame_ids  # search --where

    ids = matching_frame_ids(square_store, "count(square[filled]) >= 2", source="detected")
    assert sorted(ids.tolist()) == sorted(r["frame_id"] for r in result.rows)


def test_imbalance_remedies_raise_the_rare_class_recall(tiny_clip, tmp_path):
    emb = get_embedder(tiny_clip)
    train = read_dataset(write_csv(tmp_path / "a", 300, seed=1, rare_share=0.06, hard=True), CS)
    test = read_dataset(write_csv(tmp_path / "b", 200, seed=2, rare_share=0.5, hard=True), CS)
    xtr, xte = embed_samples(emb, train, "crop"), embed_samples(emb, test, "crop")
    ytr, yte = labels(train, CS), labels(test, CS)
    assert np.bincount(ytr)[1] / len(ytr) < 0.1  # hollow is rare in training

    def rare_recall(**remedy) -> float:
        model = fit_probe(xtr, ytr, 2, ProbeConfig(cs=(1.0, 10.0), seed=0, **remedy)).model
        return classification_metrics(yte, model.logits(xte).argmax(1),
                                      CS.values)["per_class"]["hollow"]["recall"]

    plain = rare_recall()
    assert rare_recall(class_weights=True) >= plain + 0.1
    assert rare_recall(oversample=True) >= plain + 0.1
    assert rare_recall(class_weights=True, loss="focal") >= plain + 0.1


def test_metrics_by_hand():
    m = classification_metrics(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 0]),
                               ("a", "b"))
    assert m["confusion"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_class"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3,
                                                 "f1": 2 / 3, "support": 3})
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)


def test_yolo_dataset_classes_parse(square_store, tmp_path):
    import cv2

    cs = add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    (tmp_path / "y" / "images").mkdir(parents=True)
    (tmp_path / "y" / "labels").mkdir()
    (tmp_path / "y" / "data.yaml").write_text("names:\n  0: square filled\n  1: square_hollow\n")
    cv2.imwrite(str(tmp_path / "y" / "images" / "a.png"), np.zeros((40, 80, 3), np.uint8))
    (tmp_path / "y" / "labels" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n0 0.1 0.1 0.1 0.1\n")
    samples = read_dataset(tmp_path / "y", cs)
    assert [s.value for s in samples] == ["hollow", "filled"]
    assert samples[0].box == pytest.approx((30, 10, 50, 30))


def test_wise_ft_blends_in_the_zero_shot_head(tiny_clip, square_store, tmp_path):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    data = write_csv(tmp_path / "w", 80, seed=3)
    r = train_classifier(square_store, TrainConfig("fill", str(data), embedder=tiny_clip,
                                                   cs=(1.0,), wise_ft="auto"))
    assert r.wise_ft_alpha in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert r.method == "linear-probe+wise-ft"
    assert [c["classifier_id"] for c in list_classifiers(square_store, "fill")] == [1]


def test_vision_tower_fine_tuning_learns_and_classify_uses_the_tower(tiny_clip_calibrated,
                                                                    square_store, tmp_path):
    from lensdb.classify.finetune import FinetuneConfig

    tiny_clip = tiny_clip_calibrated
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    train = write_csv(tmp_path / "train", 160, seed=1)
    test = write_csv(tmp_path / "test", 100, seed=2)
    tune = FinetuneConfig(epochs=4, lr=1e-3, head_lr=1e-2)
    r = train_classifier(square_store, TrainConfig("fill", str(train), method="vision",
                                                   embedder=tiny_clip, finetune=tune))
    assert r.method == "vision" and r.val_scores["epoch 0"] <= 0.8  # zero-shot start
    ev = evaluate_classifiers(square_store, EvalConfig("fill", str(test), embedder=tiny_clip,
                                                       spatial=False))
    by_name = {row["name"]: row for row in ev.rows}
    assert by_name["zero-shot"]["accuracy"] <= 0.8  # random weights
    assert by_name["classifier 1"]["accuracy"] >= 0.9  # held out
    done = classify_store(square_store, ClassifyConfig("fill"))
    assert done.method == "vision"
    assert abs(done.values["filled"] - sum(sum(frame_fills(i)) for i in range(12))) <= 2
    # WiSE-FT at alpha 0 is the zero-shot model again, tower and head
    r0 = train_classifier(square_store, TrainConfig("fill", str(train), method="vision",
                                                    embedder=tiny_clip, wise_ft=0.0,
                                                    finetune=FinetuneConfig(epochs=2, lr=3e-3)))
    ev0 = evaluate_classifiers(square_store, EvalConfig("fill", str(test), embedder=tiny_clip,
                                                        spatial=False,
                                                        classifiers=(r0.classifier_id,)))
    assert ev0.rows[1]["confusion"] == ev0.rows[0]["confusion"]  # zero-shot's


def test_full_fine_tuning_trains_both_towers_and_classify_uses_it(tiny_clip_calibrated,
                                                                  square_store, tmp_path):
    import torch
    from classify_data import install_no_text_embedder

    from lensdb.classify.conditions import text_heads
    from lensdb.classify.finetune import FinetuneConfig
    from lensdb.classify.registry import find_classifier
    from lensdb.errors import LensDBError

    tiny_clip = tiny_clip_calibrated
    cs = add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    train = write_csv(tmp_path / "train", 160, seed=1)
    test = write_csv(tmp_path / "test", 100, seed=2)
    with pytest.raises(LensDBError, match="linear probe only"):  # no text side
        train_classifier(square_store, TrainConfig("fill", str(train), method="full",
                                                   embedder=install_no_text_embedder()))
    tune = FinetuneConfig(epochs=4, lr=1e-3, head_lr=1e-2)
    r = train_classifier(square_store, TrainConfig("fill", str(train), method="full",
                                                   embedder=tiny_clip, finetune=tune))
    assert r.method == "full" and r.val_scores["epoch 0"] <= 0.8  # zero-shot start
    assert max(r.val_scores.values()) >= 0.9
    ev = evaluate_classifiers(square_store, EvalConfig("fill", str(test), embedder=tiny_clip,
                                                       spatial=False))
    by_name = {row["name"]: row for row in ev.rows}
    assert by_name["zero-shot"]["accuracy"] <= 0.8  # random weights
    assert by_name["classifier 1"]["accuracy"] >= 0.9  # held out; chance 0.5
    # the head is the text tower's prompt ensemble, and that tower learned: its rows moved
    blob = torch.load(square_store.models_dir / find_classifier(square_store, "fill")["file"],
                      weights_only=True)
    zs = 100 * text_heads(get_embedder(tiny_clip), cs)[""]
    assert np.abs(blob["W"].numpy() - zs).max() > 1.0
    done = classify_store(square_store, ClassifyConfig("fill"))
    assert (done.method, done.classifier_id) == ("full", 1)
    assert abs(done.values["filled"] - sum(sum(frame_fills(i)) for i in range(12))) <= 2

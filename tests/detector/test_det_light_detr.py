"""The light DETR's parts: matching, loss, same outputs in train and eval mode, boxes out."""

from __future__ import annotations

import numpy as np
import torch

from lensdb.detector.light_detr import LightDetr, LightDetrSpec, postprocess
from lensdb.detector.light_loss import HungarianMatcher, SetCriterion

TARGET = {"labels": torch.tensor([2, 0]),
          "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]])}


def _out(boxes: torch.Tensor, classes: list[int], n_classes: int = 3) -> dict:
    """Sigmoid logits: +5 for the query's class, -5 elsewhere (class n_classes: none)."""
    logits = torch.full((1, len(boxes), n_classes), -5.0)
    for q, c in enumerate(classes):
        if c < n_classes:
            logits[0, q, c] = 5.0
    return {"logits": logits, "boxes": boxes[None], "aux": []}


def test_matcher_pairs_each_target_with_its_box():
    boxes = torch.tensor([[0.5, 0.5, 0.1, 0.1], [0.7, 0.6, 0.3, 0.4], [0.3, 0.3, 0.2, 0.2]])
    out = _out(boxes, [3, 0, 2])
    (qi, ti), = HungarianMatcher()(out["logits"], out["boxes"], [TARGET])
    assert dict(zip(ti.tolist(), qi.tolist())) == {0: 2, 1: 1}


def test_one_to_many_matching_gives_each_target_several_queries():
    boxes = torch.rand(10, 4) * 0.5 + 0.2
    logits = torch.zeros(1, 10, 3)
    (qi, ti), = HungarianMatcher()(logits, boxes[None], [TARGET], repeat=3)
    assert sorted(ti.tolist()) == [0, 0, 0, 1, 1, 1] and len(set(qi.tolist())) == 6


def test_loss_is_lower_for_right_boxes_and_classes():
    crit = SetCriterion(3)
    right = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4], [0.5, 0.5, 0.1, 0.1]])
    good, parts = crit(_out(right, [2, 0, 3]), [TARGET])
    shifted, _ = crit(_out(right + 0.08, [2, 0, 3]), [TARGET])
    wrong_cls, _ = crit(_out(right, [1, 1, 3]), [TARGET])
    assert parts["l1"] < 1e-6 and parts["giou"] < 1e-6
    assert good < shifted and good < wrong_cls
    empty, _ = crit(_out(right, [3, 3, 3]), [{"labels": torch.zeros(0, dtype=torch.long),
                                              "boxes": torch.zeros(0, 4)}])
    assert torch.isfinite(empty)


def test_model_shapes_and_train_eval_agree():
    torch.manual_seed(0)
    spec = LightDetrSpec(3, num_queries=6, hidden_dim=32, decoder_layers=2, heads=2, imgsz=64)
    model = LightDetr(spec)
    x = torch.rand(2, 3, 64, 64)
    out = model(x)
    assert out["logits"].shape == (2, 6, 3) and out["boxes"].shape == (2, 6, 4)
    assert len(out["aux"]) == 1 and float(out["boxes"].detach().min()) >= 0
    assert out["enc"]["logits"].shape == (2, 64, 3)  # 8x8 proposal cells at stride 8
    loss, parts = SetCriterion(3)(out, [TARGET, TARGET])
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"cls", "l1", "giou"}
    assert model.backbone.s8[0][0].weight.grad is not None  # the backbone gets gradients
    model.eval()
    with torch.no_grad():
        again = model(x)
    assert torch.allclose(out["boxes"], again["boxes"], atol=1e-5)  # GroupNorm, no dropout


def test_postprocess_scales_boxes_and_applies_thresholds():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1]])
    out = _out(boxes, [1, 1, 3])
    (xyxy, scores, cls), = postprocess(out, [(100, 200)], conf=0.5, iou=0.5)
    assert cls.tolist() == [1]  # duplicate removed by NMS, no-object query dropped
    assert np.allclose(xyxy[0], [80, 30, 120, 70], atol=1e-3)

"""The objectives against values worked out by hand, and SANW with unit weights == InfoNCE."""

from __future__ import annotations

import math

import pytest
import torch

from lensdb.finetune.losses import (
    MatchHead,
    Objective,
    batch_loss,
    bce_loss,
    infonce_loss,
    normalise_negatives,
    sanw_weights,
    weighted_infonce,
)

IMG2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TXT2 = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
# a 3-pair batch with different similarities everywhere
IMG3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
TXT3 = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])


def test_infonce_by_hand():
    # logits [[1, .6], [0, .8]]: rows are image->text, columns text->image
    i2t = (math.log(1 + math.exp(-0.4)) + math.log(1 + math.exp(-0.8))) / 2
    t2i = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(-0.2))) / 2
    assert (i2t + t2i) / 2 == pytest.approx(0.448879, abs=1e-6)
    assert float(infonce_loss(IMG2, TXT2, 1.0)) == pytest.approx(0.448879, abs=1e-6)
    # the scale multiplies the logits
    i2t10 = (math.log(1 + math.exp(-4)) + math.log(1 + math.exp(-8))) / 2
    t2i10 = (math.log(1 + math.exp(-10)) + math.log(1 + math.exp(-2))) / 2
    assert float(infonce_loss(IMG2, TXT2, 10.0)) == pytest.approx((i2t10 + t2i10) / 2, 1e-6)


def test_bce_by_hand():
    head = MatchHead(scale=10.0, bias=-5.0)
    loss = bce_loss(IMG2, TXT2, torch.tensor([1, 0]), head)  # logits 10*1-5=5, 10*.8-5=3
    want = (math.log(1 + math.exp(-5)) + math.log(1 + math.exp(3))) / 2
    assert want == pytest.approx(1.527651, abs=1e-6)
    assert float(loss.detach()) == pytest.approx(want, abs=1e-6)


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _hand_weights(obj: Objective, alpha: float):
    img, txt = IMG3.tolist(), TXT3.tolist()
    n = len(img)
    sim = [[alpha * _dot(img[i], img[j]) + (1 - alpha) * _dot(txt[i], txt[j])
            for j in range(n)] for i in range(n)]

    def sig(x):
        return 1 / (1 + math.exp(-x))

    raw = [[(1 - sig(obj.lam * (s - obj.delta))) if obj.name == "sanw-debias" else
            sig((s - obj.m1) / obj.gamma) * (1 - sig((s - obj.m2) / obj.gamma)) for s in row]
           for row in sim]
    w = []
    for i in range(n):
        mean = sum(raw[i][j] for j in range(n) if j != i) / (n - 1)
        w.append([1.0 if j == i else raw[i][j] / mean for j in range(n)])
    return w


def _hand_weighted_loss(w, scale):
    img, txt = IMG3.tolist(), TXT3.tolist()
    n = len(img)
    logit = [[scale * _dot(img[i], txt[j]) for j in range(n)] for i in range(n)]
    i2t = [-math.log(math.exp(logit[i][i]) / sum((1 if j == i else w[i][j]) *
                                                 math.exp(logit[i][j]) for j in range(n)))
           for i in range(n)]
    t2i = [-math.log(math.exp(logit[i][i]) / sum((1 if j == i else w[i][j]) *
                                                 math.exp(logit[j][i]) for j in range(n)))
           for i in range(n)]
    return (sum(i2t) / n + sum(t2i) / n) / 2


@pytest.mark.parametrize("obj", [
    Objective("sanw-debias", alpha=0.2, delta=0.3, lam=2.0),
    Objective("sanw-debias", alpha=0.1, delta=0.5, lam=0.5),
    Objective("sanw-bandpass", alpha=0.15, m1=0.2, m2=0.85, gamma=0.5),
    Objective("sanw-bandpass", alpha=0.1, m1=0.1, m2=0.8, gamma=1.0),
])
def test_sanw_by_hand(obj):
    w_hand = _hand_weights(obj, obj.mix)
    weights, raw = sanw_weights(IMG3, TXT3, obj)
    for i in range(3):
        for j in range(3):
            assert float(weights[i, j]) == pytest.approx(w_hand[i][j], abs=1e-6)
    # the negatives' weights differ (otherwise the test shows nothing) and average 1
    off = [w_hand[i][j] for i in range(3) for j in range(3) if i != j]
    assert max(off) - min(off) > 0.01
    assert sum(w_hand[0][1:]) / 2 == pytest.approx(1.0)
    loss, stats = batch_loss(obj, IMG3, TXT3, torch.tensor(5.0))
    assert float(loss) == pytest.approx(_hand_weighted_loss(w_hand, 5.0), abs=1e-5)
    assert float(loss) != pytest.approx(float(infonce_loss(IMG3, TXT3, 5.0)), abs=1e-4)
    assert 0 < stats["w_mean"] < 1 and 0 <= stats["w_below_half"] <= 1


def test_debias_down_weights_close_negatives():
    obj = Objective("sanw-debias", alpha=0.2, delta=0.3, lam=2.0)
    weights, _ = sanw_weights(IMG3, TXT3, obj)
    # text 0 and text 1 are close (cos .8), text 0 and text 2 far (cos 0): 1's weight is lower
    assert weights[0, 1] < weights[0, 2]


@pytest.mark.parametrize("name", ["sanw-debias", "sanw-bandpass"])
def test_sanw_with_unit_weights_is_infonce(name):
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    ones = torch.ones(8, 8)
    for scale in (1.0, 14.3, 100.0):
        assert float(weighted_infonce(img, txt, scale, ones)) == pytest.approx(
            float(infonce_loss(img, txt, scale)), rel=1e-6)
    # equal raw weights normalise to 1 as well
    assert torch.allclose(normalise_negatives(torch.full((8, 8), 0.3)), ones)


def test_weights_carry_no_gradient():
    img = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1).requires_grad_()
    txt = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1).requires_grad_()
    weights, raw = sanw_weights(img, txt, Objective("sanw-debias"))
    assert not weights.requires_grad and not raw.requires_grad
    loss, _ = batch_loss(Objective("sanw-bandpass"), img, txt, torch.tensor(10.0))
    loss.backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()

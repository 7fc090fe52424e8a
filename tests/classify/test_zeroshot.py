"""Zero-shot through the real code path (random-weight tiny CLIP): mechanics only, since
random weights know nothing: probabilities sum to 1, one attribute per detection, counts
of `square[value]` that add up, resumable after a stop or a crash, spatial prompts."""

from __future__ import annotations

import numpy as np
import pytest

from lensdb.classify import attributes
from lensdb.classify.conditions import add_condition_set, get_condition_set, position_of
from lensdb.classify.crops import context_image
from lensdb.classify.run import ClassifyConfig, classify_store
from lensdb.classify.zeroshot import ZeroShot
from lensdb.models.registry import get_embedder


def _attrs(store) -> list[tuple]:
    with store.catalog.connect() as con:
        return con.execute("SELECT frame_id, class, x1, y1, value, method FROM "
                           "detection_attributes ORDER BY ALL").fetchall()


def _condition_counts(store) -> dict[int, int]:
    with store.catalog.connect() as con:
        rows = con.execute("SELECT frame_id, sum(n) FROM counts WHERE class LIKE 'square[%' "
                           "GROUP BY 1").fetchall()
    return dict(rows)


def test_probabilities_sum_to_one_per_position(tiny_clip, square_store):
    cs = add_condition_set(square_store, "fill", "square", ["filled", "hollow", "striped"])
    emb = get_embedder(tiny_clip)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (40, 40, 3)).astype(np.uint8) for _ in range(6)]
    x = emb.embed_images([context_image(i, (5, 5, 30, 30), "crop+margin") for i in imgs])
    for spatial in (False, True):
        zs = ZeroShot(emb, cs, spatial)
        positions = ["top left", "centre", "bottom right"] * 2
        p = zs.proba(x, positions)
        assert p.shape == (6, 3)
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert set(ZeroShot(emb, cs, True).heads) >= {"top left", "centre", "bottom right"}


def test_classify_stores_one_attribute_per_detection_and_resumes(tiny_clip, square_store):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    first = classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip,
                                                        batch_size=5, limit=10))
    assert (first.classified, first.remaining, first.method) == (10, 26, "zero-shot")
    assert len(_attrs(square_store)) == 10
    rest = classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip, batch_size=7))
    assert (rest.classified, rest.remaining) == (26, 0)
    rows = _attrs(square_store)
    assert len(rows) == 36 and len(set(r[:4] for r in rows)) == 36  # no duplicates
    assert {r[1] for r in rows} == {"square"}  # the circle is another object
    assert sum(rest.values.values()) == 36
    assert set(_condition_counts(square_store).values()) == {3}  # 3 squares a frame
    again = classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip))
    assert again.classified == 0 and len(_attrs(square_store)) == 36


def test_a_crash_mid_run_loses_only_the_batch_in_flight(tiny_clip, square_store, monkeypatch):
    add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    real, calls = attributes.write_attributes, []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr("lensdb.classify.run.write_attributes", crashing)
    with pytest.raises(RuntimeError):
        classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip, batch_size=6))
    assert len(_attrs(square_store)) == 12  # two batches of (at least) 6, frame by frame
    monkeypatch.setattr("lensdb.classify.run.write_attributes", real)
    done = classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip))
    assert done.classified == 24 and len(_attrs(square_store)) == 36
    assert set(_condition_counts(square_store).values()) == {3}


def test_spatial_prompts_and_contexts_run(tiny_clip, square_store):
    cs = add_condition_set(square_store, "fill", "square", ["filled", "hollow"])
    for context in ("crop", "crop+margin", "full+box"):
        r = classify_store(square_store, ClassifyConfig("fill", embedder=tiny_clip,
                                                        context=context, spatial=True,
                                                        redo=True))
        assert r.classified == 36 and r.context == context and r.spatial
    assert len(_attrs(square_store)) == 36  # redo replaces, never doubles
    assert get_condition_set(square_store, "fill") == cs
    assert position_of((0, 0, 10, 10), 96, 64) == "top left"
    assert position_of((40, 25, 56, 39), 96, 64) == "centre"
    assert position_of((80, 50, 96, 64), 96, 64) == "bottom right"


def test_context_images():
    rgb = np.zeros((50, 100, 3), np.uint8)
    assert context_image(rgb, (10, 10, 30, 20), "crop").shape == (10, 20, 3)
    assert context_image(rgb, (10, 10, 30, 20), "crop+margin").shape == (16, 30, 3)
    full = context_image(rgb, (10, 10, 30, 20), "full+box")
    assert full.shape == rgb.shape and full[10, 20, 0] == 255 and rgb.max() == 0
    assert context_image(rgb, (-5, -5, 500, 500), "crop").shape == (50, 100, 3)

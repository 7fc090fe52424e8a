"""Real embeddings: crops of what the offline SSD found in the sample video bikes.mp4,
embedded by the offline mobilenet-v2 (no text side: linear probe only). Measured here, on
this machine (time split: first 60% of the frames train, the rest test):

- the detector's own class (car / person / bicycle) from the crop: ~0.89 accuracy against
  0.66 for the majority class;
- cars on the left vs the right half (`side` set, through `classify train` and `eval`):
  crop ~0.74, crop+margin ~0.65, full+box ~0.75 against 0.65 for the majority class; the
  store is then classified and `count(car[left])` queried.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bikes_store(tmp_path_factory, bikes, offline_pair):
    from lensdb.config import IngestConfig
    from lensdb.ingest import ingest
    from lensdb.storage.store import Store

    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo")))
    store = Store.open(tmp_path_factory.mktemp("bikes") / "store", create=True)
    ingest(store, [str(bikes)], IngestConfig(stride=2, detect_every=1, **offline_pair))
    return store


def test_probe_tells_the_detector_classes_apart(bikes_store):
    from lensdb.classify.crops import frame_crops, stored_detections
    from lensdb.classify.probe import ProbeConfig, fit_probe
    from lensdb.models.registry import get_embedder

    names = ["car", "person", "bicycle"]
    with bikes_store.catalog.connect() as con:
        refs = sorted((r for c in names for r in stored_detections(con, c)),
                      key=lambda r: r.frame_id)
    imgs, ys, fids = [], [], []
    for _, crops in frame_crops(bikes_store, refs, "crop"):
        for ref, img, _ in crops:
            imgs.append(img)
            ys.append(names.index(ref.cls))
            fids.append(ref.frame_id)
    x = get_embedder("mobilenet-v2").embed_images(imgs)
    y, fids = np.array(ys), np.array(fids)
    train = fids < np.quantile(fids, 0.6)
    model = fit_probe(x[train], y[train], 3, ProbeConfig(class_weights=True)).model
    acc = float((model.logits(x[~train]).argmax(1) == y[~train]).mean())
    majority = np.bincount(y[~train]).max() / (~train).sum()
    assert acc >= majority + 0.15, (acc, majority)


def test_left_right_probe_classify_and_query(bikes_store, tmp_path):
    import cv2

    from lensdb.classify.conditions import add_condition_set
    from lensdb.classify.evaluate import EvalConfig, evaluate_classifiers
    from lensdb.classify.run import ClassifyConfig, classify_store
    from lensdb.classify.train import TrainConfig, train_classifier
    from lensdb.export import render_frame
    from lensdb.query.execute import run_query

    add_condition_set(bikes_store, "side", "car", ["left", "right"])
    with bikes_store.catalog.connect() as con:
        dets = con.execute("SELECT frame_id, x1, y1, x2, y2 FROM detections WHERE class = "
                           "'car' ORDER BY frame_id").fetchall()
    frames = sorted({d[0] for d in dets})
    cut = frames[int(0.6 * len(frames))]
    rows: dict[str, list] = {"train": [], "test": []}
    for fid, *box in dets:
        path = tmp_path / f"f{fid}.png"
        if not path.exists():
            cv2.imwrite(str(path), render_frame(bikes_store, fid, boxes=False)[..., ::-1])
        side = "left" if (box[0] + box[2]) / 2 < 320 else "right"
        rows["train" if fid < cut else "test"].append([path.name, *box, "car", side])
    for split, items in rows.items():
        with open(tmp_path / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image_path", "x1", "y1", "x2", "y2", "object", "condition"])
            w.writerows(items)
    ids = [train_classifier(bikes_store, TrainConfig(
        "side", str(tmp_path / "train.csv"), embedder="mobilenet-v2", context=ctx,
        class_weights=True)).classifier_id for ctx in ("crop", "full+box")]
    ev = evaluate_classifiers(bikes_store, EvalConfig("side", str(tmp_path / "test.csv"),
                                                      classifiers=tuple(ids)))
    majority = max(ev.class_counts.values()) / ev.samples
    best = max(r["accuracy"] for r in ev.rows)
    assert best >= majority + 0.05, ([r["accuracy"] for r in ev.rows], majority)
    assert any("no text side" in n for n in ev.notes)
    done = classify_store(bikes_store, ClassifyConfig("side"))
    assert done.classified == len(dets) and sum(done.values.values()) == len(dets)
    left = run_query(bikes_store, "count(car[left]) >= 1", source="detected", frames=True)
    assert 0 < len(left.rows) < len(frames)

"""`classify_store`: give every stored detection of a condition set's object its value.

The set's active trained classifier does it when there is one (or `method="zero-shot"` asks
for prompts even then); otherwise zero-shot prompts. Detections are read by frame, their
frames decoded once, crops embedded and scored in batches, and each batch committed in one
transaction (`attributes.write_attributes`). Resumable: a re-run does only the detections
without an attribute of the set (`redo` does all again). Everything that can be refused
(unknown set, no text side, a classifier of another embedder) is refused before anything
is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from lensdb.classify.attributes import attribute_summary, write_attributes
from lensdb.classify.conditions import get_condition_set, position_of
from lensdb.classify.crops import DetectionRef, check_context, frame_crops, stored_detections
from lensdb.classify.registry import check_embedder, find_classifier, load_classifier
from lensdb.classify.zeroshot import Trained, ZeroShot
from lensdb.errors import LensDBError
from lensdb.storage.catalog import one_row
from lensdb.storage.store import Store

METHODS = ("auto", "zero-shot", "classifier")


@dataclass(frozen=True)
class ClassifyConfig:
    """What `lensdb classify` does."""

    conditions: str  # condition set name
    method: str = "auto"  # auto (active classifier, else zero-shot) | zero-shot | classifier
    classifier_id: int | None = None  # a stored classifier of the set (default: the active)
    context: str | None = None  # crop | crop+margin | full+box; None: classifier's, or crop
    spatial: bool = False  # zero-shot: add the box's position to the prompts
    embedder: str | None = None  # None: the classifier's, else the store's embedder
    batch_size: int = 64  # crops per embedding batch and per committed transaction
    redo: bool = False  # classify again detections that have an attribute already
    limit: int | None = None  # classify at most this many detections (then stop: resumable)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise LensDBError(f"unknown method '{self.method}'; use {', '.join(METHODS)}")
        if self.context is not None:
            check_context(self.context)
        if self.batch_size < 1:
            raise LensDBError("batch_size must be at least 1")
        if self.spatial and self.method == "classifier":
            raise LensDBError("--spatial changes zero-shot prompts; a trained classifier "
                              "has none")


@dataclass
class ClassifyReport:
    conditions: str
    object: str
    method: str
    classifier_id: int | None
    embedder: str
    context: str
    spatial: bool
    classified: int = 0  # detections classified by this run
    remaining: int = 0  # detections still without an attribute (a --limit run)
    frames: int = 0  # frames decoded
    seconds: float = 0.0
    crops_per_second: float = 0.0
    values: dict[str, int] = field(default_factory=dict)  # detections per value, in the store

    def to_dict(self) -> dict:
        return asdict(self)


def _scorer(store: Store, config: ClassifyConfig, cs):
    """(scorer, embedder, context, classifier row or None), refusing bad input."""
    from lensdb.models.registry import get_embedder

    row = None
    if config.method != "zero-shot":
        row = find_classifier(store, cs.name, config.classifier_id)
        if row is None and config.method == "classifier":
            raise LensDBError(f"condition set '{cs.name}' has no trained classifier; train one "
                              "with `lensdb classify train` or use --method zero-shot")
    if row is not None and config.spatial and config.method == "auto":
        row = None  # --spatial asks for prompts
    spec = config.embedder or (row["embedder_spec"] if row else None) or \
        store.meta().get("embedder_spec")
    if not spec:
        raise LensDBError("the store has no embedder yet; pass --embedder")
    embedder = get_embedder(spec)
    if row is not None:
        check_embedder(row, embedder)
        _, model = load_classifier(store, row, embedder)
        return (Trained(model, row["classifier_id"], row["method"]), embedder,
                config.context or row["context"], row)
    return ZeroShot(embedder, cs, config.spatial), embedder, config.context or "crop", None


def classify_store(store: Store, config: ClassifyConfig,
                   progress: Callable[[int, int], None] | None = None) -> ClassifyReport:
    """Classify the set's detections; see the module docstring."""
    config.validate()
    cs = get_condition_set(store, config.conditions)
    scorer, embedder, context, row = _scorer(store, config, cs)
    report = ClassifyReport(cs.name, cs.object, scorer.method, row and row["classifier_id"],
                            embedder.model_id, context, config.spatial)
    started = time.perf_counter()
    with store.writer():
        with store.catalog.connect() as con:
            if not one_row(con.execute("SELECT count(*) FROM detections WHERE class = ?",
                                       [cs.object]))[0]:
                raise LensDBError(f"the store has no detections of '{cs.object}' to classify")
            todo = stored_detections(con, cs.object, cs.name, config.redo)
        total = len(todo)
        if config.limit is not None:
            todo = todo[: config.limit]
        refs: list[DetectionRef] = []
        images: list[np.ndarray] = []
        positions: list[str] = []

        def flush() -> None:
            if not refs:
                return
            vecs = embedder.embed_images(images)
            write_attributes(store, cs, list(refs), scorer.proba(vecs, list(positions)),
                             scorer.method, row and row["classifier_id"])
            report.classified += len(refs)
            if progress:
                progress(report.classified, len(todo))
            refs.clear()
            images.clear()
            positions.clear()

        for _, crops in frame_crops(store, todo, context):
            report.frames += 1
            for ref, img, (w, h) in crops:
                refs.append(ref)
                images.append(img)
                positions.append(position_of(ref.box, w, h))
            if len(refs) >= config.batch_size:
                flush()
        flush()
    report.remaining = total - report.classified
    report.seconds = time.perf_counter() - started
    report.crops_per_second = report.classified / max(report.seconds, 1e-9)
    report.values = attribute_summary(store, cs)
    return report


def stored_probabilities(store: Store, set_name: str) -> np.ndarray:
    """(n,) probabilities of every stored attribute of a set (for tests and summaries)."""
    with store.catalog.connect() as con:
        rows = con.execute("SELECT probability FROM detection_attributes WHERE set_name = ?",
                           [set_name]).fetchall()
    return np.array([r[0] for r in rows], np.float32)

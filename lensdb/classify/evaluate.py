"""`evaluate_classifiers`: zero-shot prompts (per context, with and without spatial
prompts) and stored classifiers side by side on one labelled dataset: accuracy, weighted
and macro F1, per-class precision/recall/F1/support, the confusion matrix (rows: true,
columns: predicted), and optionally a PNG of the confusion matrices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lensdb.classify.conditions import get_condition_set, position_of
from lensdb.classify.crops import check_context
from lensdb.classify.data import Sample, embed_samples, image_size, labels, read_dataset
from lensdb.classify.registry import find_classifier, list_classifiers, load_classifier
from lensdb.errors import LensDBError
from lensdb.models.base import Embedder
from lensdb.storage.store import Store


def classification_metrics(y: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict:
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    per = {}
    for c, name in enumerate(names):
        tp, support, predicted = cm[c, c], cm[c].sum(), cm[:, c].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        per[name] = {"precision": float(p), "recall": float(r),
                     "f1": float(2 * p * r / (p + r)) if p + r else 0.0,
                     "support": int(support)}
    supports = np.array([per[n]["support"] for n in names], np.float64)
    f1s = np.array([per[n]["f1"] for n in names])
    present = supports > 0
    return {"accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
            "weighted_f1": float((f1s * supports).sum() / max(supports.sum(), 1)),
            "macro_f1": float(f1s[present].mean()) if present.any() else 0.0,
            "per_class": per, "confusion": cm.tolist(), "labels": list(names)}


@dataclass(frozen=True)
class EvalConfig:
    """What `lensdb classify eval` compares."""

    conditions: str  # condition set name
    data: str  # CSV file or YOLO dataset folder with the true values
    embedder: str | None = None  # zero-shot rows: None = the store's embedder
    zero_shot: bool = True  # add zero-shot rows (when the embedder has a text side)
    contexts: tuple[str, ...] = ("crop",)  # zero-shot rows: one per context
    spatial: bool = True  # zero-shot rows: with spatial prompts too
    classifiers: tuple[int, ...] | None = None  # stored classifiers (None: the active one)
    png: str | None = None  # write the confusion matrices here


@dataclass
class EvalReport:
    conditions: str
    samples: int
    class_counts: dict[str, int]
    imbalance_ratio: float
    rows: list[dict] = field(default_factory=list)  # {name, method, embedder, context, ...}
    notes: list[str] = field(default_factory=list)
    png: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _positions(samples: list[Sample]) -> list[str]:
    sizes: dict[Path, tuple[int, int]] = {}
    out = []
    for s in samples:
        if s.image not in sizes:
            sizes[s.image] = image_size(s.image)
        out.append(position_of(s.box, *sizes[s.image]))
    return out


def evaluate_classifiers(store: Store, config: EvalConfig) -> EvalReport:
    from lensdb.classify.zeroshot import ZeroShot
    from lensdb.models.registry import get_embedder

    for ctx in config.contexts:
        check_context(ctx)
    cs = get_condition_set(store, config.conditions)
    samples = read_dataset(config.data, cs)
    y = labels(samples, cs)
    counts = np.bincount(y, minlength=len(cs.values))
    present = counts[counts > 0]
    report = EvalReport(cs.name, len(samples), {v: int(n) for v, n in zip(cs.values, counts)},
                        float(present.max() / present.min()))
    embedders: dict[str, Embedder] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}

    def embed(spec: str, context: str):
        if spec not in embedders:
            embedders[spec] = get_embedder(spec)
        if (spec, context) not in vectors:
            vectors[spec, context] = embed_samples(embedders[spec], samples, context)
        return embedders[spec], vectors[spec, context]

    def add(name: str, method: str, emb, context: str, proba: np.ndarray, extra: dict) -> None:
        m = classification_metrics(y, proba.argmax(1), cs.values)
        report.rows.append({"name": name, "method": method, "embedder": emb.model_id,
                            "context": context, **extra, **m})

    if config.zero_shot:
        spec = config.embedder or store.meta().get("embedder_spec")
        if not spec:
            raise LensDBError("the store has no embedder yet; pass --embedder")
        emb = embedders.setdefault(spec, get_embedder(spec))
        if not emb.has_text:
            report.notes.append(f"embedder '{emb.name}' has no text side: no zero-shot rows")
        else:
            positions = _positions(samples)
            for context in config.contexts:
                _, x = embed(spec, context)
                for spatial in ((False, True) if config.spatial else (False,)):
                    zs = ZeroShot(emb, cs, spatial)
                    add(f"zero-shot{' spatial' if spatial else ''}", "zero-shot", emb, context,
                        zs.proba(x, positions), {"spatial": spatial})
    found = ([find_classifier(store, cs.name, cid) for cid in config.classifiers]
             if config.classifiers else [find_classifier(store, cs.name)])
    rows = [row for row in found if row is not None]  # None: the set has no active one
    if not config.classifiers and not rows:
        if not list_classifiers(store, cs.name):
            report.notes.append(f"set '{cs.name}' has no trained classifier yet")
    for row in rows:
        tuned = row["method"].startswith(("vision", "full"))
        if tuned:  # its own tower: a fresh embedder, never the shared one
            emb = get_embedder(row["embedder_spec"])
            if emb.model_id == row["embedder_id"]:
                _, model = load_classifier(store, row, emb)
                x = embed_samples(emb, samples, row["context"])
        else:
            emb, x = embed(row["embedder_spec"], row["context"])
        if emb.model_id != row["embedder_id"]:
            report.notes.append(f"classifier {row['classifier_id']} skipped: trained on "
                                f"'{row['embedder_id']}', '{row['embedder_spec']}' loads "
                                f"'{emb.model_id}' now")
            continue
        if not tuned:
            _, model = load_classifier(store, row)
        add(f"classifier {row['classifier_id']}", row["method"], emb, row["context"],
            model.proba(x), {"remedies": row["metrics"].get("remedies", []),
                             "train_samples": row["train_samples"]})
    if config.png and report.rows:
        report.png = str(plot_confusions(report.rows, Path(config.png)))
    return report


def plot_confusions(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes[0], rows):
        cm = np.array(row["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(row["labels"])), row["labels"], rotation=45, ha="right")
        ax.set_yticks(range(len(row["labels"])), row["labels"])
        ax.set_title(f"{row['name']} ({row['context']})\nacc {row['accuracy']:.2f}",
                     fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

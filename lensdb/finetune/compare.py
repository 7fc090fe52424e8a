"""Every objective in one comparison run: the same data, start and seed, one run folder
per objective under OUT, then OUT/compare.json and OUT/compare.png side by side.

    compare_objectives(config, ["infonce", "sanw-debias", "sanw-bandpass"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lensdb.errors import ParameterError
from lensdb.finetune.config import FinetuneConfig, check_config
from lensdb.finetune.losses import OBJECTIVES
from lensdb.runs import atomic_write_text

PLOTTED = ("text_to_image_R@1", "text_to_image_R@5", "image_to_text_R@1",
           "image_to_text_mAP@10", "match_roc_auc")


def compare_objectives(config: FinetuneConfig, names: list[str], progress=None
                       ) -> dict[str, Any]:
    """Run `finetune` once per objective; returns the comparison (also written as JSON)."""
    import json
    import time

    from lensdb.finetune.train import finetune

    names = [n.strip() for n in names if n.strip()]
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or len(names) < 2 or len(set(names)) != len(names):
        raise ParameterError("compare", f"takes two or more different objectives out of "
                             f"{', '.join(OBJECTIVES)}" + (f" (not {', '.join(bad)})"
                                                           if bad else ""))
    root = Path(config.out or f"finetune-runs/{time.strftime('%Y%m%d-%H%M%S')}-compare")
    for name in names:
        check_config(config.with_objective(name, None))
    runs: dict[str, Any] = {}
    for name in names:
        if progress:
            progress({"kind": "objective", "objective": name})
        runs[name] = finetune(config.with_objective(name, str(root / name)), progress)
    split = "test" if all(s["test"] for s in runs.values()) else "val"
    first = next(iter(runs.values()))
    table = {"pretrained": first[split]["pretrained"],
             **{name: s[split]["finetuned"] for name, s in runs.items()}}
    result = {"split": split, "metrics": table, "runs": {n: s["best"] for n, s in runs.items()},
              "json": str(root / "compare.json"), "png": str(root / "compare.png")}
    atomic_write_text(root / "compare.json", json.dumps(result, indent=2) + "\n")
    plot_comparison(table, root / "compare.png", split)
    return result


def plot_comparison(table: dict[str, dict[str, float]], path: Path, split: str) -> Path:
    """Grouped bars: one group per metric, one bar per model (pretrained first)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lensdb.runs import atomic_write_bytes

    metrics = [m for m in PLOTTED if all(m in v for v in table.values())]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(metrics), 4))
    width = 0.8 / max(1, len(table))
    for i, (name, values) in enumerate(table.items()):
        ax.bar(np.arange(len(metrics)) + i * width, [values[m] for m in metrics], width,
               label=name)
    ax.set_xticks(np.arange(len(metrics)) + width * (len(table) - 1) / 2)
    ax.set_xticklabels([m.replace("text_to_image_", "t→i ").replace("image_to_text_", "i→t ")
                        .replace("match_", "match ") for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_title(f"fine-tuning objectives on {split}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path

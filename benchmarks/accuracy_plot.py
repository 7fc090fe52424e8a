"""The plot of `lensdb bench accuracy`: accuracy on hidden frames against the label budget."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from lensdb.bench import common as c

# thin lines: uniform labels
COLOURS = {"constant": "tab:gray", "interp": "tab:orange", "median": "tab:brown",
           "knn": "tab:green", "mlp": "tab:purple", "combo": "tab:blue", "blend": "tab:red"}
PICKED = {"uniform": {"color": "k", "ls": "-"}, "placed": {"color": "tab:red", "ls": "--"},
          "scene": {"color": "tab:cyan", "ls": "--"}}


def plot(videos: list[dict], path: Path, note: str) -> None:
    """Per video and class: ±1 and MAE on the hidden frames against the label budget; every
    method with uniform labels (thin), the picked method with each strategy (thick), the
    neighbour ceiling's MAE on the same hidden frames (`accuracy_ceiling`, dash-dot)."""
    plt = c.pyplot()
    panels = [(v, cls) for v in videos for cls in v["classes"]]
    fig, axes = plt.subplots(len(panels) or 1, 2, figsize=(10, 0.8 + 2.1 * max(1, len(panels))),
                             squeeze=False, layout="constrained")
    for (v, cls), (ax1, ax2) in zip(panels, axes, strict=False):
        lines = [("uniform", m) for m in COLOURS] + [(s, "auto") for s in PICKED]
        for strategy, method in lines:
            rows = sorted((r for r in v["rows"] if r["class"] == cls and r["method"] == method
                           and r["strategy"] == strategy), key=lambda r: r["budget"])
            if not rows:
                continue
            x = [100 * r["budget"] for r in rows]
            if method == "auto":
                style, label = {"lw": 2.2, **PICKED[strategy]}, f"picked, {strategy} labels"
            else:
                style, label = {"lw": 1, "alpha": 0.7, "color": COLOURS[method]}, method
            ax1.plot(x, [100 * r["within1"] for r in rows], marker="o", ms=3, label=label,
                     **style)
            ax2.plot(x, [r["mae"] for r in rows], marker="o", ms=3, label=label, **style)
        ax1.axhline(100 * v["classes"][cls]["agreement"], color="tab:olive", ls=":", lw=1.2,
                    label="detector frame-to-frame ±1")
        per_k = sorted((r for r in v["rows"] if r["class"] == cls and r["method"] == "auto"
                        and r["strategy"] == "uniform"), key=lambda r: r["budget"])
        if per_k:
            ax2.plot([100 * r["budget"] for r in per_k], [r["ceiling_mae"] for r in per_k],
                     color="tab:brown", ls="-.", lw=1.2,
                     label="neighbour ceiling (detector on every other frame)")
        ax1.set_ylabel(f"{v['video']}\n{cls}: ±1 %", fontsize=8)
        ax2.set_ylabel("MAE", fontsize=8)
        ks = sorted({r["k"] for r in v["rows"]}, reverse=True)
        for ax in (ax1, ax2):
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks([100 / k for k in ks], [f"1/{k}" for k in ks])
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("label budget (labelled frames, 1 in K)")
    handles: dict[str, Any] = {}
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=4,
               fontsize=7)
    fig.suptitle(textwrap.fill(note, 150), fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""How wrong an answer might be, measured on the labelled frames.

Selections: the predicate is evaluated twice on labelled frames that also have predictions,
once with the predicted counts (the guess) and once with the detector's counts (the truth).
Precision = TP / (TP + FP), recall = TP / (TP + FN), each frame weighed by the time it
stands for (estimate_sql.time_weights: labels placed where counts move are not a random
sample of frames), each with a Wilson 95% interval at the weights' effective number of
frames (Kish: (sum w)^2 / sum w^2) and the number of frames it rests on. Held-out frames
(no prediction of a mentioned class was trained on them) are used; when there are none, all
labelled frames with predictions are, and the estimate says it is in-sample (optimistic).
`train-counter` stores each labelled frame's out-of-fold prediction (fill-in regime, not
trained on that frame's label; pessimistic: twice the label spacing) next to the refitted
model's predictions elsewhere, so these estimates keep their meaning after the refit on
every label.

Past estimate_sql.SAMPLE_FRAMES labelled frames, both read a fixed-size seeded random
sample of them instead (frame_table.Sample): every n above is then the number of sampled
frames the figure rests on, so each interval carries the sampling error of a sample of that
size (every sampled frame weighs alike), and the estimate says it was sampled. The writers
keep that sample, with its counts and predictions (storage/estimate_sample.py); while it is
current the estimate reads it, some SAMPLE_FRAMES rows, instead of scanning the store for
the same frames.

Aggregates: the residuals r = predicted - detected of each aggregated class on the same
kind of labelled frames (those where the WHERE holds on detected counts) give the bias b,
the sample standard deviation s over n frames, and the 95th percentile q of |r|. Over a
group of N frames of which U were answered by the predictor (the rest are exact labels):
- avg: (U/N) * e, e = max(|b| + 1.96 s / sqrt(n), 3 / n)  random per-frame errors average
  out; the predictor's systematic error does not, and b is itself uncertain by
  1.96 s / sqrt(n). The floor 3 / n is the rule of three: n frames without an error still
  allow one object wrong in up to 3 / n of the frames (95%), so a few labels that happen
  to agree with their predictions never claim ±0
- sum: U * e
- min, max: every one of the U predicted frames within |b| + t s sqrt(1 + 1/n), t the
  Student quantile (n - 1 degrees of freedom: s is estimated) at 1 - 0.025 / U (a union
  bound over the U frames), and at least 1 (one object) while the n
  residuals cannot rule out a wrong frame among the U (U x 3 / n > 0.05, the rule of
  three); 0 when U = 0. (One frame's 95th percentile error, used before, held for the max
  of a video in 35 of 45 cases of `lensdb bench accuracy`: a maximum is where the largest
  errors show.)
- frames: when the WHERE has counts, the selection's true size is its labelled matches
  plus U x precision / recall; the bound is U x the farther end of that ratio's 95% range
  from 1, the range from the two intervals on a log scale (each interval's width read as
  2 x 1.96 standard errors of its log, so a few frames all right do not claim ±0), else 0.
  (U x |precision / recall - 1|, used before, held in 22 of 42 cases of `lensdb bench
  accuracy`: a point estimate of the bias, not a bound.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lensdb.query import estimate_sql as es
from lensdb.query import frame_table as ft
from lensdb.query import plan as p

Z = 1.96
RULE_OF_THREE = 3.0  # no error seen in n frames: up to 3/n of frames wrong, at 95%
EXACT_DETECTED = (
    "exact on labelled frames only: --source detected answers from the detector's counts "
    "and leaves the unlabelled frames out"
)
IN_SAMPLE = ("no held-out labelled frames, so this is measured on frames the predictor was "
             "trained on (optimistic)")


def wilson(k: float, n: float, z: float = Z) -> dict | None:
    """k successes in n trials: the proportion and its Wilson score interval (fractional k
    and n come from `weighted_wilson`)."""
    if n <= 0:
        return None
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return {"value": phat, "low": max(0.0, centre - half), "high": min(1.0, centre + half),
            "n": n}


class Confusion(NamedTuple):
    """A predicate's guesses against the truth on labelled frames: counts, then the sums of
    the frames' weights (w_) and of their squares (w2_) per cell; tn needs no weight."""

    tp: int
    fp: int
    fn: int
    tn: int
    w_tp: float
    w_fp: float
    w_fn: float
    w2_tp: float
    w2_fp: float
    w2_fn: float

    @classmethod
    def of(cls, truth: np.ndarray, guess: np.ndarray, weights: np.ndarray) -> Confusion:
        """From boolean arrays, as `estimate_sql.confusion_sql` counts them."""
        w = np.asarray(weights, np.float64)
        cells = (truth & guess, guess & ~truth, truth & ~guess)
        return cls._make([*(int(c.sum()) for c in cells), int((~truth & ~guess).sum()),
                          *(float(w[c].sum()) for c in cells),
                          *(float((w[c] ** 2).sum()) for c in cells)])


def weighted_wilson(hits: float, total: float, total_sq: float, n: int) -> dict | None:
    """A weighted proportion (the weights of the hits over those of all `n` frames) and its
    Wilson interval at the effective number of frames total^2 / total_sq; `n` is reported."""
    if n <= 0 or total <= 0:
        return None
    effective = total * total / total_sq
    out = wilson(hits / total * effective, effective)
    assert out is not None
    return {**out, "value": hits / total, "n": n, "effective_n": round(effective, 1)}


def precision_recall(c: Confusion) -> dict:
    """Precision and recall with their weighted Wilson 95% intervals."""
    return {"precision": weighted_wilson(c.w_tp, c.w_tp + c.w_fp, c.w2_tp + c.w2_fp,
                                         c.tp + c.fp),
            "recall": weighted_wilson(c.w_tp, c.w_tp + c.w_fn, c.w2_tp + c.w2_fn, c.tp + c.fn)}


def mean_error_bound(bias: float, sd: float, n: int) -> float:
    """95% bound on the mean error of a predicted frame from n residuals (module doc)."""
    return max(abs(bias) + Z * sd / math.sqrt(n), RULE_OF_THREE / n)


def extreme_error_bound(bias: float, sd: float, n: int, predicted: int) -> float:
    """95% bound on the error of a min or max over `predicted` frames from n residuals
    (module doc): every predicted frame within it at once."""
    from scipy.stats import t as student

    if predicted <= 0:
        return 0.0
    spread = 0.0
    if n > 1 and sd > 0:  # a prediction interval: sd is itself estimated from n residuals
        spread = float(student.ppf(1 - 0.025 / predicted, n - 1)) * sd * math.sqrt(1 + 1 / n)
    bound = abs(bias) + spread
    return max(bound, 1.0) if predicted * RULE_OF_THREE / n > 0.05 else bound


def ratio_error_bound(precision: dict, recall: dict, predicted: int) -> float | None:
    """95% bound on the miscount of `predicted` selected frames from the precision and
    recall intervals (module doc); None when recall is 0 (the ratio is unknown)."""
    prec, rec = precision["value"], recall["value"]
    if prec <= 0 or rec <= 0:
        return None
    spread = math.hypot((precision["high"] - precision["low"]) / (2 * Z * prec),
                        (recall["high"] - recall["low"]) / (2 * Z * rec))
    ratio = prec / rec
    ends = (ratio * math.exp(-Z * spread), ratio * math.exp(Z * spread))
    return predicted * max(abs(end - 1) for end in ends)


def confusion_counts(con, pred: p.Predicate | None, source: str,
                     plan: ft.Plan = ft.GENERAL) -> dict[bool, Confusion] | None:
    """The store half of `selection_estimate`: a `Confusion` per held_out, or None when
    the estimate needs none (it can run before the answer is known, beside the query)."""
    classes = p.predicate_classes(pred)
    if source == "detected" or pred is None or not classes:  # (no predicate: no classes)
        return None
    sql = es.confusion_sql(pred, classes, plan)
    return {bool(r[0]): Confusion(*(int(x) for x in r[1:5]), *(float(x) for x in r[5:]))
            for r in con.execute(sql.text, sql.params).fetchall()}


def selection_estimate(con, pred: p.Predicate | None, source: str, matched: int,
                       predicted: int, plan: ft.Plan = ft.GENERAL,
                       counts: dict[bool, Confusion] | None = None) -> dict:
    """Precision and recall of the predicate's predicted version on labelled frames;
    `counts`: what `confusion_counts` gave, when it ran already."""
    classes = p.predicate_classes(pred)
    if source == "detected":
        return {"method": "exact", "note": EXACT_DETECTED}
    if not classes:
        return {"method": "exact", "note": "no counts in the predicate: the answer is exact"}
    by_basis = counts if counts is not None else confusion_counts(con, pred, source, plan)
    assert by_basis is not None  # None only when detected or without classes, as above
    held = by_basis.get(True)
    if held:
        basis, c = "held-out", held
    elif by_basis:
        basis = "in-sample"
        c = Confusion._make(map(sum, zip(*by_basis.values(), strict=True)))
    else:
        return {"method": "none", "note": "no labelled frames with predictions to measure "
                "the predictor against; the error of this answer is unknown"}
    notes = ([] if basis == "held-out" else [IN_SAMPLE]) + sample_notes(plan)
    if source == "best" and matched:
        notes.append(f"{matched - predicted} of the {matched} matching frames are labelled, "
                     "their counts are exact; the others are predicted")
    return {
        "method": "precision/recall on labelled frames", "basis": basis,
        "frames": c.tp + c.fp + c.fn + c.tn, "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
        **precision_recall(c),
        "matched_frames": matched, "predicted_frames": predicted,
        "sample": sample_facts(plan), "note": "; ".join(notes) or None,
    }


def residual_stats(con, cls: str, where: p.Predicate | None, classes: list[str],
                   plan: ft.Plan = ft.GENERAL) -> dict | None:
    sql = es.residuals_sql(cls, where, classes, plan)
    rows = {bool(r[0]): r[1:] for r in con.execute(sql.text, sql.params).fetchall()}
    row, basis = (rows[True], "held-out") if True in rows else (rows.get(False), "in-sample")
    if row is None or not row[0]:
        return None
    n, bias, sd, mae, q95 = row
    return {"frames": int(n), "basis": basis, "bias": float(bias),
            "sd": float(sd) if sd is not None and n > 1 else 0.0,
            "mae": float(mae), "p95_abs_error": float(q95)}


def aggregate_facts(con, query: p.Aggregate, classes: list[str], source: str,
                    plan: ft.Plan = ft.GENERAL) -> tuple[dict, dict | None] | None:
    """The store half of `aggregate_estimate`: residual statistics per aggregated class and
    the WHERE's confusion counts (None when the estimate needs none)."""
    if source == "detected" or not classes:
        return None
    stats = {a.count.cls: residual_stats(con, a.count.cls, query.where, classes, plan)
             for a in query.aggs if a.count is not None}
    return stats, confusion_counts(con, query.where, source, plan)


def aggregate_estimate(con, query: p.Aggregate, classes: list[str], source: str,
                       rows: list[dict], plan: ft.Plan = ft.GENERAL,
                       facts: tuple[dict, dict | None] | None = None
                       ) -> tuple[dict, list[dict]]:
    """The estimate, and for each result row the ± half-width of each aggregate;
    `facts`: what `aggregate_facts` gave, when it ran already."""
    if source == "detected":
        return {"method": "exact", "note": EXACT_DETECTED}, [{} for _ in rows]
    if not classes:
        return {"method": "exact", "note": "no counts involved: the answer is exact"}, [
            {} for _ in rows]
    found = facts if facts is not None else aggregate_facts(con, query, classes, source, plan)
    assert found is not None  # None only when detected or without classes, as above
    stats, counts = found
    sel = None
    if query.where is not None and p.predicate_classes(query.where):
        sel = selection_estimate(con, query.where, source, sum(r["n_frames"] for r in rows),
                                 sum(r["n_predicted"] for r in rows), plan, counts)
    errors = [{a.name: _agg_error(a, r, stats, sel) for a in query.aggs} for r in rows]
    bases = {s["basis"] for s in stats.values() if s}
    missing = sorted(k for k, s in stats.items() if s is None)
    notes = []
    if "in-sample" in bases:
        notes.append(IN_SAMPLE)
    if missing:
        notes.append("no labelled frames with predictions for " + ", ".join(missing)
                     + ": its error is unknown")
    notes += sample_notes(plan)
    estimate = {
        "method": "95% error bound from prediction residuals on labelled frames "
                  "(avg: share predicted x max(|bias| + 1.96 sd/sqrt(n), 3/n); sum: predicted "
                  "frames x the same; min/max: |bias| + t sd with t for every predicted "
                  "frame at once, at least 1 unless n rules out a wrong frame; frames: "
                  "from the 95% range of the WHERE's precision/recall)",
        "basis": "held-out" if bases == {"held-out"} else "in-sample" if bases else "none",
        "classes": stats, "selection": sel, "sample": sample_facts(plan),
        "note": "; ".join(notes) or None,
    }
    return estimate, errors


def sample_facts(plan: ft.Plan) -> dict | None:
    """What the estimate read when it read a sample of the labelled frames (None: all)."""
    s = plan.sample
    if s is None:
        return None
    return {"frames": s.size, "of_labelled": s.labelled, "seed": s.seed,
            "method": "seeded random sample (smallest hash of frame id)"}


def sample_notes(plan: ft.Plan) -> list[str]:
    s = plan.sample
    if s is None:
        return []
    return [f"measured on a seeded random sample of {s.size:,} of the {s.labelled:,} labelled "
            "frames; its intervals and ± bounds are computed from the frames sampled"]


def _agg_error(agg: p.Agg, row: dict, stats: dict, sel: dict | None) -> float | None:
    n_frames, n_pred = row["n_frames"], row["n_predicted"]
    if n_pred == 0:
        return 0.0
    if agg.count is None:
        if sel is None:
            return 0.0
        prec, rec = sel.get("precision"), sel.get("recall")
        return ratio_error_bound(prec, rec, n_pred) if prec and rec else None
    s = stats.get(agg.count.cls)
    if s is None:
        return None
    systematic = mean_error_bound(s["bias"], s["sd"], s["frames"])
    if agg.func == "avg":
        return n_pred / n_frames * systematic
    if agg.func == "sum":
        return n_pred * systematic
    return extreme_error_bound(s["bias"], s["sd"], s["frames"], n_pred)


def describe(estimate: dict) -> str:
    """A few human lines for under a table."""
    method = estimate.get("method")
    if method in ("exact", "none"):
        return f"Error estimate: {estimate['note']}"
    lines = []
    if "precision" in estimate:
        lines.append(_pr_line(estimate))
    if estimate.get("selection"):
        lines.append("WHERE " + _pr_line(estimate["selection"]))
    for cls, s in (estimate.get("classes") or {}).items():
        if s:
            lines.append(f"count({cls}) per-frame error on {s['frames']} {s['basis']} labelled "
                         f"frames: bias {s['bias']:+.2f}, MAE {s['mae']:.2f}, 95% within "
                         f"±{s['p95_abs_error']:.2f}; ± columns are 95% bounds")
    if estimate.get("note"):
        lines.append(f"note: {estimate['note']}")
    return "\n".join(lines)


def _pr_line(e: dict) -> str:
    def fmt(name: str) -> str:
        w = e.get(name)
        if not w:
            return f"{name} n/a"
        return (f"{name} {w['value']:.0%} (95% CI {w['low']:.0%}-{w['high']:.0%}, "
                f"n={w['n']}, effective {w.get('effective_n', w['n']):g})")

    if e.get("method") in ("exact", "none"):
        return e["note"]
    return (f"error estimate ({e['basis']}, {e['frames']} labelled frames): {fmt('precision')}, "
            f"{fmt('recall')}")

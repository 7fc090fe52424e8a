"""Queries answered with guarantees: the store half of `lensdb.query.guarantee`.

    run_verified(store, "count(person) >= 6", recall=0.9, confidence=0.95, budget=300)
    run_verified(store, "avg(count(car))", error=0.1)

The predicted counts give each frame a proxy score for the predicate (soft: a count atom
scores by how far the predicted count lies past its threshold, AND takes the least, OR the
most, NOT one minus); video and time conditions are exact, and frames where the predicate is
settled without counts are never sampled. Labelled frames are known: they join the answer
by their detected counts, and the sampling covers the unlabelled ones. The oracle is the
store's detector (`lensdb.counting.oracle.Oracle`): each frame it runs on is stored as a
label, so later answers need fewer runs. Truth is what that detector says.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from lensdb.errors import LensDBError, ParameterError, QueryError
from lensdb.query import plan as p
from lensdb.query import sql as sq
from lensdb.query.guarantee import mean_with_error, precision_select, recall_select
from lensdb.query.parse import parse_query
from lensdb.query.result import QueryResult, make_table
from lensdb.videos import resolve_query

DEFAULT_BUDGET = 500  # detector runs allowed when --budget is not given
SOFTNESS = 0.5  # counts: scale of the logistic step of a proxy score at a threshold, when
# the class's count model records no fill-in MAE (else that MAE, at least MIN_SOFTNESS)
MIN_SOFTNESS = 0.2


def check_targets(recall: float | None, precision: float | None, error: float | None,
                  confidence: float, budget: int | None, source: str) -> None:
    """The bad-input rules of guaranteed answers, checked before anything is read."""
    given = [n for n, v in (("recall", recall), ("precision", precision),
                            ("error", error)) if v is not None]
    if len(given) > 1:
        raise QueryError(f"{' and '.join(given)} cannot be combined; ask for one guarantee")
    for name, v in (("recall", recall), ("precision", precision), ("confidence", confidence)):
        if v is not None and not (math.isfinite(v) and 0.0 < v < 1.0):
            raise ParameterError(name, f"must lie strictly between 0 and 1, not {v:g}")
    if error is not None and not (math.isfinite(error) and error > 0):
        raise ParameterError("error", f"must be a positive number, not {error:g}")
    if budget is not None and budget < 1:
        raise ParameterError("budget", f"must be at least 1 detector run, not {budget}")
    if source == "detected":
        raise ParameterError("source", "detected has nothing to verify: a guarantee checks "
                             "predictions with the detector (use best)")
    if not given:
        raise QueryError("a guarantee needs one of recall, precision or error (budget and "
                         "confidence go with them)")


@dataclass
class _Table:
    frame_id: np.ndarray
    video_id: np.ndarray
    video: np.ndarray  # names (object)
    frame_index: np.ndarray
    ts: np.ndarray
    labelled: np.ndarray
    predicted: dict[str, np.ndarray]  # NaN where no prediction
    detected: dict[str, np.ndarray]  # 0 where unlabelled or none
    softness: dict[str, float] = field(default_factory=dict)  # class -> fill-in MAE


def _load(con, classes: list[str]) -> _Table:
    rows = con.execute(
        "SELECT f.frame_id, f.video_id, v.name, f.frame_index, f.ts, "
        "coalesce(f.labelled, false) AS labelled FROM frames f JOIN videos v USING (video_id) "
        "ORDER BY f.video_id, f.frame_index, f.frame_id").fetchnumpy()
    fid = np.asarray(rows["frame_id"], np.int64)
    order = np.argsort(fid)
    t = _Table(fid, np.asarray(rows["video_id"], np.int64), np.asarray(rows["name"], object),
               np.asarray(rows["frame_index"], np.int64), np.asarray(rows["ts"], np.float64),
               np.asarray(rows["labelled"], bool), {}, {})

    def spread(ids, values, fill):
        out = np.full(len(fid), fill, np.float64)
        ids = np.asarray(ids, np.int64)
        at = np.searchsorted(fid[order], ids)
        ok = at < len(fid)
        out[order[at[ok]]] = np.asarray(values, np.float64)[ok]
        return out

    for cls in classes:
        pr = con.execute("SELECT frame_id, value FROM predictions WHERE class = ?",
                         [cls]).fetchnumpy()
        t.predicted[cls] = spread(pr["frame_id"], pr["value"], np.nan)
        de = con.execute("SELECT frame_id, sum(n)::DOUBLE AS n FROM counts WHERE class = ? "
                         "GROUP BY 1", [cls]).fetchnumpy()
        t.detected[cls] = spread(de["frame_id"], de["n"], 0.0) * t.labelled
        row = con.execute("SELECT metrics FROM count_models WHERE active AND class = ? "
                          "ORDER BY model_id DESC LIMIT 1", [cls]).fetchone()
        mae = json.loads(row[0]).get("mae") if row and row[0] else None
        if isinstance(mae, int | float) and math.isfinite(mae):
            t.softness[cls] = max(MIN_SOFTNESS, float(mae))
    return t


def _video_sets(con, pred: p.Predicate | None) -> dict[p.VideoMatch, set[int]]:
    out = {}
    for atom in p.video_matches(pred) if pred is not None else []:
        sql = sq.video_atom_sql(atom)
        out[atom] = set(con.execute(sql.text, sql.params).fetchone()[0] or [])
    return out


_OPS = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
        ">": np.greater, ">=": np.greater_equal}


def _compare(x: np.ndarray, op: str, v: float) -> np.ndarray:
    """round(x) OP v, rounding as the SQL does: floor(x + 0.5)."""
    return _OPS[op](np.floor(x + 0.5), v)


def _soft(x: np.ndarray, op: str, v: float, scale: float = SOFTNESS) -> np.ndarray:
    """A score in (0, 1) that round(x) OP v holds: a logistic step at the threshold, as wide
    as the predictions' typical error `scale`."""
    def above(t):  # round(x) >= t for integer t
        return 1.0 / (1.0 + np.exp(np.clip(-(x - (t - 0.5)) / scale, -50, 50)))

    def below(t):  # round(x) <= t
        return 1.0 - above(t + 1)
    if op == ">=":
        return above(math.ceil(v))
    if op == ">":
        return above(math.floor(v) + 1)
    if op == "<=":
        return below(math.floor(v))
    if op == "<":
        return below(math.ceil(v) - 1)
    eq = above(v) * below(v) if float(v).is_integer() else np.zeros_like(x)
    return eq if op == "=" else 1.0 - eq


def evaluate(pred: p.Predicate, t: _Table, counts: dict[str, np.ndarray] | None,
             videos: dict) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per frame: exact truth (low == high, 0/1) where `counts` are given; with
    counts None, count atoms are unknown (0, 1): frames with high 0 cannot hold, low 1 hold."""
    n = len(t.frame_id)
    if isinstance(pred, p.Compare):
        if counts is None:
            return np.zeros(n), np.ones(n)
        v = _compare(counts[pred.count.cls], pred.op, pred.value).astype(float)
        return v, v
    if isinstance(pred, p.VideoMatch):
        v = np.isin(t.video_id, list(videos[pred])).astype(float)
        return v, v
    if isinstance(pred, p.TimeRange):
        v = ((t.ts >= pred.low) & (t.ts <= pred.high)).astype(float)
        return v, v
    if isinstance(pred, p.TimeCompare):
        v = _OPS[pred.op](t.ts, pred.seconds).astype(float)
        return v, v
    if isinstance(pred, p.Not):
        lo, hi = evaluate(pred.item, t, counts, videos)
        return 1.0 - hi, 1.0 - lo
    parts = [evaluate(item, t, counts, videos) for item in pred.items]
    pick = np.minimum if isinstance(pred, p.And) else np.maximum
    lo, hi = parts[0]
    for a, b in parts[1:]:
        lo, hi = pick(lo, a), pick(hi, b)
    return lo, hi


def proxy_scores(pred: p.Predicate, t: _Table, videos: dict) -> np.ndarray:
    """Soft truth of the predicate under the predicted counts (NaN predictions: 0.5)."""
    n = len(t.frame_id)
    if isinstance(pred, p.Compare):
        x = t.predicted[pred.count.cls]
        scale = t.softness.get(pred.count.cls, SOFTNESS)
        return np.where(np.isnan(x), 0.5, _soft(np.nan_to_num(x), pred.op, pred.value, scale))
    if isinstance(pred, p.Not):
        return 1.0 - proxy_scores(pred.item, t, videos)
    if isinstance(pred, p.And | p.Or):
        parts = [proxy_scores(i, t, videos) for i in pred.items]
        return (np.minimum if isinstance(pred, p.And) else np.maximum).reduce(parts)
    return evaluate(pred, t, None, videos)[0] if n else np.zeros(0)


def _take(t: _Table, idx: np.ndarray) -> _Table:
    return _Table(t.frame_id[idx], t.video_id[idx], t.video[idx], t.frame_index[idx], t.ts[idx],
                  t.labelled[idx], {k: v[idx] for k, v in t.predicted.items()},
                  {k: v[idx] for k, v in t.detected.items()}, t.softness)


def run_verified(store, text: str, recall: float | None = None, precision: float | None = None,
                 error: float | None = None, confidence: float = 0.95,
                 budget: int | None = None, source: str = "best", frames: bool = False,
                 seed: int = 0, detector=None, gap: float | None = None) -> QueryResult:
    """Answer `text` with a guarantee (see the module docstring); runs the detector on at most
    `budget` frames (default DEFAULT_BUDGET) and stores each run as a label."""
    from lensdb.counting.oracle import Oracle
    from lensdb.query.execute import check_classes, check_source

    check_source(source)
    check_targets(recall, precision, error, confidence, budget, source)
    if gap is not None:
        raise QueryError("--gap does not combine with --recall, --precision or --error")
    budget = DEFAULT_BUDGET if budget is None else int(budget)
    query = parse_query(text)
    if error is None and not isinstance(query, p.Selection):
        raise QueryError("--recall and --precision apply to selections; use --error with an "
                         "aggregate")
    if error is not None and not isinstance(query, p.Aggregate):
        raise QueryError("--error applies to aggregates (avg/sum of a count); use --recall or "
                         "--precision with a selection")
    if isinstance(query, p.Selection) and query.limit is not None:
        raise QueryError("LIMIT does not combine with --recall/--precision: the guarantee is "
                         "about the whole selection")
    with store.catalog.connect() as con:
        if not con.execute("SELECT count(*) FROM frames WHERE labelled").fetchone()[0]:
            raise LensDBError("the store has no labelled frames: nothing to verify predictions "
                              "against; ingest with a detector (--detect-every) first")
        query = resolve_query(con, query)  # `video = X` as queries read it (unknown: error)
        classes = check_classes(con, p.count_refs(query), text, source)
        table = _load(con, classes)
        videos = _video_sets(con, query.where)
    oracle = Oracle(store, detector=detector)
    rng = np.random.default_rng(seed)
    if isinstance(query, p.Aggregate):
        return _aggregate(store, query, text, source, classes, table, videos, oracle, error,
                          confidence, budget, rng)
    return _selection(store, query, text, source, classes, table, videos, oracle,
                      recall, precision, confidence, budget, frames, rng)


def _asker(t: _Table, pop: np.ndarray, oracle, classes: list[str]):
    """positions into pop -> (sub-table, true counts per class), labelling through the oracle."""
    def ask(pos: np.ndarray):
        sub = _take(t, pop[np.asarray(pos, np.int64)])
        got = oracle.label(sub.frame_id)
        counts = {cls: np.array([got[int(f)].get(cls, 0) for f in sub.frame_id], np.float64)
                  for cls in classes}
        return sub, counts
    return ask


def _selection(store, query, text, source, classes, t, videos, oracle, recall, precision,
               confidence, budget, frames, rng) -> QueryResult:
    where = query.where
    lo, hi = evaluate(where, t, None, videos)
    holds_known = t.labelled & (evaluate(where, t, t.detected, videos)[0] > 0.5)
    pop = np.flatnonzero((lo < 1) & (hi > 0) & ~t.labelled)
    oracle.check(t.frame_id[pop])  # every source the sample may need, before any run
    ask = _asker(t, pop, oracle, classes)

    def truth(pos):
        sub, counts = ask(pos)
        return evaluate(where, sub, counts, videos)[0] > 0.5
    proxy = proxy_scores(where, t, videos)[pop]
    kind, target = ("recall", recall) if recall is not None else ("precision", precision)
    fn = recall_select if kind == "recall" else precision_select
    sel = fn(proxy, truth, target, confidence, budget, rng)
    chosen = holds_known | (lo >= 1)  # labelled, or holding whatever the counts
    chosen[pop[sel.selected]] = True
    with store.catalog.connect() as con:
        fresh = _load(con, classes)  # with the labels this answer stored
    detector = _detector_name(store)
    words = (f"with probability at least {confidence:.0%}, the {int(chosen.sum())} frames "
             f"returned have {kind} >= {target:g} against the detector ({detector}) over all "
             f"{len(t.frame_id)} frames: SUPG importance sampling on {len(pop)} unlabelled "
             f"frames ({sel.draws} draws, {sel.oracle_calls} frames verified, "
             f"{oracle.calls} detector runs, proxy threshold {sel.threshold:.3g}); "
             f"{int(t.labelled.sum())} labelled frames are known exactly")
    estimate = {"method": f"supg-{kind}", "target": {kind: target}, "confidence": confidence,
                "budget": budget, "sample_size": sel.draws, "verified": sel.oracle_calls,
                "oracle_calls": oracle.calls, "sampled_positives": sel.positives,
                "threshold": _num(sel.threshold), "population": int(len(pop)),
                "labelled_frames": int(t.labelled.sum()), "guarantee": words,
                "note": words + ("; " + "; ".join(sel.notes) if sel.notes else "")}
    table = _frames_table(fresh, chosen, classes) if frames else _moments_table(
        fresh, chosen, classes)
    return QueryResult(text, source, "frames" if frames else "moments", table, estimate)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _detector_name(store) -> str:
    with store.catalog.connect() as con:
        rows = con.execute("SELECT DISTINCT detector_id FROM videos").fetchall()
    return ", ".join(str(r[0]) for r in rows if r[0]) or "the store's detector"


def _best(t: _Table, cls: str) -> np.ndarray:
    return np.where(t.labelled, t.detected[cls], t.predicted[cls])


def _frames_table(t: _Table, chosen: np.ndarray, classes: list[str]) -> pa.Table:
    idx = np.flatnonzero(chosen)
    order = idx[np.lexsort((t.frame_id[idx], t.frame_index[idx], t.video_id[idx],
                            t.video[idx].astype(str)))]
    cols = {"frame_id": t.frame_id[order].tolist(), "video": t.video[order].tolist(),
            "frame_index": t.frame_index[order].tolist(), "time": t.ts[order].tolist(),
            "labelled": t.labelled[order].tolist(), "predicted": (~t.labelled[order]).tolist()}
    types = {"frame_id": pa.int64(), "video": pa.string(), "frame_index": pa.int64(),
             "time": pa.float64(), "labelled": pa.bool_(), "predicted": pa.bool_()}
    for cls in classes:
        cols[f"count({cls})"] = _best(t, cls)[order].tolist()
        types[f"count({cls})"] = pa.float64()
    return make_table(cols, types)


def _moments_table(t: _Table, chosen: np.ndarray, classes: list[str]) -> pa.Table:
    """Runs of consecutive chosen frames of a video (in frame order)."""
    idx = np.flatnonzero(chosen)
    breaks = np.flatnonzero((np.diff(idx) != 1) | (np.diff(t.video_id[idx]) != 0)) + 1
    runs = [r for r in np.split(idx, breaks) if len(r)]
    runs.sort(key=lambda r: (str(t.video[r[0]]), int(t.video_id[r[0]]), float(t.ts[r[0]])))
    cols: dict[str, list[Any]] = {
        "video": [str(t.video[r[0]]) for r in runs], "start": [float(t.ts[r[0]]) for r in runs],
        "end": [float(t.ts[r[-1]]) for r in runs], "frames": [len(r) for r in runs]}
    types = {"video": pa.string(), "start": pa.float64(), "end": pa.float64(),
             "frames": pa.int64()}
    for cls in classes:
        best = _best(t, cls)
        cols[f"mean count({cls})"] = [float(np.nanmean(best[r])) for r in runs]
        types[f"mean count({cls})"] = pa.float64()
    return make_table(cols, types)


def _aggregate(store, query, text, source, classes, t, videos, oracle, error, confidence,
               budget, rng) -> QueryResult:
    aggs = query.aggs
    if len(aggs) != 1 or aggs[0].count is None or aggs[0].func not in ("avg", "sum") or \
            query.by is not None:
        raise QueryError("--error takes one avg(count(...)) or sum(count(...)), optionally "
                         "with WHERE, without BY")
    agg = aggs[0]
    cls = agg.count.cls
    where = query.where
    n = len(t.frame_id)
    if where is None:
        lo, hi = np.ones(n), np.ones(n)
        holds_lab = t.labelled.copy()
        pred_holds = np.ones(n)
    else:
        lo, hi = evaluate(where, t, None, videos)
        holds_lab = t.labelled & (evaluate(where, t, t.detected, videos)[0] > 0.5)
        filled = {k: np.nan_to_num(v) for k, v in t.predicted.items()}
        pred_holds = evaluate(where, t, filled, videos)[0]
    pop = np.flatnonzero((hi > 0) & ~t.labelled)
    oracle.check(t.frame_id[pop])
    ask = _asker(t, pop, oracle, classes)

    def truth(pos):
        sub, counts = ask(pos)
        holds = np.ones(len(pos)) if where is None else evaluate(where, sub, counts, videos)[0]
        return counts[cls] * holds, holds
    x = np.nan_to_num(t.predicted[cls])
    est = mean_with_error(x[pop] * pred_holds[pop], pred_holds[pop], truth, error, confidence,
                          budget, rng, known_num=float((t.detected[cls] * holds_lab).sum()),
                          known_den=float(holds_lab.sum()), kind=agg.func)
    unit = "per frame" if agg.func == "avg" else "per matching frame"
    words = (f"with probability about {confidence:.0%} (CLT interval), {agg.name} lies within "
             f"{est.value:.4g} ± {est.half_width:.3g} against the detector: "
             f"{est.sampled} of {len(pop)} unlabelled frames sampled uniformly and verified "
             f"({oracle.calls} detector runs), predictions as control variates, "
             f"{int(t.labelled.sum())} labelled frames known exactly; asked ± {error:g} {unit}"
             + ("" if est.reached else " — not reached within the budget; raise --budget"))
    estimate = {"method": "control-variates", "target": {"error": error},
                "confidence": confidence, "budget": budget, "sample_size": est.sampled,
                "oracle_calls": oracle.calls, "half_width": _num(est.half_width),
                "reached": est.reached, "rounds": est.rounds, "population": int(len(pop)),
                "labelled_frames": int(t.labelled.sum()), "guarantee": words, "note": words}
    cols: dict[str, list[Any]] = {agg.name: [_num(est.value)],
                                  "±" + agg.name: [_num(est.half_width)],
                                  "frames": [int(round(est.matching))]}
    types = {agg.name: pa.float64(), "±" + agg.name: pa.float64(), "frames": pa.int64()}
    return QueryResult(text, source, "aggregate", make_table(cols, types), estimate)


__all__ = ["DEFAULT_BUDGET", "check_targets", "evaluate", "proxy_scores", "run_verified"]

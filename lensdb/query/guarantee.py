"""Answers with guarantees, as pure functions of proxy scores and an oracle.

SUPG (Kang et al., "Approximate selection with guarantees using proxies", VLDB 2020):
- `recall_select`: importance sampling with weights proportional to sqrt(proxy), mixed
  with uniform (defensive), the oracle on the sample, a proxy threshold tau chosen so that
  the selection {proxy >= tau} keeps at least the recall target with probability at least
  `confidence` (IS-RT: the target is raised to gamma' = UB(mass above) / (UB(mass above) +
  LB(mass below)) with normal bounds at delta/2 each, then tau is the largest threshold whose
  estimated recall reaches gamma').
- `precision_select`: two stages (IS-PT): a first half of the budget bounds the number of
  positives, which caps how far down the proxy order a set of the target precision can
  reach; the second half samples within that cap, and the largest top-k set whose precision
  lower bound (normal, delta split over the candidates) clears the target is returned.
Both then add the sampled positives and drop the sampled negatives, which can only raise
recall and precision.

`mean_with_error`: BlazeIt-style aggregation. Frames are drawn uniformly without
replacement in rounds until the confidence interval's half-width is at most the error asked
for (or the budget ends), with the predictions as control variates; a ratio estimator when
the aggregate has a WHERE (numerator: count where the predicate holds, denominator: the
predicate). Stopping on the interval's width is the usual sequential practice (BlazeIt); the
interval is the CLT one at the stopping time.

An oracle is a callable: positions (int array, unique) -> truth per position.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

MIX = 0.2  # share of the sampling distribution that is uniform (defensive mixing)
MIN_SAMPLES = 10  # fewest samples a precision candidate is judged on


@dataclass
class Selection:
    """What a guaranteed selection returns; positions index the proxy array."""

    selected: np.ndarray  # positions returned (sorted)
    threshold: float  # proxy threshold (selected = proxy >= threshold, +/- sampled frames)
    sampled: np.ndarray  # unique positions the oracle labelled
    draws: int  # samples drawn (with replacement: >= oracle calls)
    positives: int  # sampled positions the oracle said hold
    target: float
    confidence: float
    kind: str  # "recall" | "precision"
    notes: list[str] = field(default_factory=list)

    @property
    def oracle_calls(self) -> int:
        return len(self.sampled)


def _z(delta: float) -> float:
    return NormalDist().inv_cdf(1.0 - delta)


def _bounds(fx: np.ndarray, delta: float) -> tuple[float, float]:
    """One-sided normal (CLT) lower and upper bounds at level delta for the mean of fx."""
    n = len(fx)
    if n == 0:
        return 0.0, 0.0
    mean = float(np.mean(fx))
    half = _z(delta) * float(np.std(fx, ddof=1 if n > 1 else 0)) / math.sqrt(n)
    return mean - half, mean + half


def sampling_weights(proxy: np.ndarray, mix: float | None = None) -> np.ndarray:
    """sqrt(proxy), normalised, mixed with uniform (share `mix`, default MIX); sums to 1."""
    mix = MIX if mix is None else mix
    n = len(proxy)
    root = np.sqrt(np.clip(np.asarray(proxy, np.float64), 0.0, 1.0))
    total = root.sum()
    if total <= 0:
        return np.full(n, 1.0 / n)
    return (1.0 - mix) * root / total + mix / n


def _ask(oracle: Callable, positions: np.ndarray, known: dict[int, bool] | None = None
         ) -> dict[int, bool]:
    """`known` plus the oracle's truth for the positions not in it (asked once each)."""
    known = dict(known or {})
    uniq = np.array([i for i in np.unique(positions).tolist() if i not in known], np.int64)
    if len(uniq):
        truth = np.asarray(oracle(uniq), bool)
        known.update(zip(uniq.tolist(), truth.tolist(), strict=True))
    return known


def _finish(proxy: np.ndarray, tau: float, known: dict[int, bool], draws: int, target: float,
            confidence: float, kind: str, notes: list[str]) -> Selection:
    chosen = proxy >= tau
    for pos, truth in known.items():
        chosen[pos] = truth
    sampled = np.array(sorted(known), np.int64)
    return Selection(np.flatnonzero(chosen), float(tau), sampled, draws,
                     int(sum(known.values())), target, confidence, kind, notes)


def _trivial(proxy, oracle, target, confidence, budget, kind) -> Selection | None:
    """The answer when there is nothing to sample: no frames, or a budget that covers them
    all (the oracle labels every frame and the answer is exact); else None."""
    n = len(proxy)
    if n == 0:
        return Selection(np.zeros(0, np.int64), math.inf, np.zeros(0, np.int64), 0, 0,
                         target, confidence, kind)
    if budget < n:
        return None
    known = _ask(oracle, np.arange(n))
    return _finish(proxy, math.inf, known, n, target, confidence, kind,
                   ["the budget covers every frame: the oracle labelled all, the answer is "
                    "exact"])


def recall_select(proxy: np.ndarray, oracle: Callable, target: float, confidence: float,
                  budget: int, rng: np.random.Generator) -> Selection:
    """SUPG IS-RT; see the module docstring."""
    proxy = np.asarray(proxy, np.float64)
    n = len(proxy)
    trivial = _trivial(proxy, oracle, target, confidence, budget, "recall")
    if trivial is not None:
        return trivial
    delta = 1.0 - confidence
    w = sampling_weights(proxy)
    draws = rng.choice(n, size=budget, replace=True, p=w)
    known = _ask(oracle, draws)
    order = np.argsort(-proxy[draws], kind="stable")
    draws = draws[order]
    labels = np.array([known[int(i)] for i in draws], np.float64)
    mass = labels / (n * w[draws])  # importance-weighted positives
    total = mass.sum()
    if total <= 0:
        return _finish(proxy, -math.inf, known, budget, target, confidence, "recall",
                       ["no sampled frame holds: every frame is returned but those a detector "
                        "run showed do not match, the only selection whose recall the sample "
                        "can vouch for"])
    cum = np.cumsum(mass)
    cut = int(np.searchsorted(cum, target * total - 1e-12))
    left = np.where(np.arange(budget) <= cut, mass, 0.0)
    right = np.where(np.arange(budget) > cut, mass, 0.0)
    upper_left = _bounds(left, delta / 2)[1]
    lower_right = max(_bounds(right, delta / 2)[0], 0.0)
    adjusted = upper_left / (upper_left + lower_right) if upper_left > 0 else 1.0
    if adjusted >= 1.0:
        return _finish(proxy, -math.inf, known, budget, target, confidence, "recall",
                       ["the sample cannot bound the positives below any threshold: every "
                        "frame is returned but those a detector run showed do not match (raise "
                        "--budget for a tighter answer)"])
    cut2 = int(np.searchsorted(cum, adjusted * total - 1e-12))
    tau = float(proxy[draws[min(cut2, budget - 1)]])
    return _finish(proxy, tau, known, budget, target, confidence, "recall",
                   [f"recall target raised to {adjusted:.3f} for the sampling error"])


def precision_select(proxy: np.ndarray, oracle: Callable, target: float, confidence: float,
                     budget: int, rng: np.random.Generator, candidates: int = 20) -> Selection:
    """SUPG IS-PT (two stages); see the module docstring."""
    proxy = np.asarray(proxy, np.float64)
    n = len(proxy)
    trivial = _trivial(proxy, oracle, target, confidence, budget, "precision")
    if trivial is not None:
        return trivial
    delta = 1.0 - confidence
    rank = np.argsort(-proxy, kind="stable")  # position of the r-th highest proxy
    w_rank = np.sqrt(np.clip(proxy[rank], 0.0, 1.0))
    w_rank = w_rank + (w_rank.sum() * MIX / n if w_rank.sum() > 0 else 1.0)
    n1 = budget // 2
    p1 = w_rank / w_rank.sum()
    r1 = rng.choice(n, size=n1, replace=True, p=p1)
    known = _ask(oracle, rank[r1])
    y1 = np.array([known[int(i)] for i in rank[r1]], np.float64)
    pos_upper = _bounds(y1 / (n * p1[r1]), delta / 2)[1] * n
    cap = int(min(n, max(1, math.ceil(pos_upper / target))))
    p2 = w_rank[:cap] / w_rank[:cap].sum()
    r2 = np.sort(rng.choice(cap, size=budget - n1, replace=True, p=p2))
    known = _ask(oracle, rank[r2], known)
    y2 = np.array([known[int(i)] for i in rank[r2]], np.float64)
    sizes = np.unique(np.linspace(MIN_SAMPLES, len(r2), candidates).astype(int))
    sizes = sizes[(sizes >= MIN_SAMPLES) & (sizes <= len(r2))]
    per = delta / 2 / max(1, len(sizes))
    best = 0
    for s in sizes:
        k = int(r2[s - 1]) + 1  # top-k set reaching the s-th sample
        inside = r2 < k
        pk = w_rank[:k] / w_rank[:k].sum()
        fx = y2[inside] / (k * pk[r2[inside]])
        if inside.sum() >= MIN_SAMPLES and _bounds(fx, per)[0] > target:
            best = max(best, k)
    tau = float(proxy[rank[best - 1]]) if best else math.inf
    notes = [f"positives bounded by {pos_upper:.0f}: candidates within the top {cap} frames"]
    if not best:
        notes.append("no candidate set reached the precision target with this budget: only "
                     "the frames the oracle confirmed are returned")
    sel = _finish(proxy, tau, known, budget, target, confidence, "precision", notes)
    if best:  # ties at tau would enlarge the set beyond the one judged: keep the top-k only
        top = np.zeros(n, bool)
        top[rank[:best]] = True
        for pos, truth in known.items():
            top[pos] = truth
        sel.selected = np.flatnonzero(top)
    return sel


@dataclass
class MeanEstimate:
    """A sampled aggregate: value +/- half_width at `confidence`."""

    value: float  # avg over matching frames (or sum, see `kind`)
    half_width: float
    sampled: int  # frames the oracle labelled
    rounds: int
    reached: bool  # half_width <= the error asked for
    matching: float  # estimated number of matching frames (labelled + sampled stratum)
    kind: str  # "avg" | "sum"


def mean_with_error(x_num: np.ndarray, x_den: np.ndarray, oracle: Callable, error: float,
                    confidence: float, budget: int, rng: np.random.Generator,
                    known_num: float = 0.0, known_den: float = 0.0, kind: str = "avg",
                    batch: int = 32) -> MeanEstimate:
    """Estimate avg (or sum) = (known_num + sum num) / (known_den + sum den) over a population
    of frames whose true (num, den) only the oracle knows; x_num/x_den are the predictions
    of num/den for every frame (control variates). oracle(positions) -> (num, den) arrays.
    For sum, `error` is per matching frame (half-width <= error * matching frames)."""
    n = len(x_num)
    z = _z((1.0 - confidence) / 2)
    order = rng.permutation(n)
    taken = 0
    num = np.zeros(0)
    den = np.zeros(0)
    rounds = 0
    value, half, matching = math.nan, math.inf, known_den
    while True:
        if n > 0:
            step = min(batch, n - taken, budget - taken)
            if step > 0:
                a, b = oracle(order[taken:taken + step])
                num, den = np.r_[num, a], np.r_[den, b]
                taken += step
                rounds += 1
        value, half, matching = _cv_estimate(x_num, x_den, order[:taken], num, den,
                                             known_num, known_den, z, kind)
        limit = error * (matching if kind == "sum" else 1.0)
        if half <= limit or taken >= min(n, budget):
            return MeanEstimate(value, half, taken, rounds, bool(half <= limit), matching, kind)


def _cv_estimate(x_num, x_den, pos, num, den, known_num, known_den, z, kind):
    n_pop, n = len(x_num), len(pos)
    if n_pop == 0 or n == 0:
        value = known_num / known_den if kind == "avg" and known_den else (
            known_num if kind == "sum" else math.nan)
        return value, (0.0 if n_pop == 0 else math.inf), known_den

    def controlled(y, x):
        xs = x[pos]
        var = float(np.var(xs))
        c = float(np.cov(y, xs, ddof=0)[0, 1]) / var if n > 1 and var > 1e-12 else 0.0
        return float(y.mean() - c * (xs.mean() - x.mean())), y - c * xs

    mu_num, e_num = controlled(num, x_num)
    mu_den, e_den = controlled(den, x_den)
    tot_num = known_num + n_pop * mu_num
    tot_den = known_den + n_pop * mu_den
    fpc = math.sqrt(max(0.0, 1.0 - n / n_pop))
    if fpc == 0.0:  # the whole population was labelled: exact
        return (tot_num if kind == "sum" else tot_num / tot_den if tot_den > 0 else math.nan,
                0.0, tot_den)

    def sd(e: np.ndarray) -> float:
        return float(np.std(e, ddof=1)) if n > 1 else math.inf

    if kind == "sum":
        return tot_num, z * n_pop * sd(e_num) / math.sqrt(n) * fpc, tot_den
    if tot_den <= 0:
        return math.nan, math.inf, tot_den
    value = tot_num / tot_den
    half = z * n_pop / tot_den * sd(e_num - value * e_den) / math.sqrt(n) * fpc
    return value, half, tot_den


__all__ = ["MeanEstimate", "Selection", "mean_with_error", "precision_select",
           "recall_select", "sampling_weights"]

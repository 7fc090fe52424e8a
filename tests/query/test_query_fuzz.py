"""Property tests: any text either parses or gives a clean QueryError; running queries never
changes the store; random predicates agree with the brute-force evaluation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from query_oracle import VIDEOS, checksum, like

from lensdb.errors import QueryError
from lensdb.query import matching_frame_ids, parse_predicate, parse_query, run_query

FRAGMENTS = [
    "count(person)", "count(car)", "count(dog)", "count(bus)", "count(", ")", "(", ">", ">=",
    "<", "<=", "=", "!=", "<>", "3", "0", "2.5", ".5", "AND", "OR", "NOT", "and", "video",
    "'bikes.mp4'", "LIKE", "'%'", "time", "BETWEEN", "10s", "2m", "250ms", "1h", "LIMIT",
    "GAP", "5s", "avg(", "sum(", "min(", "max(", "frames", "WHERE", "BY", "minute", ",", "*",
    "count(*)", "'", '"', ";", "--", "/*", "*/", "DROP TABLE frames", "'; DROP TABLE frames; --",
    "DELETE FROM counts", "\x00", "é", "人", "😀", "\u202e", "\\", "%", "_", "1e9", "9" * 40,
    "sum(count(car))", "count('x'';DROP TABLE videos;--')", "video = 'x'' OR 1=1 --'",
    "count(person) > 1 LIMIT 3 GAP 1s", "avg(count(person)) BY video", "\n", "\t", "$1", "?",
    "::", "UNION SELECT * FROM meta", "CHECKPOINT", "ATTACH 'x.db'", "PRAGMA",
]
ADVERSARIAL = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=st.sampled_from("count()<>=!'\";-*/ 0123456789.smhANDORNOT%_,\\"),
            max_size=120),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join),
    st.builds(lambda s, k: s * k, st.sampled_from(FRAGMENTS), st.integers(1, 4000)),
)
SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _check_clean(err: QueryError, text: str) -> None:
    assert str(err) and "\n" not in str(err)
    if err.position is not None:
        assert 0 <= err.position <= len(text)
        assert err.caret().count("\n") == 1


@settings(max_examples=3000, **SETTINGS)
@given(ADVERSARIAL)
def test_any_text_parses_or_gives_a_clean_error(text):
    for parse in (parse_query, parse_predicate):
        try:
            parse(text)
        except QueryError as err:
            _check_clean(err, text)


# ---- random well-formed predicates, each with its Python meaning -------------------------

NAMES = ["bikes.mp4", "street_a.mp4", "o'neil st.mp4", "x'; DROP TABLE frames; --", "é😀",
         "%", "b_k%", ""]
STORED = [name for _, name, _ in VIDEOS]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _count_atom(cls, op, n):
    py = {"=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
          ">=": "__ge__"}[op]
    return (f"count({cls}) {op} {n}", lambda f: getattr(f.c(cls), py)(n), [cls])


ATOMS = st.one_of(
    st.builds(_count_atom, st.sampled_from(["person", "car", "dog"]),
              st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), st.integers(0, 6)),
    st.builds(lambda s, neq: (f"video {'!=' if neq else '='} {_quote(s)}",
                              lambda f: (f.video != s) if neq else (f.video == s), []),
              st.sampled_from(STORED), st.booleans()),  # other names: an error (below)
    st.builds(lambda s, neg: (f"video {'NOT ' if neg else ''}LIKE {_quote(s)}",
                              lambda f: like(s, f.video) != neg, []),
              st.sampled_from(NAMES) | st.text(alphabet="ab%_'s.", max_size=6), st.booleans()),
    st.builds(lambda a, b: (f"time BETWEEN {a}ms AND {a + b}ms",
                            lambda f: a / 1000 <= f.ts <= (a + b) / 1000, []),
              st.integers(0, 5000), st.integers(0, 3000)),
)


def _combine(children):
    def and_(a, b):
        return (f"({a[0]}) AND ({b[0]})", lambda f: a[1](f) and b[1](f), a[2] + b[2])

    def or_(a, b):
        return (f"{a[0]} OR {b[0]}", lambda f: a[1](f) or b[1](f), a[2] + b[2])

    def not_(a):
        return (f"NOT ({a[0]})", lambda f: not a[1](f), a[2])

    return st.one_of(st.builds(and_, children, children), st.builds(or_, children, children),
                     st.builds(not_, children))


PREDICATES = st.recursive(ATOMS, _combine, max_leaves=6)


@settings(max_examples=120, **SETTINGS)
@given(PREDICATES, st.sampled_from(["best", "predicted", "detected"]))
def test_random_predicates_match_brute_force(store, oracle, pred, source):
    text, fn, classes = pred
    want = sorted(f.frame_id for f in oracle.select(fn, list(dict.fromkeys(classes)), source))
    assert matching_frame_ids(store, text, source=source).tolist() == want


@settings(max_examples=60, **SETTINGS)
@given(st.sampled_from(NAMES) | st.text(max_size=8), st.booleans())
def test_a_video_name_no_video_has_is_an_error_not_an_empty_answer(store, name, neq):
    """`video = X` / `!=` where X names no stored video (nor the end of a path): a typo must
    not read as a query that matched nothing."""
    paths = ["/videos/" + n for n in STORED]
    tail = "/" + name.replace("\\", "/").strip("/")
    assume(name not in STORED and not any(p == name or (tail != "/" and p.endswith(tail))
                                           for p in paths) and name != "-")
    with pytest.raises(QueryError, match="no video named"):
        matching_frame_ids(store, f"video {'!=' if neq else '='} {_quote(name)}")


QUERIES = st.one_of(
    ADVERSARIAL,
    PREDICATES.map(lambda p: p[0]),
    st.builds(lambda p, n, g: f"{p[0]} LIMIT {n} GAP {g}s", PREDICATES, st.integers(1, 5),
              st.integers(0, 3)),
    st.builds(lambda f, p, by: f"{f}(count(person)) WHERE {p[0]} {by}",
              st.sampled_from(["avg", "min", "max", "sum"]), PREDICATES,
              st.sampled_from(["", "BY video", "BY minute", "BY 2s"])),
)


def test_queries_never_change_the_store(store):
    before = checksum(store)

    @settings(max_examples=250, **SETTINGS)
    @given(QUERIES, st.sampled_from(["best", "predicted", "detected"]), st.booleans())
    def run(text, source, frames):
        try:
            result = run_query(store, text, source=source)
            result.to_dict()
            if result.kind == "moments":
                run_query(store, text, source=source, frames=frames)
        except QueryError as err:
            _check_clean(err, text)

    run()
    for text in FRAGMENTS:
        try:
            run_query(store, text)
        except QueryError as err:
            _check_clean(err, text)
    assert checksum(store) == before

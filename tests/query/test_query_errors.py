"""Errors: the caret position, what was expected, unknown classes, missing predictors."""

from __future__ import annotations

import dataclasses

import pytest

from lensdb.errors import ParameterError, QueryError
from lensdb.query import matching_frame_ids, parse_query, run_query
from lensdb.query import plan as p
from lensdb.query.compile import frames_sql
from lensdb.storage.store import Store

SYNTAX = [
    ("count(person) >> 3", 15, "expected a number"),
    ("count(person) > ", 16, "found the end of the query"),
    ("count person > 3", 6, "'(' after count"),
    ("", 0, "empty query"),
    ("   \n ", 0, "empty query"),
    ("count(person) > 3 AND", 21, "expected count(CLASS), video, time, NOT or '('"),
    ("count(person) > 3 LIMIT 0", 24, "LIMIT needs a whole number"),
    ("count(person) > 3 LIMIT 2.5", 24, "LIMIT needs a whole number"),
    ("count(person) > 3 LIMIT 2 GAP", 29, "a duration after GAP"),
    ("count(person) > 3 GAP 2s", 18, "GAP goes after LIMIT N"),
    ("time BETWEEN 2m AND 10s", 13, "the range is empty"),
    ("video = bikes.mp4", 8, "a quoted video name"),
    ("video = 'bikes.mp4", 8, "unterminated string"),
    ("count(person) > 3; DROP TABLE frames", 17, "unexpected character ';'"),
    ("time > 10x", 9, "unknown unit 'x'"),
    ("time > 1m30", 11, "expected a unit"),
    ("avg(count(person)) BY fortnight", 22, "after BY"),
    ("avg(count(person) > 3)", 18, "')' to close avg("),
    ("sum(count(person)) WHERE", 24, "found the end of the query"),
    ("count(person) > 3 BY video", 18, "AND, OR, LIMIT or the end"),
    ("count() > 1", 6, "a class name"),
    ("count('') > 1", 6, "the class name is empty"),
    ("count(person) > -1", 16, "unexpected character '-'"),
    ("frames BY 0s", 10, "longer than 0s"),
    ("count(person) = 1 OR", 20, "expected count(CLASS)"),
    ("NOT", 3, "expected count(CLASS)"),
    ("video LIKE", 10, "a quoted video name"),
    ("count(person) > 3 LIMIT 5 GAP 1s extra", 33, "the end of the query"),
    ("avg(count(person)), ", 20, "avg, min, max, sum or frames"),
    ("count(person)\n> \t", 17, "a number"),
]


@pytest.mark.parametrize("text,pos,needle", SYNTAX)
def test_syntax_error_position_and_expectation(text, pos, needle):
    with pytest.raises(QueryError) as info:
        parse_query(text)
    err = info.value
    assert needle in str(err)
    assert err.position == pos
    assert "\n" not in str(err)
    query_line, caret_line = err.caret().split("\n")
    assert caret_line == " " * pos + "^"
    assert len(query_line) == len(text)  # whitespace kept in place, on one line


@pytest.mark.parametrize("text,needle", [
    ("(" * 100 + "count(person) > 1" + ")" * 100, "nests deeper"),
    ("NOT " * 100 + "time > 1", "nests deeper"),
    ("time > 1 and " * 1001 + "time > 1", "more than 1000 conditions"),
    ("x" * 30000, "too long"),
    ("count(person) > " + "9" * 400, "number too large"),
])
def test_limits_give_clean_errors(text, needle):
    with pytest.raises(QueryError, match=needle):
        parse_query(text)


@pytest.mark.parametrize("text,pos", [
    ("count(persn) > 1", 6),
    ("count(person) > 1 AND count(  cat) = 0", 30),
    ("avg(count(cat)) BY video", 10),
    ("count('cat') > 1", 7),
])
def test_unknown_class_lists_known_ones(store, text, pos):
    with pytest.raises(QueryError) as info:
        run_query(store, text)
    assert "known classes: bus, car, dog, person" in str(info.value)
    assert info.value.position == pos


def test_an_unknown_class_is_shown_as_typed_and_control_characters_escaped(store):
    with pytest.raises(QueryError, match="unknown class 'vélo'"):
        run_query(store, "count(vélo) > 1")
    with pytest.raises(QueryError, match=r"unknown class 'a\\x1bb'"):
        run_query(store, "count('a\x1bb') > 1")


def test_unknown_class_suggests_case(store):
    with pytest.raises(QueryError, match=r"did you mean 'person'\?"):
        matching_frame_ids(store, "count(Person) > 1")


@pytest.mark.parametrize("source", ["best", "predicted"])
def test_class_without_predictor(store, source):
    with pytest.raises(QueryError) as info:
        run_query(store, "count(person) > 1 AND count(bus) > 0", source=source)
    msg = str(info.value)
    assert "train-counter --classes bus" in msg and "--source detected" in msg
    assert info.value.position == 28
    assert len(run_query(store, "count(bus) > 0", source="detected", frames=True)) > 0


def test_empty_store(tmp_path):
    store = Store.open(tmp_path / "s", create=True)
    with pytest.raises(QueryError, match="no counts yet"):
        run_query(store, "count(person) > 1")
    assert run_query(store, "time > 0").rows == []
    assert run_query(store, "frames").rows == [{"frames": 0}]


def test_bad_options(store):
    with pytest.raises(QueryError, match="unknown source"):
        run_query(store, "count(person) > 1", source="guessed")
    # the Python API names its parameters, not CLI flags (the CLI shows --gap)
    with pytest.raises(ParameterError, match="^frames applies to selections"):
        run_query(store, "avg(count(person))", frames=True)
    with pytest.raises(ParameterError, match="^gap must") as caught:
        run_query(store, "count(person) > 1", gap=-1.0)
    assert caught.value.cli_message().startswith("--gap must")
    with pytest.raises(ParameterError, match="^gap cannot be given"):
        run_query(store, "count(person) > 1 LIMIT 2 GAP 1s", gap=1.0)
    with pytest.raises(QueryError, match="end of the filter"):
        matching_frame_ids(store, "count(person) > 1 LIMIT 3")


def test_plan_is_typed_and_frozen():
    q = parse_query("count(person) > 3 AND NOT video LIKE 'a%' LIMIT 2 GAP 1m")
    assert q == p.Selection(
        p.And((p.Compare(p.CountRef("person"), ">", 3.0), p.Not(p.VideoMatch("LIKE", "a%")))),
        2, 60.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.limit = 3
    agg = parse_query("avg(count(traffic light)), frames WHERE time <= 1h BY 10s")
    assert agg == p.Aggregate((p.Agg("avg", p.CountRef("traffic light")), p.Agg("frames")),
                              p.TimeCompare("<=", 3600.0), p.GroupBy("time", 10.0))
    assert parse_query("time between 1m30s and 2h").where == p.TimeRange(90.0, 7200.0)


def test_user_text_only_in_parameters():
    evil = "x'; DROP TABLE frames; --"
    q = parse_query(f"count('{evil.replace(chr(39), chr(39) * 2)}') > 1 AND video = '{evil}'"
                    .replace("video = 'x'; DROP", "video = 'x''; DROP"))
    sql = frames_sql(q.where, p.classes(q), "best")
    assert "DROP" not in sql.text and "x'" not in sql.text
    assert evil in sql.params and sql.text.count("?") == len(sql.params)


def test_parse_duration_reads_the_languages_durations():
    from lensdb.query.parse import parse_duration

    assert parse_duration("1m30s") == 90 and parse_duration("250ms") == 0.25
    assert parse_duration("2") == 2 and parse_duration(" 2s ") == 2
    for bad in ("", "x", "2s 3", "-1"):
        with pytest.raises(QueryError):
            parse_duration(bad)

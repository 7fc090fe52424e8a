"""The count query language: text -> typed plan -> parameterised DuckDB SQL -> answer.

    from lensdb.query import run_query, matching_frame_ids
    result = run_query(store, "count(person) > 3 AND video LIKE 'street%'")
    result.rows, result.estimate, result.to_dict()
    ids = matching_frame_ids(store, "count(car) = 0 AND time BETWEEN 1m AND 5m")

See `lensdb.query.parse.GRAMMAR` for the grammar and `lensdb query --help` for examples.
"""

from __future__ import annotations

from lensdb.query.execute import known_classes, matching_frame_ids, run_query
from lensdb.query.parse import GRAMMAR, parse_predicate, parse_query
from lensdb.query.result import QueryResult
from lensdb.query.verified import run_verified

__all__ = [
    "GRAMMAR", "QueryResult", "known_classes", "matching_frame_ids", "parse_predicate",
    "parse_query", "run_query", "run_verified",
]

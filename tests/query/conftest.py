"""Fixtures: one store made in code, shared (read-only) by the query tests."""

from __future__ import annotations

import pytest
from query_oracle import Oracle, make_store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("query") / "s")


@pytest.fixture(scope="session")
def oracle(store):
    return Oracle(store)

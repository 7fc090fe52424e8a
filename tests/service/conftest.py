"""Fixtures for the service tests (helpers in service_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_helpers import LiveStream, Server, make_small_store, start_server, stop_server
from web_page import launch_browser, page_opener


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory) -> Iterator[Server]:
    """A server over a store made in code (see make_small_store)."""
    tmp = tmp_path_factory.mktemp("small")
    make_small_store(tmp / "store")
    srv = start_server(tmp)
    yield srv
    stop_server(srv)


@pytest.fixture
def live_stream(tmp_path) -> Iterator[LiveStream]:
    stream = LiveStream(tmp_path)
    yield stream
    stream.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the web tests (web_page.py), one per test module."""
    yield from launch_browser()


@pytest.fixture
def open_page(browser, tmp_path):
    """open_(url) -> a web_page.Page; its screenshots go to the test's tmp folder."""
    yield from page_opener(browser, tmp_path)

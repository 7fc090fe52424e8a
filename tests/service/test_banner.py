"""`lensdb serve`'s first line says what it serves, and that a store is not there yet."""

from __future__ import annotations

import httpx
from service_helpers import make_small_store, start_server, stop_server

NOT_YET = "no store there yet: the first ingest creates it"


def test_serving_a_store_that_is_not_there_yet_says_so(tmp_path):
    srv = start_server(tmp_path)
    try:
        reply = httpx.get(srv.url + "/info", timeout=30)
    finally:
        stop_server(srv)
    banner = (tmp_path / "server.log").read_text().splitlines()[0]
    assert banner.startswith(f"LensDB serving {srv.store} ({NOT_YET}")
    assert reply.status_code >= 400 and "no LensDB store" in reply.json()["error"]
    assert not srv.store.exists()  # answering created nothing


def test_serving_an_existing_store_says_nothing_of_it(tmp_path):
    make_small_store(tmp_path / "store")
    srv = start_server(tmp_path)
    stop_server(srv)
    banner = (tmp_path / "server.log").read_text().splitlines()[0]
    assert banner.startswith(f"LensDB serving {srv.store} on http://") and NOT_YET not in banner

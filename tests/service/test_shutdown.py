"""`lensdb serve` told to stop: a request still waiting (here on a catalog another process
holds) gets a JSON 503 once the shutdown grace runs out, and the server exits then, not when
the request's own wait would have ended (the catalog's 30 s lock timeout)."""

from __future__ import annotations

import threading
import time

import httpx
from service_helpers import make_small_store, start_server, stop_server

from lensdb.service.shutdown import SHUTTING_DOWN
from storage.catalog import Catalog


def test_a_stopping_server_answers_a_stuck_request_with_503_and_exits(tmp_path):
    make_small_store(tmp_path / "store")
    srv = start_server(tmp_path, "--shutdown-grace", "1")
    replies: list[httpx.Response] = []
    try:
        assert httpx.get(srv.url + "/info", timeout=30).status_code == 200
        with Catalog(srv.store / "catalog.duckdb").connect(write=True):
            asking = threading.Thread(
                target=lambda: replies.append(httpx.get(srv.url + "/info", timeout=60)))
            asking.start()
            time.sleep(1.0)  # the request is in, waiting on the catalog lock held here
            stopped_at = time.monotonic()
            srv.proc.terminate()
            srv.proc.wait(20)  # the lock wait alone would keep it up for 30 s
            took = time.monotonic() - stopped_at
            asking.join(10)
    finally:
        if srv.proc.poll() is None:
            stop_server(srv)
    assert took < 20  # uvicorn exits through the SIGTERM it was sent (-15)
    assert replies and replies[0].status_code == 503
    assert replies[0].json() == {"error": SHUTTING_DOWN}
    assert "Traceback" not in (tmp_path / "server.log").read_text()


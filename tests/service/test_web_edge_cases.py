"""The web view in a real headless Chromium against `lensdb serve` over stores made in code
(a store whose source video is missing, a long store), a server that goes away and comes
back, and what the page loads without the token (the last two tests need no browser).

`make browser` installs Chromium; `make test` runs these, `make test-fast` skips them.
Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import (
    Server,
    free_port,
    make_small_store,
    serve_command,
    server_env,
    start_server,
    stop_process,
    stop_server,
    wait_until_up,
)
from web_page import TOKEN, loaded


@pytest.fixture
def small(tmp_path) -> Iterator[Server]:
    make_small_store(tmp_path / "store")  # its video /videos/clip.mp4 does not exist
    srv = start_server(tmp_path)
    yield srv
    stop_server(srv)


@pytest.mark.browser
def test_a_missing_source_video_shows_a_still_with_a_note(small, open_page):
    page = open_page(small.url + "/")
    loaded(page)
    page.query("count(person) >= 2")
    page.page.locator("#answer-table tr.moment").first.click()
    page.page.wait_for_selector("#still:not([hidden])")
    note = page.page.inner_text("#play-note")
    assert "source video is missing" in note
    assert page.page.locator("#player").is_hidden()
    assert httpx.get(small.url + "/videos/1/file", timeout=60).json()["error"].startswith(
        "the source video of clip.mp4 is missing")
    page.page.locator("#player-panel").screenshot(path=str(page.shots / "missing-source.png"))


@pytest.mark.browser
def test_a_server_that_goes_away_is_said_and_retried(tmp_path, open_page):
    make_small_store(tmp_path / "store")
    port = free_port()
    cmd = serve_command("--port", str(port), "--store", str(tmp_path / "store"), "--allow",
                        str(tmp_path), "--log-level", "warning")

    def up() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=server_env(), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        return proc

    proc = up()
    page = open_page(f"http://127.0.0.1:{port}/")
    loaded(page)
    stop_process(proc)
    page.page.wait_for_selector("#banner:not([hidden])", timeout=20_000)
    assert "does not answer" in page.page.inner_text("#banner")
    assert page.page.inner_text("#conn") == "disconnected"
    page.shot("gone-away")
    proc = up()
    try:
        page.page.wait_for_selector("#banner", state="hidden", timeout=20_000)
        assert page.page.inner_text("#conn") == "connected"
        page.query("count(person) >= 2")
        page.page.wait_for_selector("#answer-table tr.moment")
    finally:
        stop_process(proc)


def make_long_store(root: Path, n: int) -> None:
    """One video of `n` frames at 25 fps (about n/90000 hours), every 10th labelled, with
    predictions on every frame: made in SQL, so it is quick."""
    from lensdb.storage.store import Store

    store = Store.open(root, create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("INSERT INTO videos (video_id, name, path, status, fps, width, height, "
                    "duration) VALUES (1, 'long.mp4', '/videos/long.mp4', 'complete', 25, "
                    "640, 360, ?)", [n / 25])
        con.execute("INSERT INTO frames SELECT i, 1, i, i / 25, i % 10 = 0, 0 "
                    "FROM range(?) t(i)", [n])
        con.execute("INSERT INTO counts SELECT i, 'person', (i // 500) % 5 FROM range(?) t(i) "
                    "WHERE i % 10 = 0 AND (i // 500) % 5 > 0", [n])
        con.execute("INSERT INTO predictions SELECT i, 'person', 1, ((i // 500) % 5) + 0.1, "
                    "i % 10 = 0 FROM range(?) t(i)", [n])


@pytest.mark.browser
def test_a_long_store_draws_its_timeline_quickly(tmp_path, open_page):
    make_long_store(tmp_path / "store", 360_000)
    srv = start_server(tmp_path)
    try:
        began = time.monotonic()
        page = open_page(srv.url + "/")
        page.page.wait_for_function("document.querySelector('#tl-info').textContent"
                                    ".includes('360000 frames')", timeout=30_000)
        took = time.monotonic() - began
        sent = page.page.evaluate("state.tl.data.series.person.predicted.t.length")
        assert 0 < sent <= 2000 and took < 15, (sent, took)
        page.shot("long-store")
    finally:
        stop_server(srv)


def test_a_long_store_gets_a_decimated_timeline(tmp_path):
    n = 360_000  # four hours at 25 fps
    make_long_store(tmp_path / "store", n)
    from fastapi.testclient import TestClient

    from lensdb.service.app import create_app

    with TestClient(create_app(tmp_path / "store", allow=[tmp_path])) as client:
        began = time.monotonic()
        r = client.get("/videos/1/timeline", params={"points": 500})
        took = time.monotonic() - began
        body = r.json()
        assert r.status_code == 200, body
        s = body["series"]["person"]
        assert len(s["predicted"]["t"]) <= 500 and len(s["labels"]["t"]) <= 500
        assert len(s["predicted"]["t"]) >= 490  # every bucket has frames
        assert body["frames"] == n and body["labelled_frames"] == n // 10
        assert max(s["labels"]["max"]) == 4 and min(s["predicted"]["min"]) == pytest.approx(0.1)
        assert sum(s["labels"]["frames"]) == n // 10
        assert len(r.content) < 200_000
        assert took < 10, took
        # a zoomed-in window: frames at full resolution
        z = client.get("/videos/1/timeline",
                     params={"start": 100, "end": 104, "points": 500}).json()
        assert len(z["series"]["person"]["predicted"]["t"]) == 101
        bad = client.get("/videos/1/timeline", params={"start": 5, "end": 1})
        assert bad.status_code == 400 and "end" in bad.json()["error"]
        assert client.get("/videos/9/timeline").status_code == 404
        typo = client.get("/videos/1/timeline", params={"classes": "person,unicorn"})
        assert typo.status_code == 400 and "unknown class 'unicorn'" in typo.json()["error"]


def test_the_page_and_its_assets_stay_open_with_a_token(tmp_path):
    """What the page loads holds no data and is served without the token; the API is not."""
    import re

    from fastapi.testclient import TestClient

    from lensdb.service.app import create_app
    from lensdb.service.routes.web import ASSETS

    make_small_store(tmp_path / "store")
    with TestClient(create_app(tmp_path / "store", token=TOKEN, allow=[tmp_path])) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        linked = re.findall(r'(?:src|href)="/web/([^"]+)"', page.text)
        assert sorted(linked) == sorted(ASSETS)  # every asset the page names is served
        for name in linked:
            r = client.get(f"/web/{name}")
            assert r.status_code == 200 and len(r.content) > 500, name
        assert "https://" not in page.text + "".join(client.get(f"/web/{n}").text
                                                     for n in linked)  # no CDN
        for path in ("/info", "/videos/1/timeline", "/videos/1/file", "/query/download?q=x"):
            assert client.get(path).status_code == 401, path
        auth = {"Authorization": f"Bearer {TOKEN}"}
        missing = client.get("/videos/1/file", headers=auth)
        assert missing.status_code == 404 and "missing" in missing.json()["error"]
        assert client.get("/videos/1/clip?start=0&end=1", headers=auth).status_code == 404
        assert client.get("/videos/1/clip?start=0&end=99", headers=auth).status_code == 400
        still = client.get("/videos/1/still?start=0.2&end=0.2", headers=auth).json()
        assert still == {"video_id": 1, "frame_id": 2, "ts": 0.2, "labelled": True,
                         "thumbnail": "/frames/2.jpg", "source_available": False}
        csv = client.get("/query/download", params={"q": "count(person) >= 2"}, headers=auth)
        assert csv.status_code == 200 and csv.text.splitlines()[0].startswith('"video"')
        assert len(csv.text.splitlines()) == 4  # frames 2, 5, 8: three moments
        assert "attachment" in csv.headers["content-disposition"]
        bad = client.get("/query/download", params={"q": "count(person) >="}, headers=auth)
        assert bad.status_code == 400 and bad.json()["caret"].endswith("^")

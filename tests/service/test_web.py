"""The web view in a real headless Chromium (Debian's, driven by Playwright) against real
`lensdb serve` processes on loopback, over a store of the sample video bikes.mp4 ingested
with the offline pair: queries, downloads, playback, the timeline, search, a token, a live
stream. Stores made in code (a missing source video, a long store): test_web_edge_cases.py.

`make browser` installs Chromium; `make test` runs these, `make test-fast` skips them.
Screenshots go to the test's tmp folder (the README's docs/img/web.png is one of them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import LiveStream, Server, server_env, start_server, stop_server
from web_page import TOKEN, loaded

QUERY = "count(car) >= 2"


def lensdb(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lensdb.cli.app", *args], capture_output=True,
                          text=True, timeout=600, check=check, env=server_env())


@pytest.fixture(scope="module")
def bikes_store(tmp_path_factory, bikes, offline_pair) -> Path:
    """bikes.mp4 ingested with the offline pair (labels on every 2nd frame) and counted."""
    root = tmp_path_factory.mktemp("web")
    store = root / "store"
    lensdb("ingest", str(bikes), "--store", str(store), "--detector", offline_pair["detector"],
           "--embedder", offline_pair["embedder"], "--detect-every", "2", "--conf", "0.4")
    lensdb("train-counter", "--store", str(store), "--classes", "car,person")
    return store


@pytest.fixture(scope="module")
def bikes_server(bikes_store) -> Iterator[Server]:
    srv = start_server(bikes_store.parent)
    yield srv
    stop_server(srv)


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_loads_with_no_console_errors(bikes_server, open_page):
    page = open_page(bikes_server.url + "/")
    loaded(page)
    text = page.page.inner_text("#store-panel")
    assert "bikes.mp4" in text and "complete" in text and "250 frames" in text
    assert "car" in page.page.inner_text("#models")  # the count models, with fill-in MAE
    assert "250 frames, 125 labelled" in page.page.inner_text("#tl-info")
    page.page.wait_for_timeout(2500)  # a poll or two
    page.shot("store")
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_query_shows_the_moments_the_cli_gives(bikes_server, bikes_store, open_page):
    cli = json.loads(lensdb("query", QUERY, "--store", str(bikes_store), "--format", "json").stdout)
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.query(QUERY)
    page.page.wait_for_selector("#answer-table tr.moment")
    shown = page.page.eval_on_selector_all(
        "#answer-table tr.moment",
        "rows => rows.map(r => [r.dataset.video, Number(r.dataset.start), Number(r.dataset.end)])")
    assert len(cli["rows"]) >= 3
    assert shown == [[r["video"], r["start"], r["end"]] for r in cli["rows"]]
    words = page.page.inner_text("#estimate")
    precision = cli["estimate"]["precision"]
    assert f"precision {round(precision['value'] * 100)}%" in words
    assert f"on {precision['n']} held-out labelled frames" in words
    page.page.wait_for_function("[...document.querySelectorAll('#answer-table img')]"
                                ".some(i => i.complete && i.naturalWidth > 0)")
    page.page.wait_for_timeout(500)
    page.shot("query", full=True)
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_download_is_what_the_cli_writes(bikes_server, bikes_store, open_page, tmp_path):
    out = tmp_path / "cli.csv"
    lensdb("query", QUERY, "--store", str(bikes_store), "--format", "csv", "--out", str(out))
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.page.click(f"#examples button:text-is('{QUERY}')")  # the README's examples
    page.page.wait_for_selector("#answer-table tr.moment")
    assert page.page.input_value("#q") == QUERY
    with page.page.expect_download() as info:
        page.page.click("#downloads button[data-fmt=csv]")
    got = tmp_path / "page.csv"
    info.value.save_as(got)
    assert got.read_text() == out.read_text()


@pytest.mark.browser
@pytest.mark.slow
def test_a_syntax_error_shows_its_message_under_the_text(bikes_server, open_page):
    bad = "count(car) >= 2 AND"
    api = httpx.get(bikes_server.url + "/query", params={"q": bad}, timeout=60).json()
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.query(bad)
    page.page.wait_for_selector("#query-error:not([hidden])")
    assert page.page.inner_text("#query-error-msg") == api["error"]
    caret = page.page.inner_text("#query-caret").splitlines()
    assert caret[0] == bad and caret[1].index("^") == api["position"]
    assert page.page.locator("#answer-table").count() == 0
    page.shot("syntax-error")


@pytest.mark.browser
@pytest.mark.slow
def test_clicking_a_moment_plays_it_with_boxes(bikes_server, bikes_store, open_page):
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.query(QUERY)
    row = page.page.locator("#answer-table tr.moment").nth(1)
    row.wait_for()
    start = float(row.get_attribute("data-start"))
    row.click()
    page.page.wait_for_function("(() => { const v = document.querySelector('#player');"
                                " return v.currentTime > 0 && !v.paused; })()", timeout=30_000)
    t = page.page.evaluate("document.querySelector('#player').currentTime")
    assert abs(t - start) < 0.6, (t, start)
    # paused on a labelled frame with cars, the overlay draws its boxes
    boxes = httpx.get(f"{bikes_server.url}/videos/0/boxes",
                      params={"start": start, "end": start + 2}, timeout=60).json()["frames"]
    labelled = next(f for f in boxes if f["boxes"])
    page.page.evaluate(f"(() => {{ const v = document.querySelector('#player'); v.pause();"
                       f" v.currentTime = {labelled['ts']}; }})()")
    page.page.wait_for_timeout(800)
    drawn = page.page.evaluate(
        "(() => { const c = document.querySelector('#overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })()")
    assert drawn > 100
    page.page.locator("#player-panel").screenshot(path=str(page.shots / "play.png"))
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_the_timeline_hovers_zooms_and_refetches(bikes_server, open_page):
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.query(QUERY)
    page.page.wait_for_selector("#answer-table tr.moment")
    canvas = page.page.locator("#timeline")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    tip = page.page.inner_text("#tl-tip")
    assert "car: predicted" in tip and "person: predicted" in tip and "±" in tip
    whole = page.page.evaluate("state.tl.data.bucket_seconds")
    for _ in range(6):
        page.page.mouse.wheel(0, -100)  # zoom in around the cursor
    page.page.wait_for_function(f"state.tl.data.bucket_seconds < {whole} / 2")
    view = page.page.evaluate("[state.tl.data.start, state.tl.data.end]")
    assert 0 < view[1] - view[0] < 5
    page.page.click("#tl-reset")
    page.page.wait_for_function(f"Math.abs(state.tl.data.bucket_seconds - {whole}) < 1e-6")
    # the README's picture: a query, its moments shaded, one playing with boxes, a search
    page.page.fill("#search-like", "36")
    page.page.click("#search-form button[type=submit]")
    page.page.locator("#answer-table tr.moment").nth(1).click()
    page.page.wait_for_function("document.querySelector('#player').currentTime > 0")
    page.page.evaluate("(() => { const v = document.querySelector('#player'); v.pause();"
                       " v.currentTime = 2.0; })()")
    page.page.locator("#search-panel").scroll_into_view_if_needed()
    page.page.wait_for_function("[...document.querySelectorAll('#search-grid img')]"
                                ".filter(i => i.complete && i.naturalWidth > 0).length == 8")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.page.evaluate("window.scrollTo(0, 0)")
    page.page.wait_for_timeout(800)
    page.shot("overview", full=True)
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_search_shows_k_thumbnails(bikes_server, open_page, tmp_path):
    page = open_page(bikes_server.url + "/")
    loaded(page)
    page.page.fill("#search-like", "36")
    page.page.fill("#search-k", "6")
    page.page.click("#search-form button[type=submit]")
    cards = page.page.locator("#search-grid .thumb-card")
    cards.first.wait_for(timeout=30_000)
    assert cards.count() == 6
    page.page.locator("#search-panel").scroll_into_view_if_needed()  # thumbnails load lazily
    page.page.wait_for_function("[...document.querySelectorAll('#search-grid img')]"
                                ".filter(i => i.complete && i.naturalWidth > 0).length == 6",
                                timeout=30_000)
    # by an uploaded image, with a where filter
    jpeg = tmp_path / "frame.jpg"
    shot = httpx.get(f"{bikes_server.url}/frames/120.jpg?boxes=false", timeout=60)
    jpeg.write_bytes(shot.content)
    page.page.fill("#search-like", "")
    page.page.fill("#search-k", "4")
    page.page.fill("#search-where", "count(car) >= 1")
    page.page.set_input_files("#search-image", str(jpeg))
    page.page.click("#search-form button[type=submit]")
    page.page.wait_for_function("document.querySelectorAll('#search-grid .thumb-card').length"
                                " == 4", timeout=30_000)
    assert "4.80s" in cards.first.inner_text()  # frame 120 (25 fps) finds itself first
    cards.first.click()  # a hit plays too
    page.page.wait_for_function("document.querySelector('#player').currentTime > 4.3",
                                timeout=30_000)
    page.shot("search", full=True)
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_with_a_token_the_page_asks_for_it(bikes_store, open_page):
    srv = start_server(bikes_store.parent, "--token", TOKEN)
    try:
        assert httpx.get(srv.url + "/info", timeout=60).status_code == 401
        assert httpx.get(srv.url + "/videos/0/file", timeout=60).status_code == 401
        # the page itself holds no data
        assert httpx.get(srv.url + "/", timeout=60).status_code == 200
        page = open_page(srv.url + "/")
        dialog = page.page.locator("#token-dialog")
        dialog.wait_for(state="visible")
        page.shot("token")
        page.page.fill("#token-input", "wrong")
        page.page.click("#token-form button")
        page.page.wait_for_function("document.querySelector('#token-error').textContent"
                                    ".includes('refused')")
        page.page.fill("#token-input", TOKEN)
        page.page.click("#token-form button")
        loaded(page)
        assert page.page.evaluate("sessionStorage.getItem('lensdb.token')") == TOKEN
        page.query(QUERY)
        row = page.page.locator("#answer-table tr.moment").first
        row.wait_for()
        start = float(row.get_attribute("data-start"))
        row.click()  # with a token the page plays a clip fetched with the token
        page.page.wait_for_function("document.querySelector('#player').currentTime > 0")
        t = page.page.evaluate("state.play.offset + document.querySelector('#player')"
                               ".currentTime")
        assert abs(t - start) < 0.6
    finally:
        stop_server(srv)


@pytest.mark.browser
@pytest.mark.slow
def test_a_live_stream_updates_the_page_while_it_is_ingested(tmp_path, open_page,
                                                              offline_pair):
    stream = LiveStream(tmp_path)
    srv = start_server(tmp_path)
    try:
        page = open_page(srv.url + "/")
        page.page.wait_for_selector("#store-summary:has-text('no LensDB store')")
        page.page.fill("#ingest-source", stream.url)  # started from the page's form
        page.page.fill("#ingest-detector", offline_pair["detector"])
        page.page.fill("#ingest-embedder", offline_pair["embedder"])
        page.page.fill("#ingest-options", "batch_size=8 codec_train_size=8")
        page.page.click("#ingest-form button[type=submit]")
        page.page.wait_for_selector("#jobs .job:has-text('running')", timeout=30_000)

        shown = "state.tl.data ? state.tl.data.frames : 0"  # what the timeline was sent
        page.page.wait_for_function(f"{shown} > 0", timeout=60_000)
        first = page.page.evaluate(shown)
        # the page polls; nobody reloads it: the timeline and the store panel grow
        page.page.wait_for_function(f"{shown} > {first} + 20", timeout=30_000)
        n, info = page.page.evaluate(f"[{shown}, document.querySelector('#tl-info').textContent]")
        assert f"{n} frames" in info
        assert "live" in page.page.inner_text("#jobs")
        page.shot("live")
        page.page.click("#jobs button:has-text('Stop')")
        page.page.wait_for_selector("#jobs .job:has-text('stopped')", timeout=40_000)
        assert not stream.done.is_set(), "the stream ended on its own"
    finally:
        stop_server(srv)
        stream.close()

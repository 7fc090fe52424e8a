"""A real `lensdb serve` process and a real HTTP client: ingest jobs while queries answer,
a live stream seen before it ends and stopped, the allow-list, JSON errors."""

from __future__ import annotations

import shutil
import time
import urllib.parse

import pytest
from service_helpers import OFFLINE, wait_for

FINAL = ("done", "stopped", "failed")


def test_a_request_line_of_480_kb_gets_the_apps_json_answer(small_server):
    # a search text and a WHERE one character over their limits, 4-byte characters
    # percent-encoded: 480 KB of request line. uvicorn's h11 gives up on a request head of
    # about 100-200 KB by default (a reset or a plain-text 400, which no schema declares)
    import socket

    host, port = urllib.parse.urlsplit(small_server.url).netloc.split(":")
    from lensdb.query.lexer import MAX_QUERY_CHARS

    long = urllib.parse.quote("\U0001f697" * (MAX_QUERY_CHARS + 1))
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"GET /search?q={long}&where={long} HTTP/1.1\r\nHost: {host}\r\n"
                     "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422"), head[:200]
    assert b"content-type: application/json" in head.lower()
    assert b'"error"' in body


@pytest.mark.slow
def test_ingest_job_while_queries_answer(server, bikes):
    shutil.copy(bikes, server.allowed / "bikes.mp4")
    with server.client() as http:
        r = http.post("/ingest", json={"path": "bikes.mp4", "options": {
            **OFFLINE, "batch_size": 16, "codec_train_size": 32}})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] in ("queued", "running")
        seen = []  # (job state before the query, frames the query saw)
        while job["state"] not in FINAL:
            q = http.get("/query", params={"q": "time >= 0s", "frames": "true"})
            if q.status_code == 200:
                seen.append((job["state"], len(q.json()["rows"])))
            else:  # before the first commit the store may not exist yet
                assert q.status_code == 400 and "error" in q.json(), q.text
            job = http.get(f"/jobs/{job['id']}").json()
            time.sleep(0.05)
        assert job["state"] == "done", job
        assert job["frames"] == 250 and job["frames_per_second"] > 0 and job["error"] is None
        partial = [n for state, n in seen if state == "running" and 0 < n < 250]
        assert partial, f"no query saw a partly ingested video: {seen}"
        info = http.get("/info").json()
        assert info["frames"] == 250 and info["videos"][0]["name"] == "bikes.mp4"
        counted = http.get("/query", params={"q": "count(car) >= 1", "source": "detected"})
        assert counted.status_code == 200 and counted.json()["kind"] == "moments"
        hits = http.get("/search", params={"like": 100, "k": 5, "where": "time >= 8s"}).json()
        assert len(hits["hits"]) == 5 and all(h["ts"] >= 8 for h in hits["hits"])
        jpeg = http.get(hits["hits"][0]["thumbnail"])
        assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
        assert jpeg.content[:2] == b"\xff\xd8"
        found = http.post("/search", params={"k": 3}, content=jpeg.content,
                          headers={"content-type": "image/jpeg"})
        assert found.status_code == 200 and len(found.json()["hits"]) == 3
        text = http.get("/search", params={"q": "a cyclist", "k": 3})
        assert text.status_code == 400 and "no text side" in text.json()["error"]


def test_bad_requests_get_json_4xx(small_server):
    server = small_server
    with server.client() as http:
        cases = [
            (http.get("/query", params={"q": "count(car"}), 400),
            (http.get("/query"), 422),
            (http.get("/query", params={"q": "time >= 0s", "source": "guess"}), 400),
            (http.get("/jobs/nope"), 404),
            (http.delete("/jobs/nope"), 404),
            (http.get("/frames/999999999.jpg"), 404),
            (http.put("/query"), 405),
            (http.get("/search", params={"k": 0, "like": 1}), 422),
            (http.get("/search", params={"k": 3}), 400),
            (http.post("/search", content=b"not an image"), 400),
            (http.post("/ingest", json={}), 400),
            (http.post("/ingest", json={"path": "a.mp4", "url": "http://x/y"}), 400),
            (http.post("/ingest", json={"path": "a.mp4", "options": {"bogus": 1}}), 422),
            (http.post("/ingest", json={"path": "a.mp4", "options": {"stride": 0}}), 400),
            (http.post("/ingest", json={"path": "missing.mp4"}), 400),
            (http.post("/ingest", content=b"{not json", headers={
                "content-type": "application/json"}), 422),
        ]
        for r, status in cases:
            assert r.status_code == status, (r.request.url, r.text)
            assert r.json()["error"], r.text
            assert "Traceback" not in r.text
        caret = http.get("/query", params={"q": "count(car"}).json()
        assert caret["position"] == 9
        stride = http.post("/ingest", json={"path": "a.mp4", "options": {"stride": 0}})
        assert "stride" in stride.json()["error"]


@pytest.mark.slow
def test_a_broken_file_fails_its_job_with_a_message(server):
    (server.allowed / "broken.mp4").write_bytes(b"this is not a video" * 100)
    with server.client() as http:
        job = http.post("/ingest", json={"path": "broken.mp4", "options": OFFLINE}).json()
        job = wait_for(lambda: (j := http.get(f"/jobs/{job['id']}").json())["state"] in FINAL
                       and j)
    assert job["state"] == "failed" and "broken.mp4" in job["error"]


@pytest.mark.slow
def test_live_stream_is_queried_before_it_ends_then_stopped(server, live_stream):
    with server.client() as http:
        r = http.post("/ingest", json={"url": live_stream.url, "options": {
            **OFFLINE, "batch_size": 8, "codec_train_size": 8}})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        q = {"q": f"video = '{live_stream.url}'", "frames": "true"}

        def frames_seen() -> int:
            r = http.get("/query", params=q)
            return len(r.json()["rows"]) if r.status_code == 200 else 0

        seen = wait_for(frames_seen, timeout=60, every=0.2)
        assert seen > 0 and not live_stream.done.is_set(), "the stream ended first"
        job = http.get(f"/jobs/{job_id}").json()
        assert job["state"] == "running" and job["frames"] > 0
        assert http.delete(f"/jobs/{job_id}").json()["state"] in ("stopping", "stopped")
        job = wait_for(lambda: (j := http.get(f"/jobs/{job_id}").json())["state"] in FINAL
                       and j, timeout=40)
        assert job["state"] == "stopped", job
        assert not live_stream.done.is_set(), "the stream ended on its own"
        after = frames_seen()
        assert after >= seen  # what was committed stays
        time.sleep(1.0)  # and nothing more arrives once stopped
        assert frames_seen() == after


def test_paths_outside_allow_are_refused(server, bikes, tmp_path):
    (server.allowed / "inside.mp4").write_bytes(b"x")
    outside = tmp_path / "outside.mp4"
    shutil.copy(bikes, outside)
    (server.allowed / "link.mp4").unlink(missing_ok=True)
    (server.allowed / "link.mp4").symlink_to(outside)
    (server.allowed / "linkdir").unlink(missing_ok=True)
    (server.allowed / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    rel = "../" * 12 + str(outside).lstrip("/")
    with server.client() as http:
        for body in ({"path": str(outside)}, {"path": rel}, {"path": "link.mp4"},
                     {"path": "linkdir/outside.mp4"}, {"path": "linkdir/*.mp4"},
                     {"path": "*.mp4"}, {"paths": ["inside.mp4", str(outside)]},
                     {"path": "-"}, {"path": f"file://{outside}"},
                     {"path": "/etc/*"}):
            r = http.post("/ingest", json=body)  # "*.mp4" matches the symlink too
            assert r.status_code == 403, (body, r.text)
            assert "outside" in r.json()["error"] or "stdin" in r.json()["error"] \
                or "not a local path" in r.json()["error"]
        r = http.post("/ingest", json={"url": f"file://{outside}"})
        assert r.status_code == 403
        assert all(j["sources"] != [str(outside)] for j in http.get("/jobs").json()["jobs"])


def test_query_names_with_quotes_are_parameters_not_sql(small_server):
    name = urllib.parse.quote("video LIKE 'x''; DROP TABLE frames; --' OR time >= 0s")
    with small_server.client() as http:
        r = http.get(f"/query?q={name}")
        assert r.status_code == 200 and r.json()["rows"][0]["frames"] == 10, r.text
        r = http.get("/query", params={"q": "video = 'x''; DROP TABLE frames; --'"})
        assert r.status_code == 400 and "no video named 'x'; DROP" in r.json()["error"]
        r = http.get("/query", params={"q": "time >= 0s", "frames": "true"})  # table intact
        assert r.status_code == 200 and len(r.json()["rows"]) == 10, r.text

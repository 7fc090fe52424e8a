"""What a request may make the server open: model files, listeners, request sizes.

In-process (Starlette's TestClient over the real app) and without the lifespan, so no
job ever starts: an accepted request is a queued job whose options show what the
child would be given.
"""

from __future__ import annotations

import os
import pickle
import socket

import pytest
from fastapi.testclient import TestClient

from lensdb.errors import LensDBError
from lensdb.models.resolve import resolve_detector, resolve_embedder
from lensdb.service.app import create_app
from lensdb.service.policy import MAX_SOURCES, PathPolicy, PathRefused


class Planted:
    """Unpickling this writes a marker file: proof that a loader ran a planted file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def api(tmp_path, monkeypatch):
    """An app whose allowed root is `videos/`, started in a working directory `cwd/`
    where an attacker planted model files."""
    videos, cwd, cache = tmp_path / "videos", tmp_path / "cwd", tmp_path / "cache"
    for d in (videos, cwd, cache):
        d.mkdir()
    (videos / "a.mp4").write_bytes(b"x")
    marker = tmp_path / "pwned"
    for name in ("w.PT", "x.Onnx", "weights", "yolo11n.pt"):
        (cwd / name).write_bytes(pickle.dumps(Planted(str(marker))))
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("LENSDB_CACHE", str(cache))
    app = create_app(tmp_path / "store", allow=[videos])
    client = TestClient(app, raise_server_exceptions=False)
    client.videos, client.cwd, client.marker = videos, cwd, marker
    return client


def post(api, body) -> tuple[int, dict]:
    r = api.post("/ingest", json=body)
    return r.status_code, r.json()


@pytest.mark.parametrize("spec", ["w.PT", "x.Onnx", "./w.PT", "W.pt", "../cwd/w.PT"])
def test_a_planted_detector_file_is_refused(api, spec):
    status, body = post(api, {"path": "a.mp4", "options": {"detector": spec}})
    assert status in (400, 403), body
    assert "error" in body and not api.marker.exists()


def test_a_planted_clip_checkpoint_is_refused_or_never_read(api):
    status, body = post(api, {"path": "a.mp4", "options": {"embedder": "clip:ViT-B-32:./weights"}})
    assert status == 403 and "outside" in body["error"], body
    # A bare word is a hub tag, never a file: the loader refuses an unknown tag without
    # looking at the file of that name in the working directory.
    assert resolve_embedder("clip:ViT-B-32:weights").source == "hub"
    with pytest.raises(LensDBError, match="not a pretrained tag"):
        from lensdb.models.registry import get_embedder

        get_embedder("clip:ViT-B-32:weights")
    assert not api.marker.exists()


def test_a_name_that_is_also_a_file_is_ambiguous(api):
    status, body = post(api, {"path": "a.mp4", "options": {"detector": "yolo11n.pt"}})
    assert status == 403 and "ambiguous" in body["error"], body
    assert resolve_detector("yolo11n.pt").ambiguous
    os.remove(api.cwd / "yolo11n.pt")
    status, body = post(api, {"path": "a.mp4", "options": {"detector": "yolo11n.pt"}})
    assert status == 202 and body["options"]["detector"] == "yolo11n", body


def test_an_allowed_model_file_reaches_the_job_by_its_real_path(api):
    weights = api.videos / "mine.PT"
    weights.write_bytes(b"x")
    (api.videos / "link.pt").symlink_to(weights)
    link = str(api.videos / "link.pt")
    status, body = post(api, {"path": "a.mp4", "options": {"detector": link}})
    assert status == 202, body
    assert body["options"]["detector"] == os.path.realpath(weights)
    (api.videos / "escape.pt").symlink_to(api.cwd / "w.PT")
    status, body = post(api, {"path": "a.mp4",
                              "options": {"detector": str(api.videos / "escape.pt")}})
    assert status == 403, body


def test_the_model_cache_is_allowed(api, tmp_path):
    cached = tmp_path / "cache" / "ultralytics" / "custom.pt"
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    status, body = post(api, {"path": "a.mp4", "options": {"detector": str(cached)}})
    assert status == 202 and body["options"]["detector"] == str(cached), body


@pytest.mark.parametrize("field,value", [
    ("path", "tcp://127.0.0.1:18555?listen=1"),
    ("path", "udp://127.0.0.1:18556"),
    ("path", "TCP://127.0.0.1:18555?listen=1"),
    ("path", "pipe:0"),
    ("path", "http://example.com/a.mp4"),
    ("paths", ["a.mp4", "tcp://127.0.0.1:18555?listen=1"]),
    ("url", "tcp://127.0.0.1:18555?listen=1"),
    ("url", "udp://127.0.0.1:18556"),
    ("url", "file:///etc/passwd"),
    ("url", "rtsp://127.0.0.1:18557/s?listen=1"),
    ("url", "rtmp://127.0.0.1/app?listen=1"),
    ("url", "http://127.0.0.1/a b"),
    ("url", "http:///nohost"),
])
def test_no_listener_and_no_protocol_through_a_request(api, field, value):
    status, body = post(api, {field: value})
    assert status == 403, body
    for port in (18555, 18556):  # nothing was bound: the ports are still free
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
    assert api.get("/jobs").json()["jobs"] == []


def test_listed_urls_pass(api):
    for url in ("http://camera.local/live.ts?token=abc", "https://h/x.m3u8",
                "rtsp://cam.local:8554/stream", "rtsps://cam/s", "rtmp://h/app/key"):
        status, body = post(api, {"url": url})
        assert status == 202 and body["sources"] == [url], body


def test_a_huge_body_is_refused_without_reading_or_echoing_it(api):
    r = api.post("/ingest", json={"path": "v" * (50 << 20)})
    assert r.status_code == 413 and len(r.content) < 300, r.text[:300]

    def chunks():  # no Content-Length: the cap holds while the body streams
        yield b'{"path": "'
        for _ in range(150):
            yield b"v" * (64 << 10)
        yield b'"}'

    r = api.post("/ingest", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and len(r.content) < 300


def test_long_values_are_not_echoed(api):
    long = "/" + "p" * 4000 + ".mp4"
    status, body = post(api, {"path": long})
    assert status == 403 and len(body["error"]) < 300, body
    status, body = post(api, {"path": "q" * 8000})
    assert status == 422 and len(str(body)) < 2000 and "qqqq" * 50 not in str(body)
    r = api.get("/query", params={"q": "count(" + "x" * 3000})
    assert r.status_code == 400 and len(r.json()["error"]) <= 500


def test_a_request_of_200000_paths_is_refused_at_once(api):
    status, body = post(api, {"paths": ["a.mp4"] * 200_000})
    assert status == 422 and "1000" in str(body), str(body)[:300]


def test_paths_per_request_are_capped(api):
    status, body = post(api, {"paths": ["a.mp4"] * (MAX_SOURCES + 1)})
    assert status == 422, body
    status, body = post(api, {"paths": ["a.mp4"] * 3})
    assert status == 202 and len(body["sources"]) == 3


def test_a_glob_over_too_many_files_is_refused(tmp_path):
    for i in range(MAX_SOURCES + 1):
        (tmp_path / f"{i}.mp4").touch()
    with pytest.raises(LensDBError, match="more than"):
        PathPolicy([tmp_path]).resolve("*.mp4")
    with pytest.raises(PathRefused):
        PathPolicy([tmp_path]).resolve("tcp://x:1")


def test_errors_are_declared_and_405_says_allow(api):
    spec = api.get("/openapi.json").json()
    ingest = spec["paths"]["/ingest"]["post"]["responses"]
    assert {"202", "400", "403", "413", "422"} <= set(ingest)
    assert "ErrorBody" in str(ingest["403"])
    assert {"200", "404"} <= set(spec["paths"]["/jobs/{job_id}"]["get"]["responses"])
    r = api.put("/ingest")
    assert r.status_code == 405 and "POST" in r.headers.get("allow", ""), r.headers


# ---- found by a review of the HTTP API (session 14) ----------------------------------------

@pytest.mark.parametrize("spec", ["/etc/passwd", "/etc/nonexistent", "~/.ssh/id_rsa"])
def test_a_bare_embedder_path_outside_the_roots_is_refused_before_a_look(api, spec):
    """Before, an existing file and a missing one got different messages (a file probe)."""
    status, body = post(api, {"path": "a.mp4", "options": {"embedder": spec}})
    assert status == 403 and "outside the allowed directories" in body["error"], body


def test_a_request_may_not_name_a_ray_cluster(api):
    status, body = post(api, {"path": "a.mp4", "options": {"engine": "ray",
                                                           "address": "10.1.2.3:6379"}})
    assert status == 403 and "Ray cluster" in body["error"], body


def test_urls_with_credentials_are_refused_and_schemes_match_any_case(api):
    status, body = post(api, {"url": "https://user:pw@example.com/a.mp4"})
    assert status == 403 and "user name or password" in body["error"], body
    assert PathPolicy.check_url("HTTP://example.com/a.mp4?x=1") == "http://example.com/a.mp4?x=1"
    status, body = post(api, {"url": "HTTP://example.com/a.mp4"})
    assert status == 202 and body["sources"] == ["http://example.com/a.mp4"], body


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(api):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((7000, 6000), np.uint8)).save(buf, "PNG")  # 42 MP, ~40 KB
    r = api.post("/search", content=buf.getvalue(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and "megapixels" in r.json()["error"], r.text


def test_without_a_token_only_loopback_host_names_are_answered(tmp_path):
    from lensdb.service.app import LOOPBACK_HOSTS

    app = create_app(tmp_path / "store", allow=[tmp_path], hosts=LOOPBACK_HOSTS)
    for base, ok in (("http://127.0.0.1:8000", True), ("http://localhost", True),
                     ("http://evil.example", False), ("http://127.0.0.1.evil.example", False)):
        r = TestClient(app, base_url=base, raise_server_exceptions=False).get("/health")
        assert (r.status_code == 200) == ok and (ok or "not this server's name" in r.text), base


def test_a_link_put_at_a_recorded_video_path_is_not_followed(tmp_path):
    from lensdb.errors import VideoError
    from lensdb.videos import recorded_file

    outside, recorded = tmp_path / "secret.txt", tmp_path / "clip.mp4"
    outside.write_text("secret")
    recorded.write_bytes(b"video")
    assert recorded_file(str(recorded)) == str(recorded)
    recorded.unlink()
    recorded.symlink_to(outside)
    with pytest.raises(VideoError, match="now leads to another file"):
        recorded_file(str(recorded))

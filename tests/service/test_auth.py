"""Bind policy, bearer tokens and the path allow-list: unit tests and real servers."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from service_helpers import (
    free_port,
    serve_command,
    server_env,
    start_server,
    stop_server,
    wait_until_up,
)

from lensdb.errors import LensDBError
from lensdb.service.auth import bearer_ok, is_loopback
from lensdb.service.policy import PathPolicy, PathRefused


def test_loopback_detection():
    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.com", "10.0.0.1", ""):
        assert not is_loopback(host), host


def test_bearer_comparison():
    assert bearer_ok("Bearer s3cret", "s3cret")
    assert bearer_ok("bearer  s3cret ", "s3cret")
    for header in (None, "", "s3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cretx",
                   "Bearer"):
        assert not bearer_ok(header, "s3cret"), header


def test_path_policy(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.mp4").write_bytes(b"x")
    (root / "sub" / "b.mp4").write_bytes(b"x")
    (outside / "c.mp4").write_bytes(b"x")
    (root / "link.mp4").symlink_to(outside / "c.mp4")
    (root / "out").symlink_to(outside, target_is_directory=True)
    policy = PathPolicy([root])
    assert policy.resolve("a.mp4") == [str(root / "a.mp4")]
    assert policy.resolve(str(root / "sub" / "../a.mp4")) == [str(root / "a.mp4")]
    assert policy.resolve("sub/*.mp4") == [str(root / "sub" / "b.mp4")]
    assert policy.check_url("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    for raw in (str(outside / "c.mp4"), "../outside/c.mp4", "link.mp4", "out/c.mp4",
                "out/*", "*.mp4", "sub/../../outside/c.mp4", "/etc/passwd", "-",
                "file:a.mp4", "ftp://host/a.mp4", "a.mp4\x00.txt", "rtsp://cam.local/stream",
                "tcp://127.0.0.1:18555?listen=1", "udp://0.0.0.0:1234", "pipe:0"):
        with pytest.raises(PathRefused):
            policy.resolve(raw)
    with pytest.raises(LensDBError, match="no such file"):
        policy.resolve("missing.mp4")
    with pytest.raises(LensDBError, match="directory"):
        policy.resolve("sub")
    with pytest.raises(LensDBError, match="not a directory"):
        PathPolicy([root / "a.mp4"])


def test_refuses_a_public_bind_without_a_token():
    for host in ("0.0.0.0", "::"):
        r = subprocess.run(serve_command("--host", host, "--port", str(free_port())),
                           capture_output=True, text=True, timeout=60, env=server_env())
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "token" in lines[0], r.stderr
    r = subprocess.run(serve_command("--port", str(free_port()), "--allow", "/nonexistent"),
                       capture_output=True, text=True, timeout=60, env=server_env())
    assert r.returncode == 2 and "not a directory" in r.stderr


def test_a_token_from_the_environment_counts(tmp_path):
    """LENSDB_TOKEN allows a public bind; the server then answers only with the bearer."""
    port = free_port()
    env = {**server_env(), "LENSDB_TOKEN": "from-env"}
    proc = subprocess.Popen(serve_command("--host", "0.0.0.0", "--port", str(port), "--store",
                                          str(tmp_path / "store"), "--allow", str(tmp_path)),
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        url = f"http://127.0.0.1:{port}/health"
        assert httpx.get(url, timeout=60).status_code == 401
        bearer = {"Authorization": "Bearer from-env"}
        assert httpx.get(url, headers=bearer, timeout=60).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_with_a_token_every_request_needs_the_bearer(tmp_path):
    server = start_server(tmp_path, "--token", "s3cret")
    try:
        with server.client() as http:
            for method, path in (("GET", "/info"), ("GET", "/health"), ("GET", "/jobs"),
                                 ("GET", "/query?q=time%20%3E%3D%200s"), ("GET", "/search"),
                                 ("POST", "/ingest"), ("DELETE", "/jobs/x"),
                                 ("GET", "/frames/1.jpg")):
                r = http.request(method, path)
                assert r.status_code == 401, (method, path, r.text)
                assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
                r = http.request(method, path, headers={"Authorization": "Bearer wrong"})
                assert r.status_code == 401
            ok = {"Authorization": "Bearer s3cret"}
            assert http.get("/health", headers=ok).status_code == 200
            assert http.get("/info", headers=ok).status_code == 400  # no store yet, but in
            r = http.post("/ingest", json={"path": "/etc/passwd"}, headers=ok)
            assert r.status_code == 403
            (server.allowed / "v.mp4").write_bytes(b"x")
            evil = tmp_path / "evil.pt"  # outside --allow: never unpickled
            for options in ({"detector": str(evil)}, {"embedder": f"clip:ViT-B-32:{evil}"}):
                r = http.post("/ingest", json={"path": "v.mp4", "options": options},
                              headers=ok)
                assert r.status_code == 403 and "outside the allowed" in r.json()["error"]
            assert http.get("/docs").status_code == 200  # the API's documentation only
            schema = http.get("/openapi.json").json()
            assert "HTTPBearer" in schema["components"]["securitySchemes"]
    finally:
        stop_server(server)


def test_default_allow_is_the_working_directory(tmp_path):
    os.makedirs(tmp_path / "elsewhere", exist_ok=True)
    (tmp_path / "here.mp4").write_bytes(b"x")
    port = free_port()
    proc = subprocess.Popen(serve_command("--port", str(port), "--store",
                                          str(tmp_path / "store")),
                            env=server_env(), cwd=tmp_path / "elsewhere",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc)
        r = httpx.post(url + "/ingest", json={"path": str(tmp_path / "here.mp4")}, timeout=60)
        assert r.status_code == 403
    finally:
        proc.terminate()
        proc.wait(30)

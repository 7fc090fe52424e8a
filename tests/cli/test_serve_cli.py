"""`lensdb serve` refuses what it cannot serve with one error line before it starts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

LENSDB = [sys.executable, "-m", "lensdb.cli.app"]


def serve(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([*LENSDB, "serve", "--store", str(tmp_path / "store"), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, says", [
    (("--port", "0"), "--port must be between 1 and 65535"),
    (("--log-level", "bogus"), "--log-level must be one of"),
    (("--shutdown-grace", "-1"), "--shutdown-grace"),
    (("--host", "0.0.0.0"), "without a token"),
    (("--host", "not.a.host.invalid", "--token", "t"), "--host not.a.host.invalid"),
    (("--embedder", "nope"), "unknown embedder 'nope'"),
])
def test_bad_serve_options(tmp_path, args, says):
    out = serve(*args, tmp_path=tmp_path)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and says in lines[0]


def test_a_port_in_use_is_said_before_the_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve("--port", str(port), tmp_path=tmp_path)
    assert out.returncode == 2 and "LensDB serving" not in out.stderr
    assert out.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_json_banner_is_one_object_and_never_the_token(tmp_path):
    import json

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    proc = subprocess.Popen([*LENSDB, "serve", "--store", str(tmp_path / "store"), "--port",
                             str(port), "--token", "sekrit-token", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(30)
    assert banner["url"] == f"http://127.0.0.1:{port}" and banner["token_required"] is True
    assert banner["store_exists"] is False and "sekrit-token" not in json.dumps(banner)

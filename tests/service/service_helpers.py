"""Helpers for the service tests: a real `lensdb serve` process on a free loopback port,
and a live stream over HTTP."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

OFFLINE = {"detector": "ssd-mobilenet-v2", "embedder": "mobilenet-v2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lensdb.cli.app", "serve", *args]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LENSDB_TOKEN", None)
    return env


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    allowed: Path
    store: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


def make_small_store(root: Path) -> None:
    """A store made in code: one video of 10 labelled frames with person counts."""
    from lensdb.storage.store import Store

    store = Store.open(root, create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("INSERT INTO videos (video_id, name, path, status) VALUES "
                    "(1, 'clip.mp4', '/videos/clip.mp4', 'complete')")
        for i in range(10):
            con.execute("INSERT INTO frames VALUES (?, 1, ?, ?, true, 0)", [i, i, i / 10])
            con.execute("INSERT INTO counts VALUES (?, 'person', ?)", [i, i % 3])


def start_server(tmp: Path, *extra: str) -> Server:
    allowed, store = tmp / "allowed", tmp / "store"
    allowed.mkdir(exist_ok=True)
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        serve_command("--port", str(port), "--store", str(store), "--allow", str(allowed),
                      "--log-level", "warning", *extra),
        stdout=log, stderr=subprocess.STDOUT, env=server_env(), cwd=tmp,
    )
    server = Server(f"http://127.0.0.1:{port}", proc, allowed, store)
    wait_until_up(server.url, proc, tmp / "server.log")
    return server


def wait_until_up(url: str, proc: subprocess.Popen, log: Path | None = None,
                  timeout: float = 60) -> None:
    """Poll /docs (open even with a token) until the server answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text() if log else "the server exited")
        try:
            httpx.get(url + "/docs", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start in {timeout:.0f}s")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it is still up after 30 s (a loaded machine)."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop_server(server: Server) -> None:
    stop_process(server.proc)


class LiveStream:
    """An MPEG-TS file written in real time by PyAV in a thread, served over HTTP by a
    server that keeps each response open and streams new bytes as they appear."""

    def __init__(self, root: Path, fps: int = 20, seconds: float = 60.0):
        self.path = root / "live.ts"
        self.fps, self.frames = fps, int(fps * seconds)
        self.done, self.halt = threading.Event(), threading.Event()
        self.written = 0
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                try:
                    with open(stream.path, "rb") as f:
                        while True:
                            data = f.read(1 << 16)
                            if data:
                                self.wfile.write(data)
                                self.wfile.flush()
                            elif stream.done.is_set():
                                return
                            else:
                                time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/live.ts"
        self.path.write_bytes(b"")
        self._threads = [threading.Thread(target=self._produce, daemon=True),
                         threading.Thread(target=self.httpd.serve_forever, daemon=True)]
        for t in self._threads:
            t.start()

    def _produce(self) -> None:
        import av

        try:
            with open(self.path, "wb") as f, av.open(f, "w", format="mpegts") as out:
                s = out.add_stream("libx264", rate=self.fps)
                s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
                s.options = {"preset": "ultrafast", "tune": "zerolatency"}
                start = time.monotonic()
                for i in range(self.frames):
                    if self.halt.is_set():
                        break
                    img = np.zeros((96, 160, 3), np.uint8)
                    img[..., 1] = (i * 3) % 256
                    img[30:60, (i * 2) % 130 : (i * 2) % 130 + 30] = (220, 40, 40)
                    out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
                    f.flush()
                    self.written = i + 1
                    time.sleep(max(0.0, start + (i + 1) / self.fps - time.monotonic()))
                out.mux(s.encode())
        finally:
            self.done.set()

    def close(self) -> None:
        self.halt.set()
        self.done.wait(10)
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1):
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s")

"""Who may call the server and what it may read.

- A bearer token, compared in constant time (`hmac.compare_digest`).
- Loopback detection for the bind address: anywhere else the server needs a token.
- The path allow-list: a local path is resolved (symlinks and `..` included, with
  `os.path.realpath`) and must lie under one of the allowed roots, themselves resolved.
  Globs are checked as written, then every match is checked again, so a symlink inside an
  allowed folder that points outside it is refused. URLs (http, https, rtsp, rtmp, udp,
  tcp) are allowed: they name no local file. Stdin ('-') is refused.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from lensdb.errors import LensDBError, VideoError
from lensdb.frames import is_url

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class PathRefused(LensDBError):
    """A path outside the allowed roots (HTTP 403)."""


class Unauthorized(LensDBError):
    """A request without the right bearer token (HTTP 401)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; any other name or address is public."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>`, in constant time."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


class PathPolicy:
    """Resolves what a client asks to ingest, refusing anything outside the roots."""

    def __init__(self, roots: Iterable[str | Path]):
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        if not self.roots:
            raise LensDBError("at least one allowed directory is needed")
        for root in self.roots:
            if not root.is_dir():
                raise LensDBError(f"--allow {root}: not a directory")

    def allowed(self, path: str | Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def resolve(self, raw: str) -> list[str]:
        """The sources to ingest for one requested path or URL (absolute, real paths)."""
        raw = raw.strip()
        if not raw:
            raise LensDBError("the path is empty")
        if is_url(raw):
            return [raw]
        if raw == "-":
            raise PathRefused("stdin cannot be ingested through the API; pass a path or a URL")
        if "\x00" in raw or "://" in raw or raw.split(":", 1)[0] in ("file", "concat", "pipe"):
            raise PathRefused(f"'{raw}' is neither a local path nor an allowed URL "
                              "(http, https, rtsp, rtmp, udp, tcp)")
        path = Path(raw)
        if not path.is_absolute():
            path = self.roots[0] / path
        if not self.allowed(path):  # before any look at the disk: no existence oracle
            raise PathRefused(f"'{raw}' is outside the allowed directories")
        matches = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)]
        if not matches:
            raise VideoError(f"no files match {raw}")
        out = []
        for match in matches:
            if not self.allowed(match):
                raise PathRefused(f"'{raw}' leads outside the allowed directories")
            real = os.path.realpath(match)
            if not os.path.exists(real):
                raise VideoError(f"no such file: {raw}")
            if os.path.isdir(real):
                raise VideoError(f"{raw} is a directory; pass video files or a glob like "
                                 f"'{raw.rstrip('/')}/*.mp4'")
            out.append(real)
        return out

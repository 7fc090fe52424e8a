"""What a request may make the server open: files under allowed roots, listed URL schemes,
and model files under allowed roots or the model cache. Nothing else.

- `path`/`paths` name local files only (or globs of them): a real path (symlinks and `..`
  resolved with `os.path.realpath`) under one of the allowed roots, themselves resolved;
  globs are checked as written, then every match again. Anything with a scheme is refused,
  so no FFmpeg protocol (tcp, udp, pipe, concat, ...) can be reached through a path.
- `url` names a network source of a listed scheme (http, https, rtsp, rtsps, rtmp) with a
  host; rtsp/rtmp URLs carry no query string (FFmpeg reads protocol options from it), and
  no URL carries whitespace or control characters.
- A model spec is resolved by `lensdb.models.resolve` exactly as the loader will resolve
  it; a file it names must lie under an allowed root or the server's model cache, and a
  spec that could mean two things is refused. The job is given the canonical spec.
"""

from __future__ import annotations

import glob
import os
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from lensdb.errors import LensDBError, VideoError
from lensdb.models.resolve import named_file, resolve_model, shorten

URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp")
SCHEMES_WITHOUT_QUERY = ("rtsp", "rtsps", "rtmp")
MAX_PATH_CHARS = 4096
MAX_SOURCES = 1000  # files one request may ingest (globs expanded)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class PathRefused(LensDBError):
    """A path, URL or model file the server may not open (HTTP 403)."""


class PathPolicy:
    """Resolves what a client asks to ingest or load, refusing anything outside the roots."""

    def __init__(self, roots: Iterable[str | Path], model_roots: Iterable[str | Path] = ()):
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        if not self.roots:
            raise LensDBError("at least one allowed directory is needed")
        for root in self.roots:
            if not root.is_dir():
                raise LensDBError(f"--allow {root}: not a directory")
        self.model_roots = [Path(os.path.realpath(r)) for r in model_roots]

    def allowed(self, path: str | Path, roots: Iterable[Path] | None = None) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root)
                   for root in (self.roots if roots is None else roots))

    def resolve(self, raw: str) -> list[str]:
        """The files to ingest for one requested path or glob (absolute, real paths)."""
        raw = raw.strip()
        if not raw:
            raise LensDBError("the path is empty")
        shown = shorten(raw)
        if len(raw) > MAX_PATH_CHARS or any(ord(c) < 32 for c in raw):
            raise PathRefused(f"'{shown}' is not a valid path")
        if raw == "-":
            raise PathRefused("stdin cannot be ingested through the API; pass a path or a URL")
        if _SCHEME.match(raw) or "://" in raw:
            raise PathRefused(f"'{shown}' is not a local path: `path` takes files only; "
                              f"network sources go in `url` ({', '.join(URL_SCHEMES)})")
        path = Path(raw)
        if not path.is_absolute():
            path = self.roots[0] / path
        if not self.allowed(path):  # before any look at the disk: no existence oracle
            raise PathRefused(f"'{shown}' is outside the allowed directories")
        if glob.has_magic(str(path)):
            matches = []
            for match in glob.iglob(str(path)):
                matches.append(match)
                if len(matches) > MAX_SOURCES:
                    raise LensDBError(f"'{shown}' matches more than {MAX_SOURCES} files; "
                                      "ingest them in several requests")
            matches.sort()
        else:
            matches = [str(path)]
        if not matches:
            raise VideoError(f"no files match {shown}")
        out = []
        for match in matches:
            if not self.allowed(match):
                raise PathRefused(f"'{shown}' leads outside the allowed directories")
            real = os.path.realpath(match)
            if not os.path.exists(real):
                raise VideoError(f"no such file: {shown}")
            if os.path.isdir(real):
                raise VideoError(f"{shown} is a directory; pass video files or a glob like "
                                 f"'{shorten(raw.rstrip('/'))}/*.mp4'")
            out.append(real)
        return out

    def resolve_many(self, raws: list[str]) -> list[str]:
        """Every requested path resolved, at most MAX_SOURCES files in all."""
        out: list[str] = []
        for raw in raws:
            out.extend(self.resolve(raw))
            if len(out) > MAX_SOURCES:
                raise LensDBError(f"a request may ingest at most {MAX_SOURCES} files")
        return out

    @staticmethod
    def check_url(raw: str) -> str:
        """A network source URL of a listed scheme, as given (stripped)."""
        raw = raw.strip()
        shown = shorten(raw)
        if len(raw) > MAX_PATH_CHARS or any(ord(c) <= 32 or ord(c) == 127 for c in raw):
            raise PathRefused(f"'{shown}' is not a valid URL (no spaces or control characters)")
        try:
            parts = urllib.parse.urlsplit(raw)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise PathRefused(f"'{shown}' is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in URL_SCHEMES or not parts.hostname:
            raise PathRefused(f"url must be {', '.join(URL_SCHEMES)} with a host; local files "
                              f"go in path (got '{shown}')")
        if scheme in SCHEMES_WITHOUT_QUERY and (parts.query or "?" in raw):
            raise PathRefused(f"a {scheme} URL may not carry a query string (FFmpeg reads "
                              f"protocol options from it): '{shown}'")
        if parts.username is not None or parts.password is not None:
            raise PathRefused("a URL may not carry a user name or password (job listings show "
                              "sources to every client); serve the stream without them or "
                              "ingest it from the command line")
        return scheme + raw[len(parts.scheme):]  # the scheme as the decoder matches it

    def check_model(self, kind: str, spec: str) -> str:
        """The canonical spec of a model a request names, or PathRefused."""
        roots = [*self.roots, *self.model_roots]
        named = named_file(kind, spec) if isinstance(spec, str) else None
        if named is not None and not self.allowed(named, roots):  # before any look at
            raise PathRefused(f"{kind} '{shorten(spec)}' is a file outside the allowed "  # disk
                              "directories and the model cache")
        resolved = resolve_model(kind, spec)
        if resolved.ambiguous:
            raise PathRefused(f"{kind} '{shorten(spec)}' is ambiguous: {resolved.ambiguous}; "
                              "name the file by its absolute path or the model without .pt")
        for path in resolved.files:
            if not self.allowed(path, roots):
                raise PathRefused(f"{kind} '{shorten(spec)}' is a file outside the allowed "
                                  "directories and the model cache")
        return resolved.spec

"""The HTTP JSON API (FastAPI) over the same library functions the CLI calls.

    uvicorn.run(create_app("lensdb-store", token="...", allow=["/data/videos"]))

Reads (query, search, info, frames) open the store per request and see what ingest jobs
have committed so far; ingest jobs run one at a time in a child process (see jobs.py).
What a request may open is policy.py's; errors are errors.py's; body limits limits.py's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPBearer

from lensdb import __version__
from lensdb.models.base import cache_dir
from lensdb.service.auth import bearer_ok
from lensdb.service.context import ServiceContext
from lensdb.service.errors import error_response, install_error_handlers
from lensdb.service.jobs import JobQueue
from lensdb.service.limits import BodyLimit
from lensdb.service.policy import PathPolicy
from lensdb.service.routes import download, ingest, match, read, timeline, web
from lensdb.service.shutdown import ShutdownReply

OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json",  # schema only, no data
              *web.PAGE_PATHS)  # the web view's page and assets: no data either


def create_app(store_path: str | Path, token: str | None = None,
               allow: Sequence[str | Path] | None = None, embedder: str | None = None,
               stop_grace: float = 10.0, hosts: Sequence[str] | None = None) -> FastAPI:
    """The app over the store at `store_path`; `allow`: roots ingestable by path (default
    the current directory), model files may also come from the model cache; `embedder`:
    the embedder spec for text/image search when the store cannot name it; `hosts`: the
    Host header names answered (None: any; `lensdb serve` without a token passes
    LOOPBACK_HOSTS, so a web page that rebinds its own name to 127.0.0.1 gets nothing)."""
    policy = PathPolicy(allow or [os.getcwd()], model_roots=[cache_dir()])
    ctx = ServiceContext(Path(store_path), policy, JobQueue(store_path, stop_grace=stop_grace),
                         embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx.jobs.start()
        yield
        ctx.jobs.close()

    deps = [Depends(HTTPBearer(auto_error=False))] if token else []
    app = FastAPI(title="LensDB", version=__version__, lifespan=lifespan, redoc_url=None,
                  dependencies=deps, description="Counting questions over video: ingest "
                  "jobs, count queries, similarity search. Errors are `{\"error\": ...}`.")
    app.state.context = ctx
    if token:
        _require_bearer(app, token)
    install_error_handlers(app)
    app.include_router(ingest.router)
    app.include_router(read.router)
    app.include_router(download.router)
    app.include_router(timeline.router)
    app.include_router(web.router)
    app.include_router(match.router)
    app.add_middleware(BodyLimit)
    if hosts is not None:
        app.add_middleware(HostCheck, hosts={h.lower() for h in hosts})
    app.add_middleware(ShutdownReply)  # outermost of ours: it sees every cancelled request
    return app


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class HostCheck:
    """ASGI middleware: 400 for a request whose Host header names none of `hosts` (pure
    ASGI, so a stopping server still answers the requests it holds; see ShutdownReply)."""

    def __init__(self, app: Any, hosts: set[str]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
            bracketed = host.startswith("[") and "]:" in host
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 or bracketed else host
            if name not in self.hosts:
                reply = error_response(400, f"Host '{host[:100]}' is not this server's name "
                                            "(without a token it answers only "
                                            f"{', '.join(sorted(self.hosts))})")
                await reply(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _require_bearer(app: FastAPI, token: str) -> None:
    @app.middleware("http")
    async def require_bearer(request: Request, call_next):
        if request.url.path in OPEN_PATHS or bearer_ok(request.headers.get("authorization"),
                                                       token):
            return await call_next(request)
        return error_response(401, "missing or wrong bearer token",
                              headers={"WWW-Authenticate": "Bearer"})

"""The HTTP JSON API (FastAPI) over the same library functions the CLI calls.

    uvicorn.run(create_app("lensdb-store", token="...", allow=["/data/videos"]))

Reads (query, search, info, frames) open the store per request and see what ingest jobs
have committed so far; ingest jobs run one at a time in a child process (see jobs.py).
Every error is JSON `{"error": "..."}` with a 4xx status: LensDBError -> 400 (a refused
path 403, a missing bearer 401), unknown ids 404, malformed requests 422.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from lensdb import __version__
from lensdb.config import IngestConfig
from lensdb.errors import LensDBError, QueryError
from lensdb.service.auth import PathPolicy, PathRefused, Unauthorized, bearer_ok
from lensdb.service.jobs import JobQueue
from lensdb.storage.store import Store

log = logging.getLogger("lensdb.service")
OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")  # schema only, no data
MAX_IMAGE_BYTES = 20 << 20

_hints = get_type_hints(IngestConfig)
IngestOptions = create_model(  # the IngestConfig fields, unknown keys refused
    "IngestOptions", __config__=ConfigDict(extra="forbid"),
    **{f.name: (_hints[f.name], f.default) for f in fields(IngestConfig)},
)


class IngestRequest(BaseModel):
    """Exactly one of `path`, `paths` or `url`; `options` are `lensdb ingest`'s options."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="A video file or glob under an allowed root")
    paths: list[str] | None = Field(None, description="Several files or globs")
    url: str | None = Field(None, description="http(s)/rtsp URL; a live one runs until stopped")
    options: IngestOptions = Field(default_factory=IngestOptions)  # type: ignore[valid-type]


def _check_model_path(key: str, spec: str, policy: PathPolicy) -> None:
    """A model given as a file is loaded (unpickled) by its library: only from --allow."""
    path = spec.split(":", 2)[2] if spec.startswith("clip:") and spec.count(":") >= 2 else spec
    looks_like_file = "/" in path or path.startswith(".") or path.endswith(
        (".pt", ".pth", ".onnx", ".bin", ".safetensors", ".tflite"))
    if looks_like_file and not policy.allowed(path):
        raise PathRefused(f"{key} '{spec}' is a file outside the allowed directories")


def clean(obj: Any) -> Any:
    """JSON-able, with NaN and infinities as null (strict JSON)."""
    obj = jsonable_encoder(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(store_path: str | Path, token: str | None = None,
               allow: list[str | Path] | None = None, embedder: str | None = None,
               stop_grace: float = 10.0) -> FastAPI:
    """The app over the store at `store_path`; `allow`: roots ingestable by path (default
    the current directory); `embedder`: the embedder spec for text/image search when the
    store cannot name it (a CLIP from a local checkpoint)."""
    store_path = Path(store_path)
    policy = PathPolicy(allow or [os.getcwd()])
    jobs = JobQueue(store_path, stop_grace=stop_grace)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.start()
        yield
        jobs.close()

    deps = [Depends(HTTPBearer(auto_error=False))] if token else []
    app = FastAPI(title="LensDB", version=__version__, lifespan=lifespan, redoc_url=None,
                  dependencies=deps, description="Counting questions over video: ingest "
                  "jobs, count queries, similarity search. Errors are `{\"error\": ...}`.")
    app.state.jobs, app.state.policy = jobs, policy

    if token:
        @app.middleware("http")
        async def require_bearer(request: Request, call_next):
            if request.url.path in OPEN_PATHS or bearer_ok(
                    request.headers.get("authorization"), token):
                return await call_next(request)
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(LensDBError)
    async def lensdb_error(request: Request, exc: LensDBError):
        if isinstance(exc, QueryError):
            return _error(400, str(exc), position=exc.position, caret=exc.caret())
        status = 403 if isinstance(exc, PathRefused) else 401 if isinstance(
            exc, Unauthorized) else 400
        return _error(status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = clean(exc.errors())
        first = errors[0] if errors else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}",
                      detail=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    def store() -> Store:
        return Store.open(store_path)

    @app.post("/ingest", status_code=202, summary="Queue an ingest job")
    def ingest(req: IngestRequest) -> dict:
        asked = [x for x in (req.path, req.url) if x is not None] + list(req.paths or [])
        if not asked or sum(x is not None for x in (req.path, req.url, req.paths)) != 1:
            raise LensDBError("give exactly one of path, paths or url")
        if req.url is not None and not req.url.startswith(("http://", "https://", "rtsp://",
                                                           "rtsps://", "rtmp://")):
            raise LensDBError("url must be http(s), rtsp or rtmp; local files go in path")
        options = req.options.model_dump()
        IngestConfig(**options).validate()
        for key in ("detector", "embedder"):
            _check_model_path(key, options[key], policy)
        sources = [s for raw in asked for s in policy.resolve(raw)]
        return jobs.submit(sources, options).to_dict()

    @app.get("/jobs", summary="All jobs, oldest first")
    def list_jobs() -> dict:
        return clean({"jobs": [j.to_dict() for j in jobs.list()]})

    @app.get("/jobs/{job_id}", summary="A job: state, frames done, frames/s, error")
    def get_job(job_id: str) -> dict:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return clean(job.to_dict())

    @app.delete("/jobs/{job_id}", status_code=202, summary="Stop a job (committed data stays)")
    def stop_job(job_id: str) -> dict:
        job = jobs.stop(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return clean(job.to_dict())

    @app.get("/query", summary="Run a count query")
    def query(q: str = Query(..., description="e.g. count(person) > 3 AND count(car) >= 1"),
              source: str = Query("best", description="best | predicted | detected"),
              frames: bool = Query(False, description="one row per frame, not moments"),
              gap: float | None = Query(None, description="merge moments closer than this")
              ) -> dict:
        from lensdb.query import run_query

        return clean(run_query(store(), q, source=source, frames=frames, gap=gap).to_dict())

    def _search(text, image, k, where, video, source, like) -> dict:
        from lensdb.search import search

        hits = search(store(), text=text, image=image, k=k, where=where, video=video,
                      source=source, like=like, embedder=embedder)
        return clean({"hits": [{**h.to_dict(), "thumbnail": f"/frames/{h.frame_id}.jpg"}
                               for h in hits]})

    @app.get("/search", summary="Similarity search by text or by a stored frame")
    def search_get(q: str | None = Query(None, description="text (needs a CLIP store)"),
                   like: int | None = Query(None, description="frame id to search like"),
                   k: int = Query(10, ge=1, le=10_000), where: str | None = None,
                   video: str | None = None, source: str = "best") -> dict:
        return _search(q, None, k, where, video, source, like)

    @app.post("/search", summary="Similarity search by example image (raw JPEG/PNG body)")
    def search_post(image: bytes = Body(..., media_type="application/octet-stream"),
                    k: int = Query(10, ge=1, le=10_000), where: str | None = None,
                    video: str | None = None, source: str = "best") -> dict:
        import cv2

        if len(image) > MAX_IMAGE_BYTES:
            raise LensDBError(f"the image is larger than {MAX_IMAGE_BYTES >> 20} MB")
        bgr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise LensDBError("the request body is not an image (send JPEG or PNG bytes)")
        return _search(None, bgr[..., ::-1].copy(), k, where, video, source, None)

    @app.get("/info", summary="What the store holds")
    def info() -> dict:
        from lensdb.db import store_info

        return clean(store_info(store()))

    @app.get("/frames/{frame_id}.jpg", summary="A stored frame as JPEG, boxes drawn",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def frame(frame_id: int, boxes: bool = True) -> Response:
        from lensdb.export import frame_jpeg

        st = store()
        with st.catalog.connect() as con:
            if con.execute("SELECT 1 FROM frames WHERE frame_id = ?", [frame_id]).fetchone() \
                    is None:
                raise HTTPException(404, f"no frame {frame_id}")
        return Response(frame_jpeg(st, frame_id, boxes), media_type="image/jpeg")

    @app.get("/health", summary="Liveness")
    def health() -> dict:
        return {"ok": True, "version": __version__}

    return app

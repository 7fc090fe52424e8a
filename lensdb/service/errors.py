"""Every error the API answers is JSON `{"error": "..."}`: the handlers, the OpenAPI
declarations of each status, and the one cap on how much of a request is echoed back.

LensDBError -> 400 (a QueryError adds position and caret; a refused path 403; a missing
bearer 401), unknown ids 404, a wrong method 405 (with `Allow`), a body over the limit 413,
malformed requests 422, anything unexpected 500 with no detail beyond the exception's type.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from lensdb.errors import LensDBError, QueryError
from lensdb.models.resolve import shorten
from lensdb.service.auth import Unauthorized
from lensdb.service.policy import PathRefused
from lensdb.strict_json import strict

log = logging.getLogger("lensdb.service")
MAX_MESSAGE_CHARS = 500  # the longest error message sent back, whatever it quotes
MAX_ECHO_CHARS = 120  # the longest request value quoted in a message


class ErrorBody(BaseModel):
    """What every error response carries."""

    error: str
    position: int | None = None
    caret: str | None = None
    detail: list[dict[str, Any]] | None = None


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the error model."""
    words = {400: "Bad request (one-line message)", 401: "Missing or wrong bearer token",
             403: "Refused: outside the allowed directories", 404: "No such id",
             413: "Request body too large", 416: "Range not satisfiable",
             422: "Malformed request",
             500: "Internal error"}
    return {s: {"model": ErrorBody, "description": words[s]} for s in statuses}


def clean(obj: Any) -> Any:
    """JSON-able, with NaN and infinities as null (strict JSON)."""
    return strict(jsonable_encoder(obj))


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": shorten(message, MAX_MESSAGE_CHARS), **extra},
                        status_code=status, headers=headers)


def _validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors without the echoed input (a 50 MB path stays on the server)."""
    out = []
    for err in errors[:20]:
        out.append({"loc": [shorten(str(x), MAX_ECHO_CHARS) for x in err.get("loc", ())],
                    "msg": shorten(str(err.get("msg", "invalid")), MAX_ECHO_CHARS),
                    "type": str(err.get("type", ""))})
    return out


def _methods_of(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's."""

    def walk(routes) -> set[str]:
        found: set[str] = set()
        for route in routes:
            inner = getattr(route, "original_router", None) or getattr(route, "router", None)
            if inner is not None and hasattr(inner, "routes"):
                found |= walk(inner.routes)
            elif route.matches(request.scope)[0] != Match.NONE:
                found |= set(getattr(route, "methods", None) or ())
        return found

    return sorted(walk(request.app.router.routes))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LensDBError)
    async def lensdb_error(request: Request, exc: LensDBError):
        if isinstance(exc, QueryError):
            caret = exc.caret()
            return error_response(400, str(exc), position=exc.position,
                                  caret=caret if caret is None or len(caret) < 4000 else None)
        status = 403 if isinstance(exc, PathRefused) else 401 if isinstance(
            exc, Unauthorized) else 400
        return error_response(status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = ", ".join(_methods_of(request))
        return error_response(exc.status_code, str(exc.detail), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        detail = _validation_detail(list(exc.errors()))
        first = detail[0] if detail else {}
        where = ".".join(first.get("loc", ()))
        return error_response(422, f"invalid request: {where}: {first.get('msg', 'invalid')}",
                              detail=detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")

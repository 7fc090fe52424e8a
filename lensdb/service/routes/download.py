"""GET /query/download: a query's answer as a CSV, JSON or Parquet attachment (what
`lensdb query --format ... --out FILE` writes), for the web view's download buttons."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from lensdb.query.lexer import MAX_QUERY_CHARS
from lensdb.service.context import ServiceContext, context
from lensdb.service.errors import responses
from lensdb.service.routes.read import refuse_guarantees

router = APIRouter()
TYPES = {"csv": "text/csv", "json": "application/json",
         "parquet": "application/vnd.apache.parquet"}


@router.get("/query/download", summary="A query's answer as a file", response_class=Response,
            responses={200: {"content": {t: {} for t in TYPES.values()}},
                       **responses(400, 401, 422)})
def download(request: Request, q: str = Query(..., max_length=MAX_QUERY_CHARS),
             format: str = Query("csv", pattern="^(csv|json|parquet)$"),
             source: str = Query("best", description="best | predicted | detected"),
             frames: bool = False, gap: float | None = None,
             ctx: ServiceContext = Depends(context)) -> Response:
    from lensdb.query import run_query

    refuse_guarantees(request)
    result = run_query(ctx.store(), q, source=source, frames=frames, gap=gap)
    fd, tmp = tempfile.mkstemp(suffix="." + format, prefix="lensdb-answer-")
    os.close(fd)
    try:
        result.write(tmp, format)
        body = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    name = (re.sub(r"[^A-Za-z0-9]+", "-", q).strip("-")[:40] or "answer") + "." + format
    return Response(body, media_type=TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

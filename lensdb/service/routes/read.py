"""The read routes: query, search (text, stored frame, example image), info, frames,
health. Each opens the store per request and calls the library function the CLI calls."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from lensdb import __version__
from lensdb.errors import LensDBError
from lensdb.query.lexer import MAX_QUERY_CHARS
from lensdb.service.context import ServiceContext, context
from lensdb.service.errors import clean, responses
from lensdb.service.limits import decode_upload

GUARANTEE_FIELDS = {"recall", "precision", "error", "confidence", "budget"}
router = APIRouter()


def refuse_guarantees(request: Request) -> None:
    """A read-only query route given a guarantee's parameters: answering without the
    guarantee would mislead."""
    asked = sorted(GUARANTEE_FIELDS & set(request.query_params))
    if asked:
        raise LensDBError(f"{', '.join(asked)}: a guarantee runs the detector and stores "
                          "labels; send it as POST /query/verified")


@router.get("/query", summary="Run a count query (read-only)",
            responses=responses(400, 401, 422))
def query(request: Request, q: str = Query(..., max_length=MAX_QUERY_CHARS,
                         description="e.g. count(person) > 3 AND count(car) >= 1"),
          source: str = Query("best", description="best | predicted | detected"),
          frames: bool = Query(False, description="one row per frame, not moments"),
          gap: float | None = Query(None, description="merge moments closer than this"),
          ctx: ServiceContext = Depends(context)) -> dict:
    from lensdb.query import run_query

    refuse_guarantees(request)
    return clean(run_query(ctx.store(), q, source=source, frames=frames, gap=gap).to_dict())


class VerifiedQuery(BaseModel):
    """A query answered with a guarantee: exactly one of recall, precision (selections) or
    error (avg/sum aggregates)."""

    model_config = ConfigDict(extra="forbid")
    q: str = Field(..., max_length=MAX_QUERY_CHARS, description="the query")
    recall: float | None = Field(None, description="recall target (SUPG)")
    precision: float | None = Field(None, description="precision target (SUPG)")
    error: float | None = Field(None, description="avg/sum: half-width of the interval")
    confidence: float = Field(0.95, description="probability that the target holds")
    budget: int | None = Field(None, le=100_000, description="detector runs allowed")
    source: str = Field("best", description="best | predicted")
    frames: bool = Field(False, description="one row per frame, not moments")


@router.post("/query/verified", summary="A count query with a guarantee (runs the detector "
             "on sampled frames and stores each run as a label)",
             responses=responses(400, 401, 413, 422))
def query_verified(req: VerifiedQuery, ctx: ServiceContext = Depends(context)) -> dict:
    from lensdb.query import run_verified

    return clean(run_verified(ctx.store(), req.q, recall=req.recall, precision=req.precision,
                              error=req.error, confidence=req.confidence, budget=req.budget,
                              source=req.source, frames=req.frames).to_dict())


def _search(ctx: ServiceContext, text, image, k, where, video, source, like,
            nprobe=None) -> dict:
    from lensdb.search import search_result

    found = search_result(ctx.store(), text=text, image=image, k=k, where=where, video=video,
                          source=source, like=like, embedder=ctx.embedder, nprobe=nprobe)
    return clean({**found.to_dict(),
                  "hits": [{**h.to_dict(), "thumbnail": f"/frames/{h.frame_id}.jpg"}
                           for h in found.hits]})


NPROBE = Query(None, ge=1, le=1 << 20, description="IVF codecs: inverted lists scanned per "
               "query (default 16, capped at the lists); other codecs: not applicable "
               "(answered as nprobe null)")


@router.get("/search", summary="Similarity search by text or by a stored frame",
            responses=responses(400, 401, 422))
def search_get(q: str | None = Query(None, max_length=MAX_QUERY_CHARS,
                                     description="text (needs a CLIP store)"),
               like: int | None = Query(None, description="frame id to search like"),
               k: int = Query(10, ge=1, le=10_000),
               where: str | None = Query(None, max_length=MAX_QUERY_CHARS),
               video: str | None = Query(None, max_length=4096), source: str = "best",
               nprobe: int | None = NPROBE,
               ctx: ServiceContext = Depends(context)) -> dict:
    return _search(ctx, q, None, k, where, video, source, like, nprobe)


@router.post("/search", summary="Similarity search by example image (raw JPEG/PNG body)",
             responses=responses(400, 401, 413, 422))
def search_post(image: bytes = Body(..., media_type="application/octet-stream"),
                k: int = Query(10, ge=1, le=10_000),
                where: str | None = Query(None, max_length=MAX_QUERY_CHARS),
                video: str | None = Query(None, max_length=4096), source: str = "best",
                nprobe: int | None = NPROBE,
                ctx: ServiceContext = Depends(context)) -> dict:
    rgb = decode_upload(image, "the request body")
    return _search(ctx, None, rgb, k, where, video, source, None, nprobe)


@router.get("/info", summary="What the store holds", responses=responses(400, 401))
def info(ctx: ServiceContext = Depends(context)) -> dict:
    from lensdb.db import store_info

    return clean(store_info(ctx.store()))


@router.get("/frames/{frame_id}.jpg", summary="A stored frame as JPEG, boxes drawn",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, **responses(400, 401, 404, 422)})
def frame(frame_id: int, boxes: bool = True, ctx: ServiceContext = Depends(context)) -> Response:
    from lensdb.export import frame_jpeg

    st = ctx.store()
    with st.catalog.connect() as con:
        if con.execute("SELECT 1 FROM frames WHERE frame_id = ?", [frame_id]).fetchone() is None:
            raise HTTPException(404, f"no frame {frame_id}")
    return Response(frame_jpeg(st, frame_id, boxes), media_type="image/jpeg")


@router.get("/health", summary="Liveness", responses=responses(401))
def health() -> dict:
    return {"ok": True, "version": __version__}

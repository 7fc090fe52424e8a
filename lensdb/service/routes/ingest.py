"""POST /ingest and the job routes. Every source and model a request names goes through
the path policy; the job gets the resolved files and canonical model specs only."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from lensdb.config import IngestConfig
from lensdb.errors import LensDBError
from lensdb.service.context import ServiceContext, context
from lensdb.service.errors import clean, responses
from lensdb.service.policy import MAX_PATH_CHARS, MAX_SOURCES, PathRefused

MODEL_OPTIONS = ("detector", "embedder")  # options that name a model (maybe a file)
# options only the server's operator sets: a Ray cluster address would make the server
# connect wherever a request says (a job with engine "ray" and no address runs a local Ray)
OPERATOR_OPTIONS = ("address",)

_hints = get_type_hints(IngestConfig)
_option_fields: dict[str, Any] = {f.name: (_hints[f.name], f.default)
                                  for f in fields(IngestConfig)}
IngestOptions: Any = create_model(  # the IngestConfig fields, unknown keys refused
    "IngestOptions", __config__=ConfigDict(extra="forbid"), **_option_fields)


class IngestRequest(BaseModel):
    """Exactly one of `path`, `paths` or `url`; `options` are `lensdb ingest`'s options."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, max_length=MAX_PATH_CHARS,
                             description="A video file or glob under an allowed root")
    paths: list[Annotated[str, Field(max_length=MAX_PATH_CHARS)]] | None = Field(
        None, max_length=MAX_SOURCES,
                                    description="Several files or globs")
    url: str | None = Field(None, max_length=MAX_PATH_CHARS,
                            description="http(s), rtsp(s) or rtmp URL; a live one runs until "
                                        "stopped")
    options: IngestOptions = Field(default_factory=IngestOptions)


router = APIRouter()


@router.post("/ingest", status_code=202, summary="Queue an ingest job",
             responses=responses(400, 401, 403, 413, 422))
def ingest(req: IngestRequest, ctx: ServiceContext = Depends(context)) -> dict:
    given = [x for x in (req.path, req.paths, req.url) if x is not None]
    if len(given) != 1 or req.paths == []:
        raise LensDBError("give exactly one of path, paths or url")
    options = req.options.model_dump()
    for key in OPERATOR_OPTIONS:
        if options.get(key) is not None:
            raise PathRefused(f"options.{key}: a request may not name a Ray cluster to "
                              "connect to; ingest on a cluster from the command line "
                              "(lensdb ingest --engine ray --address ...)")
    IngestConfig(**options).validate()
    for key in MODEL_OPTIONS:  # None: the store's model (or the default in a new store)
        if options[key] is not None:
            options[key] = ctx.policy.check_model(key, options[key])
    if req.url is not None:
        sources = [ctx.policy.check_url(req.url)]
    else:
        sources = ctx.policy.resolve_many([req.path] if req.path is not None
                                          else list(req.paths or []))
    return clean(ctx.jobs.submit(sources, options).to_dict())


@router.get("/jobs", summary="All jobs, oldest first", responses=responses(401))
def list_jobs(ctx: ServiceContext = Depends(context)) -> dict:
    return clean({"jobs": [j.to_dict() for j in ctx.jobs.list()]})


@router.get("/jobs/{job_id}", summary="A job: state, frames done, frames/s, error",
            responses=responses(401, 404))
def get_job(job_id: str, ctx: ServiceContext = Depends(context)) -> dict:
    job = ctx.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:40]}")
    return clean(job.to_dict())


@router.delete("/jobs/{job_id}", status_code=202, summary="Stop a job (committed data stays)",
               responses=responses(401, 404))
def stop_job(job_id: str, ctx: ServiceContext = Depends(context)) -> dict:
    job = ctx.jobs.stop(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:40]}")
    return clean(job.to_dict())

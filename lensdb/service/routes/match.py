"""POST /match: does this image show this text? The same call as `lensdb match`, on an
uploaded image (multipart form: `image` file, one or more `text` fields)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, UploadFile

from lensdb.errors import LensDBError
from lensdb.service.context import ServiceContext, context
from lensdb.service.errors import clean, responses
from lensdb.service.limits import MAX_IMAGE_BODY, decode_upload

MAX_TEXTS = 100
router = APIRouter()


@router.post("/match", summary="Similarity and match/mismatch of texts against an image",
             responses=responses(400, 401, 403, 413, 422))
def match_route(image: UploadFile = File(..., description="JPEG or PNG"),
                text: list[str] = Form(..., description="texts to score (repeat the field)"),
                embedder: str | None = Form(None, description="embedder spec (default: the "
                                            "server's --embedder, else clip-vit-b-32)"),
                threshold: float | None = Form(None, description="cosine threshold"),
                ctx: ServiceContext = Depends(context)) -> dict:

    from lensdb.finetune.match import match

    if len(text) > MAX_TEXTS or any(len(t) > 1000 for t in text):
        raise LensDBError(f"at most {MAX_TEXTS} texts of at most 1000 characters each")
    spec = ctx.policy.check_model("embedder", embedder or ctx.embedder or "clip-vit-b-32")
    rgb = decode_upload(image.file.read(MAX_IMAGE_BODY + 1), "the uploaded file")
    results = match(rgb, list(text), embedder=spec, threshold=threshold)
    return clean({"embedder": spec, "results": [r.to_dict() for r in results]})

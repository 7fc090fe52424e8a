"""A cap on request bodies, enforced while the body streams in (a missing or false
Content-Length does not get past it)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from lensdb.errors import LensDBError
from lensdb.service.errors import error_response

MAX_JSON_BODY = 8 << 20  # bytes: an ingest request of MAX_SOURCES paths of the longest fits
MAX_IMAGE_BODY = 20 << 20  # bytes: an example image for POST /search
# bytes of request line + headers the server reads (uvicorn's h11 limit; `lensdb serve`):
# its default fails heads of ~100-200 KB, below the longest request the API accepts
# (parameters of up to 20,000 characters, 12 bytes each once percent-encoded)
MAX_REQUEST_HEAD = 1 << 20
MAX_IMAGE_PIXELS = 40_000_000  # of an uploaded image: a small PNG may decode to gigabytes


def decode_upload(data: bytes, what: str):
    """An uploaded JPEG/PNG as an RGB array; 413 past MAX_IMAGE_BODY bytes or
    MAX_IMAGE_PIXELS pixels (read from the header before anything is decoded), 400 when it
    is not an image. `what`: how the message names it."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    if len(data) > MAX_IMAGE_BODY:
        raise HTTPException(413, f"the image is larger than {MAX_IMAGE_BODY >> 20} MB")
    too_big = HTTPException(413, f"the image has more than {MAX_IMAGE_PIXELS // 1_000_000} "
                                 "megapixels; send a smaller one")
    try:
        with Image.open(io.BytesIO(data)) as head:  # lazy: reads the header only
            width, height = head.size
    except Image.DecompressionBombError:  # PIL's own cap, far above ours
        raise too_big from None
    except Exception:  # noqa: BLE001 - any unreadable header is "not an image"
        raise LensDBError(f"{what} is not an image (send JPEG or PNG bytes)") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise too_big
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise LensDBError(f"{what} is not an image (send JPEG or PNG bytes)")
    return bgr[..., ::-1].copy()


class BodyTooLarge(HTTPException):
    """Raised inside the app when a body passes its limit; an HTTPException so that the
    framework's body parsing passes it on as a 413 instead of a parse error."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit_for(path, method)` bytes."""

    def __init__(self, app: Any, image_paths: tuple[str, ...] = ("/search", "/match")):
        self.app = app
        self.image_paths = image_paths

    def limit_for(self, path: str) -> int:
        return MAX_IMAGE_BODY if path in self.image_paths else MAX_JSON_BODY

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, receive, send, limit)


async def _too_large(scope: dict, receive: Any, send: Any, limit: int) -> None:
    reply = error_response(413, f"the request body is larger than {limit} bytes",
                           headers={"connection": "close"})
    await reply(scope, receive, send)

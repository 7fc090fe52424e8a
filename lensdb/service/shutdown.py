"""A request still running when a stopping server's grace (`lensdb serve --shutdown-grace`)
runs out is cancelled by uvicorn; this middleware answers it with a JSON 503 instead of a
logged traceback and a bare 500, so a client knows to retry once the server is back."""

from __future__ import annotations

import asyncio
from typing import Any

from lensdb.service.errors import error_response

SHUTTING_DOWN = "the server is shutting down; retry once it is back"


class ShutdownReply:
    """Pure ASGI middleware: a cancelled HTTP request gets `{"error": ...}` with 503 when
    its response has not started, and ends quietly either way."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except asyncio.CancelledError:
            # uvicorn cancels a request's task only at shutdown (a client that goes away
            # is told through receive()), so this task has nothing left to do but answer
            if not started:
                reply = error_response(503, SHUTTING_DOWN,
                                       headers={"connection": "close", "retry-after": "5"})
                await reply(scope, receive, send)

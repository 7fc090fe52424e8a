"""The web view: the page at `/` and its static assets, all shipped in the package
(lensdb/service/web/). They hold no data, so they stay reachable without the bearer token:
the page asks for the token and sends it on every API call."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)
SCRIPTS = ("api", "store", "query", "timeline", "play", "main")  # in the order the page loads them
ASSETS = {**{f"{s}.js": "text/javascript" for s in SCRIPTS},
          "style.css": "text/css"}  # served as /web/<name>
PAGE_PATHS = ("/", *(f"/web/{name}" for name in ASSETS))  # open without the token


def _asset(name: str) -> bytes:
    return resources.files("lensdb.service.web").joinpath(name).read_bytes()


@router.get("/")
def page() -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


def _serve(name: str, kind: str):
    def serve() -> Response:
        return Response(_asset(name), media_type=f"{kind}; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
    return serve


for _name, _kind in ASSETS.items():
    router.add_api_route(f"/web/{_name}", _serve(_name, _kind), methods=["GET"])

"""`lensdb serve`: the HTTP JSON API (FastAPI + uvicorn) over the store."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from lensdb.cli.common import StoreOption, console_err
from lensdb.errors import LensDBError

HELP = (
    "Serve the store over HTTP: ingest jobs (files or live URLs), queries, search.\n\n"
    "Binds 127.0.0.1 by default. Bound to any other address it refuses to start without a "
    "token (--token or env LENSDB_TOKEN); with a token every request needs "
    "`Authorization: Bearer TOKEN`. Only files under the --allow directories (default: the "
    "current directory) can be ingested by path or loaded as model weights; `path` takes "
    "files only, `url` http(s), rtsp(s) and rtmp.\n\n"
    "OpenAPI docs at http://HOST:PORT/docs. Examples:\n\n"
    "  lensdb serve --allow /data/videos\n\n"
    "  LENSDB_TOKEN=s3cret lensdb serve --host 0.0.0.0 --port 8080 --allow /data/videos\n"
)


def register(app: typer.Typer) -> None:
    @app.command("serve", help=HELP)
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", help="Address to bind."),
        port: int = typer.Option(8000, help="Port to bind."),
        token: str | None = typer.Option(None, envvar="LENSDB_TOKEN", show_envvar=True,
                                         help="Bearer token every request must carry."),
        allow: list[Path] = typer.Option(None, "--allow",
                                         help="Directory whose files may be ingested "
                                              "(repeatable; default: the current directory)."),
        store: Path = StoreOption,
        embedder: str = typer.Option(None, help="Embedder spec for search, when the store "
                                     "cannot name it (CLIP from a local checkpoint)."),
        log_level: str = typer.Option("info", help="uvicorn log level."),
        shutdown_grace: int = typer.Option(
            5, help="Seconds a stopping server (Ctrl-C, SIGTERM) lets requests in flight "
                      "finish before it drops them; running ingest jobs then stop after "
                      "their batch."),
        as_json: bool = typer.Option(False, "--json", help="Print the serving banner as one "
                                     "JSON object on stdout (url, store, allowed roots; never "
                                     "the token) before serving."),
    ) -> None:
        from lensdb.service.auth import is_loopback

        token = token or None
        if not is_loopback(host) and not token:
            raise LensDBError(f"refusing to serve on {host} without a token: pass --token or "
                              "set LENSDB_TOKEN (or bind 127.0.0.1)")
        if not 1 <= port <= 65535:
            raise LensDBError("--port must be between 1 and 65535")
        if not 0 <= shutdown_grace <= 3600:
            raise LensDBError("--shutdown-grace must be between 0 and 3600 seconds")
        roots = [str(p) for p in (allow or [Path(os.getcwd())])]
        for root in roots:
            if not Path(root).is_dir():
                raise LensDBError(f"--allow {root}: not a directory")
        import uvicorn
        from uvicorn.config import LOG_LEVELS

        if log_level.lower() not in LOG_LEVELS:
            raise LensDBError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, "
                              f"not '{log_level}'")
        _check_bindable(host, port)
        if embedder is not None:
            from lensdb.models.resolve import resolve_embedder

            resolve_embedder(embedder)  # a misspelt spec now, not at the first search

        from lensdb.service.app import LOOPBACK_HOSTS, create_app
        from lensdb.service.limits import MAX_REQUEST_HEAD
        from lensdb.storage.store import Store, default_store_path

        store_dir = store or default_store_path()
        api = create_app(store_dir, token=token, allow=roots, embedder=embedder,
                         hosts=None if token else (*LOOPBACK_HOSTS, host))
        empty = "" if Store(Path(store_dir)).catalog.exists() else (
            " (no store there yet: the first ingest creates it; until then queries answer "
            "'no LensDB store')")
        if as_json:
            import json  # one line: a supervisor reads the banner with readline

            typer.echo(json.dumps({
                "url": f"http://{host}:{port}", "docs": f"http://{host}:{port}/docs",
                "store": str(store_dir), "store_exists": not empty, "allow": roots,
                "token_required": bool(token)}))
        else:
            console_err.print(
                f"LensDB serving {store_dir}{empty} on http://{host}:{port} (docs at /docs); "
                f"ingest allowed under {', '.join(roots)}"
                + ("; bearer token required" if token else ""), highlight=False)
        # h11 on purpose (not httptools when installed): one parser, one limit, so a long
        # request reaches the app and gets its declared JSON error, not a plain-text 400
        uvicorn.run(api, host=host, port=port, log_level=log_level.lower(), http="h11",
                    h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
                    timeout_graceful_shutdown=shutdown_grace)


def _check_bindable(host: str, port: int) -> None:
    """A port in use or an address that is not this machine's: one error line now, not
    uvicorn's log lines after the banner."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LensDBError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise LensDBError(f"cannot listen on {host}:{port}: {exc.strerror}") from None

"""A video is its path, not its file name: unique display names, and user text -> one video.

Every video row has an id and a path (absolute for files; the URL, or "-" for stdin). Its
`name` in the catalog is what answers show: the shortest trailing part of its path that no
other video's path ends with (`clip.mp4`, or `a/clip.mp4` and `b/clip.mp4` once both are
there); videos with the very same path (stdin twice, a file whose content changed) get their
id too (`stdin #3`). Names are recomputed whenever a video is registered, in the same
transaction, so they stay unique. `video = ...` in a query may give a name, a full path or
any trailing part of a path that picks out one video (`resolve`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from lensdb.errors import QueryError, VideoError

STDIN_NAME = "stdin"


def _parts(path: str) -> list[str]:
    if path == "-":
        return [STDIN_NAME]
    if "://" in path:
        return [path]  # a URL is its own name
    return [p for p in path.replace("\\", "/").split("/") if p] or [path]


def unique_names(rows: Iterable[tuple[int, str | None]]) -> dict[int, str]:
    """{video id: display name} for (video id, path) rows; see the module docstring."""
    parts = {int(v): _parts(path or "") for v, path in rows}
    by_last: dict[str, list[int]] = {}
    for v, ps in parts.items():
        by_last.setdefault(ps[-1], []).append(v)
    names: dict[int, str] = {}
    for group in by_last.values():
        for v in group:
            mine, depth = parts[v], 1
            others = [parts[o] for o in group if o != v and parts[o] != mine]
            while depth < len(mine) and any(o[-depth:] == mine[-depth:] for o in others):
                depth += 1
            name = "/".join(mine[-depth:])
            if any(parts[o] == mine for o in group if o != v):
                name = f"{name} #{v}"  # the same path twice: only the id tells them apart
            names[v] = name
    return names


def rename_all(con) -> None:
    """Recompute every video's display name (inside the caller's write transaction)."""
    rows = con.execute("SELECT video_id, path, name FROM videos WHERE path IS NOT NULL"
                       ).fetchall()
    names = unique_names((v, path) for v, path, _ in rows)
    for v, _, old in rows:
        if names[v] != old:
            con.execute("UPDATE videos SET name = ? WHERE video_id = ?", [names[v], v])


def resolve(text: str, rows: list[tuple[int, str | None, str | None]]) -> str | None:
    """The stored name of the one video `text` means, from (video id, name, path) rows:
    its name, its full path, or a trailing part of its path ending at a '/'. None: no
    video; two or more: a QueryError that lists them."""
    exact = [r for r in rows if r[1] == text]
    if len(exact) == 1:
        return text
    full = os.path.abspath(text) if text and text != "-" else text
    hits = exact or [r for r in rows if r[2] is not None and r[2] in (text, full)]
    if not hits and text.strip("/"):
        tail = "/" + text.replace("\\", "/").strip("/")
        hits = [r for r in rows if r[2] is not None and r[2].replace("\\", "/").endswith(tail)]
    if len(hits) == 1:
        return hits[0][1]
    if not hits:
        return None
    listed = ", ".join(f"'{r[1]}' ({r[2]})" for r in sorted(hits)[:8])
    more = f" and {len(hits) - 8} more" if len(hits) > 8 else ""
    raise QueryError(f"video '{text}' is ambiguous: {len(hits)} videos match: {listed}{more}; "
                     "give one of these names or a full path")


def resolve_known(text: str, rows: list[tuple[int, str | None, str | None]]) -> str:
    """`resolve`, where no video is an error that names the closest stored names: a typo
    must not read as a query that matched nothing."""
    import difflib

    name = resolve(text, rows)
    if name is not None:
        return name
    names = sorted({r[1] for r in rows if r[1]})
    lower = {n.lower(): n for n in names}
    close = [lower[n] for n in difflib.get_close_matches(text.lower(), list(lower), n=3,
                                                          cutoff=0.75)]
    close = close or [n for n in names if n.lower().startswith(text.lower())][:3]
    hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
    raise QueryError(f"no video named '{text}' in the store{hint} (`lensdb info` lists the "
                     "videos)")


def resolve_query(con, query):
    """The query (a plan Selection/Aggregate or a bare predicate) with each `video = X` and
    `video != X` naming its video by stored name; X matching no video is an error
    (`resolve_known`; LIKE patterns may match none)."""
    from dataclasses import replace

    from lensdb.query import plan as p

    where = query.where if isinstance(query, p.Selection | p.Aggregate) else query
    if not any(m.op in ("=", "!=") for m in p.video_matches(where)):
        return query
    rows = con.execute("SELECT video_id, name, path FROM videos").fetchall()

    def walk(node):
        if isinstance(node, p.VideoMatch) and node.op in ("=", "!="):
            return p.VideoMatch(node.op, resolve_known(node.pattern, rows))
        if isinstance(node, p.And | p.Or):
            return type(node)(tuple(walk(item) for item in node.items))
        if isinstance(node, p.Not):
            return p.Not(walk(node.item))
        return node

    if isinstance(query, p.Selection | p.Aggregate):
        return replace(query, where=walk(query.where))
    return walk(query)


def recorded_file(path: str) -> str:
    """A stored video file's path, refused (VideoError) when it now leads elsewhere: ingest
    records the real path (links resolved), so a link put there since then would make
    readers open a file nobody ingested (one outside a server's allowed roots)."""
    if path and os.path.lexists(path) and os.path.realpath(path) != path:
        raise VideoError(f"the source video {path} now leads to another file (a link made "
                         "since ingest); it is not read")
    return path

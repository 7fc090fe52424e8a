"""Similarity search over the stored embeddings: by text (CLIP), by example image, or by a
stored frame, optionally filtered by a query-language predicate and a video name.

Filtering happens inside FAISS with an `IDSelectorBatch` of the frames that match, so a
narrow filter still returns k results whenever more than k frames match. Codecs whose
FAISS index cannot take a selector (PQ, LSH) fall back to over-fetching, doubling the
fetch until k matching frames are found or the whole index has been ranked.

An IVF codec (`IVF1024,PQ64`, ...) scans only `nprobe` of its inverted lists per query
(default `DEFAULT_NPROBE`, capped at the number of lists; nprobe = lists is exhaustive):
fewer is faster, more finds more of the true nearest frames. Other codecs scan every
vector and report nprobe as not applicable (None).

Scores are cosine similarities: vectors are unit length and the index is L2, so
cosine = 1 - d/2 for a squared distance d (approximate under lossy codecs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import EmbedderMismatchError, LensDBError, StoreError
from lensdb.storage.store import Store

MAX_K = 10_000
SOURCES = ("best", "predicted", "detected")
DEFAULT_NPROBE = 16  # inverted lists an IVF search scans when not told (capped at nlist)
MAX_NPROBE = 1 << 20


@dataclass
class SearchHit:
    """One frame found by a search."""

    frame_id: int
    video: str
    ts: float  # seconds from the start of the video
    score: float  # cosine similarity to the query
    counts: dict[str, float] = field(default_factory=dict)  # per class, under `source`
    video_id: int = 0
    frame_index: int = 0
    labelled: bool = False  # counts are the detector's (True) or predicted (False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_embedder(store: Store, spec: str | None = None, device: str | None = "auto"):
    """The embedder that made the store's vectors, loaded once per Store object (kept on it,
    so a caller that keeps the Store, like the service, loads it once).

    `spec` is the embedder as given to ingest (needed for a CLIP loaded from a local
    checkpoint, whose path the store does not record); it must load the same model id.
    """
    from lensdb.models.registry import get_embedder

    meta = store.meta()
    want = meta.get("embedder_id")
    if not want:
        raise StoreError("the store holds no vectors yet; ingest a video first")
    name = spec or meta.get("embedder_spec") or meta.get("embedder_name") or want
    name = name.split("@")[0]
    key = ("embedder", want, name, str(device))
    with store.kept_models_lock:
        if key in store.kept_models:
            return store.kept_models[key]
        embedder = get_embedder(name, device=device)
        if embedder.model_id != want:
            raise EmbedderMismatchError(
                f"the store's vectors come from '{want}' but '{name}' loads "
                f"'{embedder.model_id}'; pass --embedder with the spec used at ingest "
                "(e.g. clip:ViT-B-32:/path/to/checkpoint.pt)"
            )
        store.kept_models[key] = embedder
        return embedder


def load_image(image: str | Path | np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB array from a path or an array (gray and RGBA are converted)."""
    if isinstance(image, np.ndarray):
        arr = image
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(image) as im:
                arr = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise LensDBError(f"no such image: {image}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise LensDBError(f"cannot read {image} as an image: {exc}") from None
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise LensDBError(f"an image must be HxWx3 RGB, not shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3].astype(np.uint8))


def query_vector(store: Store, index, text: str | None, image: Any, like: int | None,
                 embedder: str | None, device: str | None = "auto") -> np.ndarray:
    given = [x for x in (text, image, like) if x is not None and not (isinstance(x, str)
                                                                       and not x.strip())]
    if len(given) != 1:
        raise LensDBError("search takes exactly one of: a text, an image, a stored frame id")
    if like is not None:
        try:
            vec = index.reconstruct(int(like))
        except (RuntimeError, OverflowError, TypeError, ValueError):
            raise LensDBError(f"frame {like} has no stored vector") from None
        return _unit(np.asarray(vec, np.float32)[None, :])
    model = store_embedder(store, embedder, device)
    if text is not None:
        if not getattr(model, "has_text", False):
            raise LensDBError(
                f"the store's embedder '{model.name}' has no text side: search by example "
                "with an image (--image PATH), or ingest with a CLIP embedder for text search"
            )
        return _unit(model.embed_text([text]))
    return _unit(model.embed_images([load_image(image)]))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(1, -1)
    return x / max(float(np.linalg.norm(x)), 1e-12)


def allowed_ids(store: Store, where: str | None, video: str | None,
                source: str) -> np.ndarray | None:
    """Frame ids passing the filters, or None when there is no filter."""
    ids: np.ndarray | None = None
    if where is not None and where.strip():
        from lensdb.query import matching_frame_ids

        ids = np.asarray(matching_frame_ids(store, where, source=source), np.int64)
    if video is not None:
        from lensdb.videos import resolve_known

        with store.catalog.connect() as con:  # a name, a path or an end of one: one video
            name = resolve_known(video, con.execute("SELECT video_id, name, path FROM videos"
                                                    ).fetchall())
            rows = con.execute(
                "SELECT f.frame_id FROM frames f JOIN videos v USING (video_id) "
                "WHERE v.name = ?", [name]
            ).fetchall()
        vids = np.array([r[0] for r in rows], np.int64)
        ids = vids if ids is None else np.intersect1d(ids, vids)
    return ids


def index_lists(index) -> int | None:
    """The number of inverted lists of a loaded index (IVF codecs), else None."""
    from lensdb.storage.vectors import find_ivf

    parts = getattr(index, "parts", None)
    ivf = find_ivf(parts[0] if parts else index)
    return int(ivf.nlist) if ivf is not None else None


def check_nprobe(nprobe: int | None) -> None:
    if nprobe is not None and not 1 <= int(nprobe) <= MAX_NPROBE:
        raise LensDBError(f"nprobe must be between 1 and {MAX_NPROBE:,} (lists scanned per "
                          f"query), not {nprobe}")


def effective_nprobe(index, nprobe: int | None) -> int | None:
    """The lists an IVF search scans: `nprobe` (or DEFAULT_NPROBE) capped at the index's
    lists; None for a codec without lists (nprobe does not apply)."""
    check_nprobe(nprobe)
    nlist = index_lists(index)
    if nlist is None:
        return None
    return min(int(nprobe) if nprobe is not None else DEFAULT_NPROBE, nlist)


def _params(index, nprobe: int | None, sel=None):
    """FAISS search parameters: IVF ones (nprobe) for an IVF index, else the plain ones."""
    import faiss

    probe = effective_nprobe(index, nprobe)
    if probe is not None:
        params = faiss.SearchParametersIVF()
        params.nprobe = probe
        if sel is not None:
            params.sel = sel
        return params
    return None if sel is None else faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]


def filtered_search(index, q: np.ndarray, k: int, allowed: np.ndarray | None,
                    use_selector: bool = True,
                    nprobe: int | None = None) -> list[tuple[int, float]]:
    """(frame id, squared distance) of the k nearest vectors among `allowed` (all if None);
    `nprobe`: IVF lists scanned (see `effective_nprobe`), ignored by other codecs."""
    import faiss

    total = int(index.ntotal)
    if total == 0:
        return []
    if allowed is None:
        dist, ids = index.search(q, min(k, total), params=_params(index, nprobe))
        return _pairs(ids[0], dist[0], None, k)
    allowed = np.unique(np.asarray(allowed, np.int64))
    if len(allowed) == 0:
        return []
    if use_selector:
        want = min(k, len(allowed), total)
        try:
            sel = faiss.IDSelectorBatch(allowed)
            dist, ids = index.search(q, want, params=_params(index, nprobe, sel))
            return _pairs(ids[0], dist[0], None, k)
        except RuntimeError:  # this codec's index takes no selector: over-fetch instead
            pass
    keep = set(allowed.tolist())
    fetch = min(total, max(4 * k, 64))
    while True:
        dist, ids = index.search(q, fetch, params=_params(index, nprobe))
        pairs = _pairs(ids[0], dist[0], keep, k)
        if len(pairs) >= k or fetch >= total:
            return pairs
        fetch = min(total, fetch * 2)


def _pairs(ids: np.ndarray, dist: np.ndarray, keep: set[int] | None,
           k: int) -> list[tuple[int, float]]:
    out = []
    for i, d in zip(ids.tolist(), dist.tolist()):
        if i < 0 or (keep is not None and i not in keep):
            continue
        out.append((int(i), float(d)))
        if len(out) == k:
            break
    return out


def frame_details(store: Store, ids: list[int], source: str = "best") -> dict[int, dict]:
    """Video, time, labelled flag and per-class counts (under `source`) of some frames."""
    if not ids:
        return {}
    out: dict[int, dict] = {}
    with store.catalog.connect() as con:
        con.execute("CREATE TEMP TABLE want AS SELECT unnest(?::BIGINT[]) AS frame_id", [ids])
        for fid, vid, name, index, ts, labelled in con.execute(
            "SELECT f.frame_id, f.video_id, v.name, f.frame_index, f.ts, "
            "coalesce(f.labelled, false) FROM frames f JOIN want USING (frame_id) "
            "JOIN videos v USING (video_id)"
        ).fetchall():
            out[int(fid)] = {"video_id": int(vid), "video": name, "frame_index": int(index),
                             "ts": float(ts), "labelled": bool(labelled), "counts": {}}
        if source in ("best", "detected"):
            for fid, cls, n in con.execute(
                "SELECT frame_id, class, n FROM counts JOIN want USING (frame_id)"
            ).fetchall():
                out[int(fid)]["counts"][cls] = float(n)
        if source in ("best", "predicted"):
            for fid, cls, value in con.execute(
                "SELECT frame_id, class, avg(value) FROM predictions JOIN want USING "
                "(frame_id) GROUP BY ALL"
            ).fetchall():
                d = out[int(fid)]
                if source == "predicted" or not d["labelled"]:
                    d["counts"][cls] = round(float(value), 3)
    return out


@dataclass
class SearchResult:
    """What a search found and how: the hits and the IVF lists scanned."""

    hits: list[SearchHit]
    codec: str  # the store's codec (FAISS factory string)
    nlist: int | None  # inverted lists of an IVF codec, None for others
    nprobe: int | None  # lists scanned per query; None: not applicable (no lists)

    def to_dict(self) -> dict[str, Any]:
        return {"hits": [h.to_dict() for h in self.hits], "codec": self.codec,
                "nlist": self.nlist, "nprobe": self.nprobe}


def search(store: Store, text: str | None = None, **options: Any) -> list[SearchHit]:
    """The k frames nearest to a text, an image or a stored frame, best first; the hits
    of `search_result` (same options)."""
    return search_result(store, text=text, **options).hits


def search_result(
    store: Store,
    text: str | None = None,
    image: str | Path | np.ndarray | None = None,
    k: int = 10,
    where: str | None = None,
    video: str | None = None,
    source: str = "best",
    like: int | None = None,
    embedder: str | None = None,
    device: str | None = "auto",
    nprobe: int | None = None,
) -> SearchResult:
    """The k frames nearest to a text, an image or a stored frame (`like`), best first,
    among the frames matching `where` (query-language predicate) and `video` (a name).
    `nprobe`: IVF lists scanned per query (default DEFAULT_NPROBE, capped at the lists);
    accepted and reported as None (not applicable) for codecs without lists."""
    if not 1 <= int(k) <= MAX_K:
        raise LensDBError(f"k must be between 1 and {MAX_K}")
    check_nprobe(nprobe)
    if source not in SOURCES:
        raise LensDBError(f"unknown source '{source}'; use one of {', '.join(SOURCES)}")
    allowed = allowed_ids(store, where, video, source)  # before the index: index >= allowed
    index = store.load_index()
    q = query_vector(store, index, text, image, like, embedder, device)
    if q.shape[1] != index.d:
        raise EmbedderMismatchError(f"the query vector has {q.shape[1]} dimensions, the "
                                    f"store's vectors {index.d}")
    pairs = filtered_search(index, q, int(k), allowed, nprobe=nprobe)
    details = frame_details(store, [fid for fid, _ in pairs], source)
    hits = []
    for fid, dist in pairs:
        d = details.get(fid)
        if d is None:  # a vector without a catalog row cannot happen in a consistent store
            continue
        hits.append(SearchHit(frame_id=fid, score=round(1.0 - dist / 2.0, 6), **d))
    return SearchResult(hits, store.meta().get("codec", ""), index_lists(index),
                        effective_nprobe(index, nprobe))


__all__ = ["SearchHit", "SearchResult", "search", "search_result", "store_embedder",
           "frame_details", "filtered_search", "DEFAULT_NPROBE"]

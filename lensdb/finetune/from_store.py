"""Captions from a store: its labelled frames, decoded again, captioned by their counts
("a street with 3 people and 1 car"), so a store can fine-tune its own embedder.

    captions_from_store(store, "out/", query="count(person) >= 1", limit=500)
    # out/images/*.jpg and out/captions.csv (image_path,text)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from lensdb.errors import LensDBError, ParameterError
from lensdb.outputs import output_dir
from lensdb.runs import atomic_write_bytes, atomic_write_text

DEFAULT_TEMPLATE = "a street with {counts}"
IRREGULAR = {"person": "people", "bus": "buses", "mouse": "mice", "knife": "knives",
             "sheep": "sheep", "glass": "glasses", "bench": "benches"}


def plural(word: str, n: int) -> str:
    word = word.lower()
    if n == 1:
        return word
    return IRREGULAR.get(word, word + "s")


def caption(counts: dict[str, int], template: str = DEFAULT_TEMPLATE) -> str:
    """'a street with 3 people and 1 car' (classes by count, most first; none: 'nothing')."""
    parts = [f"{n} {plural(c, n)}" for c, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
             if n > 0]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] \
        if parts else "nothing"
    return template.format(counts=text)


def _labelled_frames(store, query: str | None) -> np.ndarray:
    if query:
        from lensdb.query.execute import matching_frame_ids

        return matching_frame_ids(store, query, source="detected")
    with store.catalog.connect() as con:
        rows = con.execute("SELECT frame_id FROM frames WHERE labelled ORDER BY frame_id")
        return np.asarray([r[0] for r in rows.fetchall()], dtype=np.int64)


def captions_from_store(store, out_dir: str | Path, query: str | None = None,
                        limit: int = 1000, template: str = DEFAULT_TEMPLATE,
                        classes: list[str] | None = None) -> dict[str, Any]:
    """Write a JPEG per labelled frame (the query's, evenly thinned to `limit`) and
    captions.csv into `out_dir`. A source video that is gone is a one-line error."""
    from lensdb.export import render_frame
    from lensdb.media import FrameReader

    if limit < 1:
        raise ParameterError("limit", "must be at least 1")
    if "{counts}" not in template:
        raise ParameterError("template", "must contain {counts}")
    try:
        caption({}, template)
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError("template", f"takes {{counts}} and nothing else in braces "
                             f"(write {{{{ and }}}} for literal ones): {exc}") from None
    ids = _labelled_frames(store, query)
    if len(ids) == 0:
        raise LensDBError("no labelled frames" + (f" where {query}" if query else "") +
                          "; pairs need detector counts (ingest with --detect-every)")
    if len(ids) > limit:
        ids = ids[np.linspace(0, len(ids) - 1, limit).round().astype(int)]
    with store.catalog.connect() as con:
        rows = con.execute("SELECT frame_id, class, n FROM counts WHERE frame_id IN "
                           "(SELECT unnest(?::BIGINT[]))", [ids.tolist()]).fetchall()
    counts: dict[int, dict[str, int]] = {int(i): {} for i in ids}
    for fid, cls, n in rows:
        if classes is None or cls in classes:
            counts[int(fid)][cls] = int(n)
    out = output_dir(out_dir, "the pairs folder", store.root)
    (out / "images").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_path", "text"])
    reader = FrameReader()
    try:
        from lensdb.media import encode_jpeg

        for fid in ids.tolist():
            name = f"images/frame-{fid:09d}.jpg"
            atomic_write_bytes(out / name, encode_jpeg(render_frame(store, fid, False, reader)))
            writer.writerow([name, caption(counts[fid], template)])
    finally:
        reader.close()
    atomic_write_text(out / "captions.csv", buf.getvalue())
    texts = {caption(c, template) for c in counts.values()}
    return {"file": str(out / "captions.csv"), "images": len(ids), "distinct_captions":
            len(texts), "query": query}

"""`LensDB`: the Python API. The CLI and the HTTP service call these same methods."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from lensdb.config import IngestConfig
from lensdb.ingest import IngestReport, ProgressFn
from lensdb.ingest import ingest as run_ingest
from lensdb.storage import held
from lensdb.storage.catalog import one_row
from lensdb.storage.codecs import make_codec
from lensdb.storage.store import Store, default_store_path


class LensDB:
    """A store, opened for reading; writing methods take the store's writer lock."""

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def open(cls, path: str | Path | None = None, create: bool = False) -> LensDB:
        return cls(Store.open(path or default_store_path(), create=create))

    @property
    def path(self) -> Path:
        return self.store.root

    def ingest(
        self,
        sources: list[str],
        config: IngestConfig | None = None,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        wait: bool | float = False,
        **options: Any,
    ) -> IngestReport:
        """Ingest videos; keyword options override fields of IngestConfig. `wait`: wait for
        another process's write to end (True, or at most this many seconds)."""
        config = config or IngestConfig(**options)
        return run_ingest(self.store, sources, config, progress=progress, stop=stop, wait=wait)

    def info(self) -> dict[str, Any]:
        """Videos, frames, labels, counts, vector space and sizes, from committed data."""
        return store_info(self.store)

    def train_counter(self, config: Any = None, progress: Any = None, **options: Any) -> Any:
        """Train count predictors (see lensdb.counting.TrainConfig); a TrainReport."""
        from lensdb.counting import TrainConfig, train_counters

        return train_counters(self.store, config or TrainConfig(**options), progress=progress)

    def query(self, text: str, source: str = "best", frames: bool = False,
              gap: float | None = None) -> Any:
        """Answer a count query from stored counts and predictions; a QueryResult."""
        from lensdb.query import run_query

        return run_query(self.store, text, source=source, frames=frames, gap=gap)

    def search(self, text: str | None = None, **options: Any) -> list:
        """Nearest frames to a text or an example image, optionally filtered."""
        from lensdb.search import search

        return search(self.store, text=text, **options)

    def export(self, found: Any, out_dir: str | Path, **options: Any) -> Any:
        """Write what a query or search found as JPEGs (and clips) with a contact sheet."""
        from lensdb.export import export

        return export(self.store, found, out_dir, **options)


def store_info(store: Store) -> dict[str, Any]:
    with store.catalog.connect() as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        videos = [
            dict(zip(("video_id", "name", "path", "status", "fps", "width", "height",
                      "duration", "frames", "labelled", "message", "sampling"), row))
            for row in con.execute(
                "SELECT v.video_id, v.name, v.path, v.status, v.fps, v.width, v.height, "
                "v.duration, count(f.frame_id), coalesce(sum(f.labelled::INT), 0), v.message, "
                "v.sampling FROM videos v LEFT JOIN frames f USING (video_id) "
                "GROUP BY ALL ORDER BY v.video_id"
            ).fetchall()
        ]
        frames, labelled = one_row(con.execute(
            "SELECT count(*), coalesce(sum(labelled::INT), 0) FROM frames"
        ))
        classes = {
            cls: {"detections": int(n), "frames_with": int(fw)}
            for cls, n, fw in con.execute(
                "SELECT class, sum(n), count(*) FROM counts GROUP BY class ORDER BY 2 DESC"
            ).fetchall()
        }
        vectors = one_row(con.execute("SELECT coalesce(sum(n), 0) FROM segments"))
        listed = [r[0] for r in con.execute("SELECT file FROM segments ORDER BY 1").fetchall()]
        models = [
            dict(zip(("model_id", "class", "method", "size", "active", "train_frames",
                      "created_at", "metrics"), row))
            for row in con.execute(
                "SELECT model_id, class, method, size, active, train_frames, created_at, metrics "
                "FROM count_models ORDER BY model_id"
            ).fetchall()
        ]
    for m in models:
        m["metrics"] = json.loads(m["metrics"]) if m["metrics"] else None
        m["why"] = (m["metrics"] or {}).get("why")  # the method that won and the candidates' MAE
    for v in videos:  # the detector threshold its counts were made with (None: not recorded)
        v["conf"] = json.loads(v.pop("sampling") or "{}").get("conf")
    codec = meta.get("codec")
    bpv = None
    if codec and "dim" in meta:
        bpv = int(make_codec(codec, int(meta["dim"])).sa_code_size())
    return {
        "store": str(store.root),
        "schema_version": int(meta.get("schema_version", 0)),
        "embedder": meta.get("embedder_id"),
        "space_checks": json.loads(meta.get("space_checks") or "{}"),  # +int8 vs fp32
        # the last ingest's engine, devices, torch threads and batch size
        "last_ingest": json.loads(meta.get("last_ingest") or "null"),
        "dim": int(meta["dim"]) if "dim" in meta else None,
        "codec": codec,
        "bytes_per_vector": bpv,
        "videos": videos,
        "frames": int(frames),
        "labelled_frames": int(labelled),
        "vectors": int(vectors[0]),
        "segments": len(listed),
        # segment files the catalog lists that are not on disk (searches then fail)
        "missing_segments": [f for f in listed if not (store.vectors.dir / f).is_file()],
        "codec_missing": bool(listed) and not store.vectors.has_codec(),
        # frames kept for a codec that cannot train yet (videos `held`), not in the catalog
        "held_frames": held.frames(store.root),
        "classes": classes,
        "count_models": models,
        "index_bytes": store.vectors.size_on_disk(),
        "store_bytes": store.size_on_disk(),
    }

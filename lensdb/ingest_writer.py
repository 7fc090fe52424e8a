"""The write side of an ingest (either engine): the one `Writer` it commits through, what
a failed write leaves on the videos of the run, and the record of where its models ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lensdb import video_status as vs
from lensdb.config import IngestConfig
from lensdb.errors import first_line
from lensdb.frames import is_url
from lensdb.storage.codecs import min_training_points, training_points
from lensdb.storage.store import Store
from lensdb.timing import StageTimes
from lensdb.writer import Writer

if TYPE_CHECKING:
    from lensdb.ingest import VideoReport


def _load_predictors(store: Store):
    from lensdb.counting.predict import ActivePredictors  # part of LensDB: no fallback

    return ActivePredictors.load(store)


def record_run(store: Store, config: IngestConfig, devices: dict, threads: int) -> None:
    """Where the models of this ingest run (`lensdb info` shows the last one)."""
    from lensdb.storage.catalog import set_meta

    run = {"engine": config.engine, "devices": devices, "threads": threads,
           "batch_size": config.batch_size,
           "workers": config.workers if config.engine == "ray" else None}
    with store.catalog.connect(write=True) as con:
        set_meta(con, "last_ingest", json.dumps(run, sort_keys=True))


@contextmanager
def writing(store: Store, config: IngestConfig, stages: StageTimes,
            reports: list[VideoReport]) -> Iterator[Writer]:
    """The one writer of an ingest (either engine): flushed at the end, failures recorded
    on the videos (disk full named as such), closed and compacted however it ends."""
    # Nothing commits before the codec is trained, so train early: enough vectors for the
    # codec to learn from, and no more (Flat and fp16 commit from the first batch).
    need = min_training_points(store.meta()["codec"])
    train_size = training_points(store.meta()["codec"], config.codec_train_size)
    writer = Writer(store, stages, train_size, need, _load_predictors(store))
    try:
        yield writer
        writer.flush(final=True)
        _held(writer, reports)
    except Exception as exc:  # a write failed: the disk, most likely
        full = vs.disk_full(exc, store.root)
        _record_failure(store, reports, str(full or _first_line(exc)))
        if full is not None:
            raise full from None
        raise
    finally:
        writer.close()
        if writer.error is None:
            store.maybe_compact()


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, 200)}"


def _held(writer: Writer, reports: list[VideoReport]) -> None:
    """The videos whose frames wait in the store for the codec to train say so."""
    for r in reports:
        if r.video_id in writer.held:
            r.status, r.message = "held", writer.held[r.video_id]


def _record_failure(store: Store, reports: list[VideoReport], why: str) -> None:
    """A write failed mid-ingest: say so on this run's videos the catalog still has as
    `ingesting` (best effort: on a full disk the catalog may refuse too; `recover` then
    gives them a message on the next run)."""
    ids = [r.video_id for r in reports if r.video_id is not None]
    try:
        with store.catalog.connect() as con:
            open_ids = {v for (v,) in con.execute(
                "SELECT video_id FROM videos WHERE status = 'ingesting'").fetchall()}
    except Exception:  # noqa: BLE001 - the original error is the one to report
        open_ids = set(ids)
    for r in reports:
        if r.video_id is None or r.video_id not in open_ids or r.status in ("skipped",
                                                                           "failed"):
            continue
        live = r.name == "-" or is_url(r.name)
        r.status = "stopped" if live else "ingesting"
        r.message = why + (f"; {vs.LIVE_RESUME}" if live else "")
        try:
            vs.set_status(store, r.video_id, r.status, r.message)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass


"""Ingest through the real path with fake models: the detect-and-embed pair runs once per
frame, a missing counting package is an error (not silence), and `--wait`."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from ingest_fakes import FakeDetector, FakeEmbedder, install
from typer.testing import CliRunner

import lensdb
from lensdb.config import IngestConfig
from lensdb.errors import StoreError
from lensdb.models import registry
from lensdb.models.base import DetectAndEmbed, EmbeddedBatch
from lensdb.models.spec import ModelSpec

FAKE = install()
CALLS: dict[str, int] = {"joint": 0, "detect": 0, "embed": 0}


class PairedEmbedder(FakeEmbedder):
    name = "paired-embedder"
    model_id = "paired-embedder@0"

    def embed_images(self, images):
        CALLS["embed"] += len(images)
        return super().embed_images(images)


class PairedDetector(FakeDetector):
    """One network, two heads: `detect_and_embed` gives both from one pass."""

    name = "paired-detector"
    model_id = "paired-detector@0"

    def embeds_like(self, embedder) -> bool:
        return isinstance(embedder, PairedEmbedder)

    def detect(self, images):
        CALLS["detect"] += len(images)
        return super().detect(images)

    def detect_and_embed(self, images) -> EmbeddedBatch:
        CALLS["joint"] += len(images)
        vectors = FakeEmbedder().embed_images(images)
        dets = FakeDetector.detect(self, images)  # "the same forward pass"
        return EmbeddedBatch(vectors, lambda positions: [dets[i] for i in positions])


def _spec(name, kind, load):
    return ModelSpec(name=name, kind=kind, description="test pair", source="tests",
                     size_mb=0.0, load=load, fetch=lambda: None, is_present=lambda: True)


registry.register(_spec("paired-detector", "detector", lambda conf=0.3, **_: PairedDetector()))
registry.register(_spec("paired-embedder", "embedder", lambda **_: PairedEmbedder()))
PAIR = {"detector": "paired-detector", "embedder": "paired-embedder"}


def test_ingest_runs_a_paired_detector_and_embedder_once_per_frame(tmp_path, make_video):
    assert isinstance(PairedDetector(), DetectAndEmbed)
    video = make_video(n_frames=20, fps=10)
    db = lensdb.open(str(tmp_path / "s"), create=True)
    CALLS.update(joint=0, detect=0, embed=0)
    report = db.ingest([str(video)], IngestConfig(batch_size=8, detect_every=2, **PAIR))
    assert report.frames == 20 and report.videos[0].labelled == 10
    assert CALLS == {"joint": 20, "detect": 0, "embed": 0}
    separate = lensdb.open(str(tmp_path / "t"), create=True).ingest(
        [str(video)], IngestConfig(batch_size=8, detect_every=2, **FAKE))
    assert separate.videos[0].counts == report.videos[0].counts
    with db.store.catalog.connect() as con:
        labelled = con.execute("SELECT count(*) FROM frames WHERE labelled").fetchone()[0]
    assert labelled == 10
    ids, vecs = db.store.decoded_vectors()
    assert ids.tolist() == list(range(20)) and np.allclose(np.linalg.norm(vecs, axis=1), 1,
                                                           atol=0.02)


def test_a_broken_counting_package_is_an_error_not_silence(tmp_path, make_video, monkeypatch):
    monkeypatch.setitem(sys.modules, "lensdb.counting.predict", None)  # import fails
    db = lensdb.open(str(tmp_path / "s"), create=True)
    with pytest.raises(ImportError):
        db.ingest([str(make_video(n_frames=6))], IngestConfig(batch_size=4, **FAKE))


def test_cli_ingest_wait_waits_for_the_other_writer(tmp_path, make_video):
    from lensdb.cli.app import app

    video = str(make_video(n_frames=6))
    root = tmp_path / "s"
    lensdb.open(str(root), create=True)
    args = ["ingest", video, "--store", str(root), "--detector", FAKE["detector"],
            "--embedder", FAKE["embedder"], "--json"]
    runner = CliRunner()
    result: dict = {}
    with lensdb.open(str(root)).store.writer():
        refused = runner.invoke(app, args)  # `lensdb.cli.app.main` prints it as one line
        assert isinstance(refused.exception, StoreError)
        assert "another process is writing" in str(refused.exception)
        assert "--wait" in str(refused.exception)

        def run() -> None:
            result["r"] = runner.invoke(app, [*args, "--wait"])

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.0)
        assert t.is_alive()  # waiting for the writer lock
    t.join(timeout=60)
    assert result["r"].exit_code == 0, result["r"].output
    assert lensdb.open(str(root)).info()["frames"] == 6

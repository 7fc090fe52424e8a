"""An int8 embedder in a store: its verdict is kept and shown; the same space mixes with fp32."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lensdb.cli.app import app
from lensdb.models import clip_int8

runner = CliRunner()


@pytest.fixture
def tiny_ckpt(tmp_path, monkeypatch) -> str:
    """clip:lensdb-tiny with weights in a file (named weights: one id on every load), and the
    check on 4 synthetic scenes (the real sample decodes videos)."""
    from lensdb.models.registry import get_embedder

    monkeypatch.setenv("LENSDB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(clip_int8, "sample_images",
                        lambda n=4: (clip_int8.synthetic_images(4), "4 synthetic scenes"))
    path = tmp_path / "tiny.pt"
    torch.save(get_embedder("clip:lensdb-tiny").model.state_dict(), path)
    return f"clip:lensdb-tiny:{path}"


def test_int8_vectors_join_an_fp32_store_and_the_verdict_is_shown(tmp_path, make_video,
                                                                  tiny_ckpt):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from ingest_fakes import install

    import lensdb
    from lensdb.config import IngestConfig

    fake = install()
    db = lensdb.open(str(tmp_path / "s"), create=True)
    video = make_video("a.mkv", n_frames=6)
    before = torch.get_num_threads()
    try:
        db.ingest([str(video)], IngestConfig(batch_size=4, codec="Flat", threads=1,
                                             detector=fake["detector"], embedder=tiny_ckpt))
        fp32_id = db.info()["embedder"]
        db.ingest([str(make_video("b.mkv", n_frames=6))],
                  IngestConfig(batch_size=4, codec="Flat", threads=1, detector=fake["detector"],
                               embedder=tiny_ckpt + "+int8"))
    finally:
        torch.set_num_threads(before)
    info = db.info()
    assert info["embedder"] == fp32_id and info["frames"] == 12  # the same space, one store
    check = info["space_checks"][tiny_ckpt + "+int8"]
    assert check["same_space"] and check["n"] == 4 and check["cosine_min"] >= 0.99
    shown = runner.invoke(app, ["info", "--store", str(tmp_path / "s")],
                          env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "same space as fp32" in shown.stdout


def test_models_check_prints_the_verdict(tiny_ckpt):
    import json

    result = runner.invoke(app, ["models", "check", tiny_ckpt + "+int8", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["same_space"] and out["spec"].endswith("+int8") and out["layers"] == 0
    bad = runner.invoke(app, ["models", "check", "clip:lensdb-tiny"])
    assert bad.exit_code != 0 and "not quantised" in str(bad.exception)

"""Device choice: auto picks what torch sees; asking for what is not there is one clear line."""

from __future__ import annotations

import pytest
import torch

from lensdb.device import resolve_device, set_threads, uses_half
from lensdb.errors import LensDBError


def test_auto_and_cpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else
                                      resolve_device("auto"))
    assert not uses_half("cpu") and uses_half("cuda:0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_where_there_is_none_names_what_torch_sees():
    for spec in ("cuda", "cuda:1", "CUDA:0"):
        with pytest.raises(LensDBError, match="sees 0 CUDA device"):
            resolve_device(spec)


def test_unknown_devices_and_threads():
    for spec in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(LensDBError, match="not one of"):
            resolve_device(spec)
    with pytest.raises(LensDBError):
        set_threads(0)
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_model_takes_the_device_it_can_use(monkeypatch):
    import lensdb.device as d

    monkeypatch.setattr(d, "resolve_device", lambda spec: "cpu" if spec == "cpu" else "cuda:0")
    assert d.model_device("auto", ("cpu",), "ssd-mobilenet-v2") == "cpu"  # LiteRT: CPU
    assert d.model_device("auto", ("cpu", "cuda"), "yolo11n") == "cuda:0"
    assert d.model_device("cpu", ("cpu", "cuda"), "yolo11n") == "cpu"
    with pytest.raises(LensDBError, match="ssd-mobilenet-v2 runs on cpu only"):
        d.model_device("cuda", ("cpu",), "ssd-mobilenet-v2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_ingest_on_a_missing_gpu_is_one_line_and_stores_nothing(tmp_path, make_video):
    import subprocess
    import sys

    video = make_video("clip.mkv", n_frames=5)
    store = tmp_path / "store"
    r = subprocess.run([sys.executable, "-m", "lensdb.cli.app", "ingest", str(video), "--store",
                        str(store), "--device", "cuda"], capture_output=True, text=True,
                       timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "sees 0 CUDA device" in lines[0], r.stderr
    assert not (store / "catalog.duckdb").exists()


def test_the_ingest_report_names_devices_and_threads(tmp_path, make_video):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from ingest_fakes import install

    import lensdb
    from lensdb.config import IngestConfig

    fake = install()
    db = lensdb.open(str(tmp_path / "s"), create=True)
    before = torch.get_num_threads()
    try:
        report = db.ingest([str(make_video("a.mkv", n_frames=8))],
                           IngestConfig(batch_size=4, codec="Flat", threads=1, **fake))
    finally:
        torch.set_num_threads(before)
    data = report.to_dict()
    assert data["devices"] == {"detector": "cpu", "embedder": "cpu"} and data["threads"] == 1


def test_the_batch_follows_the_device_unless_given():
    from lensdb.config import IngestConfig, batch_for

    assert batch_for(IngestConfig(), "cpu").batch_size == 32
    assert batch_for(IngestConfig(), "cuda:1").batch_size == 128
    assert batch_for(IngestConfig(batch_size=8), "cuda").batch_size == 8

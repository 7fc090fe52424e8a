"""`lensdb search --nprobe` and the HTTP `nprobe` parameter: recorded in the JSON, not
applicable to codecs without lists, bad values a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from ingest_fakes import install
from typer.testing import CliRunner

import lensdb
from lensdb.cli.app import app
from lensdb.config import IngestConfig
from lensdb.errors import LensDBError

FAKE = install()
RUNNER = [sys.executable, str(Path(__file__).parent / "ingest_fakes.py")]


@pytest.fixture(scope="module")
def stores(tmp_path_factory, video_encoder) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nprobe")
    video = video_encoder(root / "clip.mkv", n_frames=40)
    out = {}
    for codec in ("IVF8,Flat", "SQ8"):
        db = lensdb.open(str(root / codec.replace(",", "_")), create=True)
        db.ingest([str(video)], IngestConfig(codec=codec, batch_size=10, **FAKE))
        out[codec] = db.store.root
    image = root / "q.png"
    import av

    with av.open(str(video)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    cv2.imwrite(str(image), frame[..., ::-1])
    out["image"] = image
    return out


def _search(stores, codec, *extra):
    return CliRunner().invoke(app, ["search", "--image", str(stores["image"]), "-k", "5",
                                    "--store", str(stores[codec]), "--json", *extra])


def test_cli_records_nprobe_and_caps_it_at_the_lists(stores):
    result = _search(stores, "IVF8,Flat", "--nprobe", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["codec"], data["nlist"], data["nprobe"]) == ("IVF8,Flat", 8, 2)
    assert len(data["hits"]) == 5
    default = json.loads(_search(stores, "IVF8,Flat").stdout)
    assert default["nprobe"] == 8  # 16 by default, capped at the 8 lists: exhaustive
    assert json.loads(_search(stores, "IVF8,Flat", "--nprobe", "999").stdout)["nprobe"] == 8


def test_cli_nprobe_on_a_flat_scan_codec_is_reported_not_applicable(stores):
    result = _search(stores, "SQ8", "--nprobe", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["nprobe"] is None and data["nlist"] is None and len(data["hits"]) == 5
    table = CliRunner().invoke(app, ["search", "--image", str(stores["image"]), "--store",
                                     str(stores["SQ8"]), "--nprobe", "4"])
    assert table.exit_code == 0 and "does not apply" in table.output


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_bad_nprobe_is_an_error(stores, bad):
    result = _search(stores, "IVF8,Flat", "--nprobe", bad)
    assert result.exit_code != 0
    assert isinstance(result.exception, LensDBError) and "nprobe" in str(result.exception)


def test_bad_nprobe_is_one_error_line_from_the_real_cli(stores):
    proc = subprocess.run([*RUNNER, "search", "--image", str(stores["image"]), "--nprobe",
                           "0", "--store", str(stores["IVF8,Flat"])],
                          capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: nprobe must be between 1")


def test_http_search_takes_nprobe(stores):
    from fastapi.testclient import TestClient

    from lensdb.service.app import create_app

    client = TestClient(create_app(stores["IVF8,Flat"]))
    got = client.get("/search", params={"like": 3, "k": 4, "nprobe": 1}).json()
    assert (got["nlist"], got["nprobe"]) == (8, 1) and got["hits"][0]["frame_id"] == 3
    assert client.get("/search", params={"like": 3, "nprobe": 0}).status_code == 422

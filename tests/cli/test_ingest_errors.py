"""Every bad input: one clear line on stderr, a non-zero exit, no traceback, store intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LENSDB = [sys.executable, "-m", "lensdb.cli.app"]
PAIR = ["--detector", "ssd-mobilenet-v2", "--embedder", "mobilenet-v2"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LENSDB, *args], capture_output=True, text=True, timeout=300)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(proc: subprocess.CompletedProcess, match: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = error_lines(proc)
    assert len(lines) == 1 and match in lines[0], proc.stderr
    # and nothing else on stderr: no "X: failed" echo, no model runtime chatter
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == lines, proc.stderr


def snapshot(store: Path) -> dict:
    out = run("info", "--store", str(store), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    return {k: info[k] for k in ("videos", "frames", "labelled_frames", "vectors", "classes",
                                 "embedder", "codec", "last_ingest")}


@pytest.fixture(scope="module")
def good_store(tmp_path_factory, offline_pair, video_encoder) -> Path:
    root = tmp_path_factory.mktemp("good")
    video = video_encoder(root / "good.mkv", n_frames=10)
    store = root / "store"
    proc = run("ingest", str(video), "--store", str(store), *PAIR)
    assert proc.returncode == 0, proc.stderr
    return store


def test_missing_path(good_store, tmp_path):
    before = snapshot(good_store)
    proc = run("ingest", str(tmp_path / "missing.mp4"), "--store", str(good_store), *PAIR)
    assert_clean_failure(proc, "no such file")
    assert snapshot(good_store) == before


def test_missing_path_creates_no_store(tmp_path):
    proc = run("ingest", str(tmp_path / "missing.mp4"), "--store", str(tmp_path / "new"),
               *PAIR)
    assert_clean_failure(proc, "no such file")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("codec, says", [("FOO99", "could not parse index string FOO99"),
                                          ("HNSW32", "cannot merge its segments")])
def test_a_codec_faiss_refuses_creates_no_store(tmp_path, make_video, codec, says):
    proc = run("ingest", str(make_video("v.mkv", n_frames=8)), "--store",
               str(tmp_path / "new"), *PAIR, "--codec", codec)
    assert_clean_failure(proc, says)
    assert "index_factory" not in proc.stderr and not (tmp_path / "new").exists()


def test_file_that_is_not_a_video(good_store, tmp_path):
    before = snapshot(good_store)
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("hello\n" * 1000)
    proc = run("ingest", str(bogus), "--store", str(good_store), *PAIR, "--threads", "1")
    assert_clean_failure(proc, "cannot open")  # (and the last ingest's threads stay)
    assert snapshot(good_store) == before


def test_truncated_video_keeps_what_decodes_and_says_where(good_store, make_video):
    video = make_video("long.mkv", n_frames=100, fps=10, size=(160, 120))
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    before = snapshot(good_store)
    proc = run("ingest", str(video), "--store", str(good_store), *PAIR)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "warning:" in proc.stderr and "ended at" in proc.stderr
    after = snapshot(good_store)
    assert after["videos"][: len(before["videos"])] == before["videos"]
    new = after["videos"][-1]
    assert new["status"] == "partial" and 10 < new["frames"] < 100


def test_corrupt_bytes_mid_stream(good_store, make_video):
    video = make_video("corrupt.mkv", n_frames=100, fps=10, size=(160, 120))
    data = bytearray(video.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = os.urandom(3000)
    video.write_bytes(bytes(data))
    proc = run("ingest", str(video), "--store", str(good_store), *PAIR)
    assert proc.returncode in (0, 3) and "Traceback" not in proc.stderr


def test_video_with_no_frames(good_store, tmp_path):
    import av

    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    before = snapshot(good_store)
    proc = run("ingest", str(empty), "--store", str(good_store), *PAIR)
    assert_clean_failure(proc, "empty.mkv")
    assert snapshot(good_store) == before


def test_unwritable_store(tmp_path, make_video):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run("ingest", str(make_video()), "--store", str(blocker / "store"), *PAIR)
    assert_clean_failure(proc, "cannot create a store")


def test_unknown_detector_and_embedder(good_store, make_video):
    before = snapshot(good_store)
    video = str(make_video())
    proc = run("ingest", video, "--store", str(good_store), "--detector", "nosuch",
               "--embedder", "mobilenet-v2")
    assert_clean_failure(proc, "unknown detector 'nosuch'")
    proc = run("ingest", video, "--store", str(good_store), "--embedder", "nosuch")
    assert_clean_failure(proc, "unknown embedder 'nosuch'")
    assert snapshot(good_store) == before


def test_embedder_other_than_the_stores(good_store, make_video, tmp_path):
    import open_clip
    import torch

    model = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)[0]
    ckpt = tmp_path / "clip.pt"
    torch.save(model.state_dict(), ckpt)
    before = snapshot(good_store)
    proc = run("ingest", str(make_video()), "--store", str(good_store),
               "--detector", "ssd-mobilenet-v2", "--embedder", f"clip:ViT-B-32:{ckpt}")
    assert_clean_failure(proc, "holds vectors of embedder 'mobilenet-v2@")
    assert snapshot(good_store) == before


def test_store_of_another_schema_version(good_store, tmp_path):
    import shutil

    from lensdb.storage.catalog import Catalog, set_meta

    copy = tmp_path / "old"
    shutil.copytree(good_store, copy)
    with Catalog(copy / "catalog.duckdb").connect(write=True) as con:
        set_meta(con, "schema_version", "99")
    proc = run("info", "--store", str(copy))
    assert_clean_failure(proc, "schema version 99")


def test_missing_store_for_info(tmp_path):
    assert_clean_failure(run("info", "--store", str(tmp_path / "none")), "no LensDB store")

"""Each benchmark's --quick on tiny inputs: the files exist and the numbers are sane."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensdb.cli.app import app

pytestmark = pytest.mark.slow  # real sample videos, the offline pair, random-weight YOLO/CLIP

VERDICTS = {"PASS", "MISS", "n/a"}


def outputs(folder: Path, name: str) -> dict:
    for suffix in ("csv", "json", "png"):
        path = folder / f"{name}.{suffix}"
        assert path.exists() and path.stat().st_size > 0, path
    with open(folder / f"{name}.csv") as f:
        assert len(list(csv.DictReader(f))) >= 1
    assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((folder / f"{name}.json").read_text())
    assert result["benchmark"] == name and result["machine"]["cores"] >= 1
    assert result["goals"] and {g["verdict"] for g in result["goals"]} <= VERDICTS
    return result


def test_compression_quick(tmp_path, offline_pair):
    from lensdb.bench import compression

    compression.main(["--quick", "--out", str(tmp_path), "--codecs", "Flat", "fp16", "SQ8",
                      "PCA64,SQ8", "PQ8", "RR512,LSH", "--clip-frames", "24"])
    result = outputs(tmp_path, "compression")
    rows = {r["codec"]: r for r in result["codecs"]}
    assert [rows[n]["bytes_per_vector"] for n in ("Flat", "fp16", "SQ8", "PCA64,SQ8", "PQ8")] \
        == [5120, 2560, 1280, 64, 8]
    assert rows["RR512,LSH"]["bytes_per_vector"] == 64
    assert rows["Flat"]["recall10_frames"] == 1.0 and rows["Flat"]["recall10_text"] == 1.0
    assert rows["SQ8"]["recall10_frames"] >= 0.9
    assert "mobilenet-v2" in result["embedder"] and "random weights" in result["note"]
    for row in rows.values():
        assert not row["error"], row
        assert 0.0 <= row["recall10_frames"] <= 1.0 and row["train_s"] >= 0
        for cls in result["classes"]:
            for method in ("mlp", "knn"):
                assert 0.0 <= row[f"{cls}_{method}_within1"] <= 1.0
                assert row[f"{cls}_{method}_mae"] >= 0.0
    # the same split and seed for every codec: fp16 decodes almost exactly, same kNN answers
    cls = result["classes"][0]
    assert abs(rows["fp16"][f"{cls}_knn_within1"] - rows["Flat"][f"{cls}_knn_within1"]) <= 0.02


def test_ingest_quick(tmp_path, offline_pair):
    from lensdb.bench import ingest

    ingest.main(["--quick", "--out", str(tmp_path), "--max-frames", "16"])
    result = outputs(tmp_path, "ingest")
    stages = {(s["config"], s["stage"]) for s in result["stages"]}
    assert ("both", "decode") in stages
    assert {(c, s) for c in ("default", "offline") for s in ("detect", "embed", "write")} <= stages
    assert all(s["rate"] > 0 and s["pipeline_fps"] > 0 for s in result["stages"])
    by_config = {s["config"]: s for s in result["end_to_end"]}
    assert set(by_config) == {"default", "offline"}
    for s in by_config.values():
        assert s["frames"] == 16 and s["e2e_fps"] > 0 and 0 < s["ratio"] < 10
        assert 30 < s["peak_rss_mb"] < 16_000
    offline = by_config["offline"]
    assert offline["frames_4x"] == 64 and offline["peak_rss_mb_4x"] > 30
    assert offline["e2e_fps"] > by_config["default"]["e2e_fps"]  # LiteRT pair vs YOLO+CLIP


def test_query_quick(tmp_path, offline_pair):
    from lensdb.bench import query

    query.main(["--quick", "--out", str(tmp_path), "--max-frames", "12", "--sizes", "1e4",
                "--repeats", "2"])
    result = outputs(tmp_path, "query")
    det = result["against_detection"]
    assert det["frames"] == 12 and det["query_s"] > 0 and det["query"].startswith("count(")
    rows = {r["detector"]: r for r in det["rows"]}
    assert set(rows) == {"YOLO11n", "YOLO11x"}
    assert rows["YOLO11x"]["detect_s"] > rows["YOLO11n"]["detect_s"] > 0
    assert rows["YOLO11x"]["speedup"] > 1 and rows["YOLO11x"]["bill_s"] > det["query_s"]
    (scale,) = result["scaling"]
    assert scale["frames"] == 10_000 and scale["scan_s"] > 0 and scale["moments"] > 0
    assert scale["aggregate_s"] > 0 and scale["moments_s"] > 0


def test_bench_cli_rejects_unknown_name():
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code != 0
    assert "unknown benchmark" in str(result.exception) + result.output

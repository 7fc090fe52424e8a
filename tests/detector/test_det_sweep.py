"""`lensdb detector sweep` (grid, report, best, resumable) and `compare` (scratch vs CLIP)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

TINY = ["--fast", "--epochs", "1", "--subset", "8", "--device", "cpu"]


@pytest.mark.slow
def test_sweep_grid_report_best_and_resume(shapes: Path, cli, tmp_path: Path):
    out = tmp_path / "sweep"
    args = ["detector", "sweep", shapes, "--model", "light-detr", "--lrs", "1e-3,5e-4",
            "--num-queries", "8", "--conf-thres", "0.001,0.3", *TINY, "--out", out, "--json"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 4 and {x["key"] for x in rows} == {"lr0.001-b8-q8-d3",  # b8: its default
                                                          "lr0.0005-b8-q8-d3"}
    best = json.loads((out / "best.json").read_text())
    assert best["map50_95"] == max(float(x["map50_95"]) for x in rows)
    assert doc["best"]["key"] == best["key"]
    stamp = (out / "lr0.001-b8-q8-d3" / "best.pt").stat().st_mtime_ns
    # resumable: an unfinished point is retrained, finished ones are kept
    (out / "lr0.0005-b8-q8-d3" / "summary.json").write_text('{"status": "failed"}')
    r = cli(*args[:-1])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done before, kept" in r.stdout and r.stdout.count("training") == 1
    assert (out / "lr0.001-b8-q8-d3" / "best.pt").stat().st_mtime_ns == stamp


def test_sweep_refuses_bad_grid(shapes: Path, cli, tmp_path: Path):
    r = cli("detector", "sweep", shapes, "--lrs", "1e-3,abc", "--out", tmp_path / "s")
    assert r.returncode != 0 and r.stderr.startswith("error: --lrs"), r.stderr
    r = cli("detector", "sweep", shapes, "--model", "yolo11n.yaml", "--num-queries", "5",
            "--out", tmp_path / "s")
    assert r.returncode != 0 and "light-detr" in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    import open_clip
    import torch

    import lensdb.finetune.tiny  # noqa: F401

    path = tmp_path_factory.mktemp("clip") / "tiny.pt"
    torch.save({"state_dict": open_clip.create_model("lensdb-tiny").state_dict()}, path)
    return path


@pytest.mark.slow
def test_compare_scratch_vs_clip_init(shapes: Path, cli, tmp_path: Path, tiny_clip: Path):
    import torch

    out = tmp_path / "cmp"
    r = cli("detector", "compare", shapes, "--clip-init", tiny_clip, *TINY, "--batch", "8",
            "--out", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert set(doc["table"]) == {"scratch", "clip"}
    assert (out / "compare.png").stat().st_size > 1000
    for name in ("scratch", "clip"):
        assert json.loads((out / name / "summary.json").read_text())["status"] == "complete"
    # the CLIP run's backbone starts from the checkpoint's visual tower, the scratch one not
    cfg = json.loads((out / "clip" / "config.json").read_text())
    assert cfg["clip_init"] == str(tiny_clip) and cfg["backbone"] == "clip"
    ck = torch.load(out / "clip" / "best.pt", weights_only=False)
    assert ck["spec"]["backbone"] == "clip" and ck["spec"]["clip_arch"] == "lensdb-tiny"


def test_clip_init_with_a_non_clip_file_is_refused(shapes: Path, cli, tmp_path: Path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"\x00" * 64)
    for cmd in (["compare", shapes, "--clip-init", bogus],
                ["train", shapes, "--model", "light-detr", "--clip-init", bogus]):
        r = cli("detector", *cmd, "--fast", "--out", tmp_path / "o")
        assert r.returncode != 0, r.stdout
        assert r.stderr.startswith("error: --clip-init") and len(r.stderr.splitlines()) == 1, \
            r.stderr
        assert not (tmp_path / "o").exists()


def test_runs_lists_flat_and_grouped(tmp_path: Path, cli):
    from lensdb.runs import RunFolder

    base = {"kind": "light-detr", "data": "d.yaml", "model": "light-detr", "imgsz": 64,
            "batch": 8, "lr": 1e-3, "epochs": 2}
    for name, seed, status, m in (("a", 0, "complete", 0.2), ("b", 1, "complete", 0.4),
                                  ("c", 0, None, None)):
        run = RunFolder.create(tmp_path / "runs" / name, {**base, "seed": seed})
        if status:
            run.write_json("summary.json", {"status": status, "seconds": 1.0,
                                            "eval": {"map50": m, "map50_95": m}})
    flat = cli("detector", "runs", "--root", tmp_path / "runs")
    rows = list(csv.DictReader(flat.stdout.splitlines()))
    assert [r["status"] for r in rows] == ["complete", "complete", "unfinished"]
    grouped = json.loads(cli("detector", "runs", "--root", tmp_path / "runs", "--json").stdout)
    (g,) = grouped["groups"]
    assert g["runs"] == 3 and g["complete"] == 2
    assert abs(g["mean_map50_95"] - 0.3) < 1e-9 and g["best_map50_95"] == 0.4

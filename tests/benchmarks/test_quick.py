"""Each benchmark's --quick on tiny inputs: the files exist and the numbers are sane."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
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

    query.main(["--quick", "--out", str(tmp_path), "--max-frames", "24", "--sizes", "1e4",
                "--repeats", "2"])
    result = outputs(tmp_path, "query")
    det = result["against_detection"]
    assert det["frames"] == 24 and det["query_s"] > 0 and det["query"].startswith("count(")
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


def test_accuracy_quick(tmp_path, offline_pair):
    """Through `lensdb bench accuracy --quick --json`: the tables on stderr, stdout strict
    JSON (no NaN) naming the files written."""
    proc = CliRunner().invoke(app, ["bench", "accuracy", "--quick", "--out", str(tmp_path),
                                    "--json"])
    assert proc.exit_code == 0, proc.output
    said = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert said["benchmark"] == "accuracy" and "accuracy.csv" in said["files"]
    assert said["result"]["ks"] == [5, 10]
    result = outputs(tmp_path, "accuracy")
    (video,) = result["videos"]
    assert video["video"] == "bikes.mp4" and video["frames"] == 250 and result["ks"] == [5, 10]
    assert result["strategies"] == ["uniform", "placed", "scene"]
    assert "car" in video["classes"]  # the class rule: >= 0.2 detections a frame
    for info in video["classes"].values():
        assert 0.5 < info["agreement"] <= 1.0 and info["per_frame"] >= 0.2
    rows = {(r["class"], r["k"], r["strategy"], r["method"]): r for r in video["rows"]}
    assert {"constant", "interp", "knn", "combo", "auto"} <= {m for *_, m in rows}
    for (_, k, strategy, _), r in rows.items():  # placed labels: the same budget as uniform
        assert 0.0 <= r["within1"] <= 1.0
        if strategy == "scene":  # the scene-change placer keeps about the budget
            assert 0.7 * 250 / k <= r["labels"] <= 1.3 * 250 / k, (k, r["labels"])
        else:
            assert r["labels"] == len(range(0, 250, k))
    # hidden frames of bikes.mp4, labels on 1 frame in 5: time beats the constant clearly
    for cls in video["classes"]:
        assert rows[(cls, 5, "uniform", "interp")]["mae"] < \
            0.7 * rows[(cls, 5, "uniform", "constant")]["mae"], cls
        for strategy in result["strategies"]:
            assert rows[(cls, 5, strategy, "auto")]["mae"] < \
                rows[(cls, 5, strategy, "constant")]["mae"], (cls, strategy)
    queries = [q for q in video["queries"] if q["method"] == "auto" and q["kind"] == "common"
               and q["strategy"] == "uniform"]
    assert queries and all(0.2 <= q["share"] <= 0.8 for q in queries)
    assert all(q["f1"] > 0.5 for q in queries if q["k_every"] == 5)
    assert all(0.5 < q["detector_f1"] <= 1.0 for q in queries)  # bikes' own consistency
    # placed vs uniform: one row per class and K; on bikes.mp4 placement wins on the whole
    # (geometric mean of placed / uniform fill-in MAE over classes and K)
    pvu = [r for r in result["vs_uniform"] if r["strategy"] == "placed"]
    assert {(r["class"], r["k"]) for r in pvu} == {(c, k) for c in video["classes"]
                                                   for k in (5, 10)}
    assert {r["strategy"] for r in result["vs_uniform"]} == {"placed", "scene"}
    ratios = [r["vs_uniform"] for r in pvu]
    assert all(0.3 < x < 2.0 for x in ratios)
    assert float(np.exp(np.mean(np.log(ratios)))) < 1.0, ratios
    goals = [g["goal"] for g in result["goals"]]
    assert any("placed fill-in MAE < uniform" in g for g in goals)
    assert any("scene fill-in MAE < uniform" in g for g in goals)
    # the error estimates a query would print, against the hidden truth: one avg row per
    # class and K, precision and recall rows for the predicates; none overstated here
    summary = {s["kind"]: s for s in result["estimates"] if s["strategy"] == "uniform"}
    assert summary["avg"]["cases"] == 2 * len(video["classes"])
    assert summary["precision"]["cases"] > 0 and summary["recall"]["cases"] > 0
    assert all(s["below"] == 0 for s in summary.values()), summary
    assert (tmp_path / "estimates.csv").stat().st_size > 0


def test_the_detectors_consecutive_f1_pairs_frames_of_one_video_in_time_order():
    from types import SimpleNamespace

    from lensdb.bench.accuracy_hidden import consecutive_f1

    # two videos, stored out of time order; the predicate count >= 2 flips once in each
    data = SimpleNamespace(ts=np.array([0.2, 0.0, 0.1, 0.0, 0.1, 0.2]),
                           video_of=np.array([1, 1, 1, 2, 2, 2]))
    y = np.array([5, 0, 3, 0, 0, 0])  # video 1 in time: 0, 3, 5; video 2: 0, 0, 0
    # pairs (0 -> 3), (3 -> 5), (0 -> 0), (0 -> 0): one miss, one hit; a pair across the
    # videos (5 -> 0) would add a false positive
    assert consecutive_f1(data, y, 2) == pytest.approx(2 * 1 / (2 * 1 + 1))


def test_placed_strategy_budget_and_oracle():
    """Placed labels: the budget of uniform(K), the uniform 1-in-2K seed among them, and the
    oracle asked only for frames that end up labelled (no peeking at hidden labels)."""
    from lensdb.bench import accuracy_hidden

    rng = np.random.default_rng(0)
    video = np.repeat([1, 2], [130, 70])
    ts = np.concatenate([np.arange(130), np.arange(70)]) / 10.0
    truth = np.concatenate([np.zeros(60), np.full(20, 4.0), np.zeros(120)])
    vectors = rng.normal(size=(200, 16)) + truth[:, None]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    asked = []

    def oracle(pos):
        asked.append(np.asarray(pos))
        return {"car": truth[pos]}

    for k in (5, 10):
        asked.clear()
        kept = accuracy_hidden.placed(video, ts, vectors, k, oracle)
        uniform = accuracy_hidden.uniform(video, ts, vectors, k, oracle)
        assert len(kept) == len(uniform) == len(np.unique(kept))
        assert set(accuracy_hidden.uniform(video, ts, vectors, 2 * k, oracle)) <= set(kept)
        assert set(np.concatenate(asked)) == set(kept)
        assert set(kept) != set(uniform)  # the second half is placed, not the uniform grid


def test_scene_strategy_is_ingests_placer_on_each_video_without_labels():
    """scene: the scene-change placer per video in time order, about the budget, a label at
    each cut, and the oracle never asked (ingest places before it detects)."""
    from lensdb.bench import accuracy_hidden

    rng = np.random.default_rng(0)
    video = np.repeat([1, 2], [300, 200])
    ts = np.concatenate([np.arange(300), np.arange(200)]) / 10.0
    shot = ((np.arange(500) + 23) // 50) % 2  # a cut every 50 frames, off the 1-in-10 grid
    base = np.eye(16)[[0, 1]][shot] * 4.0
    vectors = base + rng.normal(scale=0.3, size=(500, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = rng.permutation(500)  # rows in no particular order

    def oracle(pos):
        raise AssertionError("the scene-change placer must not look at labels")

    kept = order[accuracy_hidden.scene(video[order], ts[order], vectors[order], 10, oracle)]
    assert 0.7 * 50 <= len(kept) <= 1.3 * 50
    assert {0, 300} <= set(kept.tolist())  # each video's first frame
    cuts = list(range(27, 500, 50))
    near = [any(abs(int(j) - i) <= 1 for j in kept) for i in cuts]
    assert sum(near) >= len(cuts) - 1, near


def test_accuracy_placement_hook(tmp_path, offline_pair):
    """A label-placement strategy replaces the uniform one (here: only the first half)."""
    import numpy as np

    from lensdb.bench import accuracy_hidden
    from lensdb.bench.common import sample_video

    def first_half(video, ts, vectors, k, oracle):
        keep = accuracy_hidden.uniform(video, ts, vectors, k, oracle)
        keep = keep[ts[keep] <= np.median(ts)]
        assert set(oracle(keep)) and len(next(iter(oracle(keep).values()))) == len(keep)
        return keep

    out = accuracy_hidden.run_video(sample_video("bikes.mp4"), [10], placement=first_half)
    assert {r["labels"] for r in out["rows"]} == {13}
    assert {r["strategy"] for r in out["rows"]} == {"first_half"}

    def peeks(video, ts, vectors, k, oracle):  # looks at every label, keeps 1 in k
        oracle(np.arange(len(ts)))
        return accuracy_hidden.uniform(video, ts, vectors, k, oracle)

    with pytest.raises(ValueError, match="does not keep"):
        accuracy_hidden.run_video(sample_video("bikes.mp4"), [10], placement={"peeks": peeks})

"""`lensdb bench classify --quick` on the tiny CLIP: rates are measured, and scoring a crop
costs about what embedding it costs (the classifier is a small head on the embedding)."""

from __future__ import annotations

import json


def test_classify_bench_quick(tmp_path):
    from lensdb.bench import classify

    result = classify.main(["--quick", "--out", str(tmp_path), "--embedders", "clip:lensdb-tiny",
                            "--crops", "16", "--repeats", "3", "--threads", "1"])
    rows = {r["pipeline"]: r for r in result["rows"] if "pipeline" in r}
    assert {"embed", "zero-shot", "linear probe"} <= set(rows), result["rows"]
    for row in rows.values():
        assert row["crops_per_s"] > 0 and row["ms_per_crop"] > 0
    assert 0.2 < rows["zero-shot"]["ratio_vs_embed"] < 2.0
    assert json.loads((tmp_path / "classify.json").read_text())["benchmark"] == "classify"
    assert result["goals"][0]["verdict"] in ("n/a", "PASS", "MISS")

"""`lensdb bench embed_cpu --quick`: the files exist and the checks hold."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # a real sample video and open_clip models


def test_embed_cpu_quick(tmp_path):
    from lensdb.bench import embed_cpu

    embed_cpu.main(["--quick", "--out", str(tmp_path)])
    for suffix in ("csv", "json", "png"):
        assert (tmp_path / f"embed_cpu.{suffix}").stat().st_size > 0
    result = json.loads((tmp_path / "embed_cpu.json").read_text())
    assert result["benchmark"] == "embed_cpu" and len(result["rows"]) == 5
    assert result["preprocess_diff_max"] < 0.05
    assert result["cosine_batched_vs_pil"]["min"] >= 0.999
    assert result["cosine_int8_vs_fp32"]["min"] >= 0.99 and result["int8_embedder_id_same"]
    assert {g["verdict"] for g in result["goals"]} <= {"PASS", "n/a"}
